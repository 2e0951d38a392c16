// expo demo: the whole pipeline on a built-in example, with nothing to download. A small Llama
// SFT/aligned pair, a Llama reward model (demo/demo_models.h: random weights with a few
// planted directions) and a real byte-level tokenizer with a chat template are generated; then
// the search of the paper runs on them as on real models: each candidate alpha answers a prompt
// set on the built-in engine, the reward model scores the answers, the table and the plot are
// written, and the best model is extrapolated.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/option_ranges.h"
#include "cli/search_command.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/staging_dir.h"
#include "core/thread_pool.h"
#include "core/units.h"
#include "demo/demo_inputs.h"
#include "merge/diff.h"
#include "merge/plan.h"

namespace expo::cli {

namespace {

struct DemoArgs {
  std::string dir = "expo-demo";
  std::string alphas;
  bool auto_search = false;
  size_t prompts = 16;
  uint64_t max_new_tokens = 48;
  bool force = false, force_any = false;
  size_t threads = 0;
};

void run(const DemoArgs& args, const std::string& invocation) {
  const fs::path root(args.dir);
  if (fs::exists(root) && !args.force)
    fail(root.string(), ": already exists; use --force to write the demo there again");
  if (args.prompts == 0) usage_fail("--prompts must be at least 1");
  if (fs::exists(root)) {
    check_force_target(root, args.force_any, is_demo_folder,
                       "a folder expo demo wrote (with sft/, aligned/ and reward/) or an empty "
                       "folder",
                       "--force-any-folder");
    fs::remove_all(root);
  }

  std::printf(
      "1. writing a small Llama pair (SFT and aligned, BF16; alignment moved it towards\n"
      "   readable text, plus noise), a Llama reward model that scores readable text, and a\n"
      "   byte-level BPE tokenizer with a ChatML template to %s\n",
      root.c_str());
  const DemoInputs inputs = write_demo_inputs(root, args.prompts);
  const fs::path& sft_dir = inputs.sft;
  const fs::path& aligned_dir = inputs.aligned;

  const auto sft = Checkpoint::open(sft_dir.string());
  const auto aligned = Checkpoint::open(aligned_dir.string());
  std::printf("   %s: %s, %zu tensors, %llu parameters in %zu shards\n", aligned_dir.c_str(),
              aligned.architecture().c_str(), aligned.tensors().size(),
              static_cast<unsigned long long>(aligned.total_parameters()), aligned.num_files());
  {
    ThreadPool pool(args.threads);
    const Plan plan = make_plan(sft, aligned, PlanOptions{});
    const auto report = diff_checkpoints(plan, pool, false);
    std::printf(
        "2. expo diff: alignment moved the weights by %.4g (%.3f%% of their norm), cosine %.6f\n",
        report.total.delta_norm(), 100 * report.total.relative(), report.total.cosine());
  }

  SearchArgs search;
  search.sft = sft_dir.string();
  search.aligned = aligned_dir.string();
  search.reward_model = inputs.reward.string();
  search.g.prompts_file = inputs.prompts.string();
  search.g.gen.max_new_tokens = args.max_new_tokens;
  search.output_dir = (root / "search").string();
  search.alphas = args.alphas;
  search.auto_search = args.alphas.empty();
  search.write_best = (root / "expo-best").string();
  search.threads = args.threads;
  search.invocation = invocation;
  std::printf("3. expo search: %zu prompts, up to %llu new tokens each, %s\n\n", args.prompts,
              static_cast<unsigned long long>(args.max_new_tokens),
              args.alphas.empty() ? "--auto (log-scale scan, then golden-section refinement)"
                                  : ("--alphas " + args.alphas).c_str());
  std::fflush(stdout);
  run_search_command(search);
  std::printf(
      "\nThe same on your own models:\n"
      "  expo search --sft SFT --aligned DPO --reward-model RM --prompts prompts.jsonl --auto \\\n"
      "      --output-dir runs/search --write-best ./expo-best\n"
      "or one alpha at a time:\n"
      "  expo extrapolate --sft %s --aligned %s --alpha 0.3 --output %s/expo-alpha0.3\n"
      "  expo generate --model %s/expo-alpha0.3 --prompt \"Why is the sky blue?\"\n",
      sft_dir.c_str(), aligned_dir.c_str(), root.c_str(), root.c_str());
}

}  // namespace

void add_demo_command(CLI::App& app, const std::string& invocation) {
  auto args = std::make_shared<DemoArgs>();
  auto* cmd = app.add_subcommand(
      "demo",
      "Run the whole pipeline on generated models: a small Llama SFT/aligned pair, a reward\n"
      "model and a tokenizer are written, then expo search picks alpha by reward (answers on the\n"
      "built-in engine, rewards, table, plot) and writes the best model. Seconds.\n"
      "Example: expo demo --dir expo-demo");
  cmd->add_option("--dir", args->dir, "folder for the demo's models and results")
      ->capture_default_str();
  cmd->add_option("--alphas", args->alphas,
                  "search this grid (e.g. 0,0.1,0.3,0.5,1) instead of --auto");
  cmd->add_option("--prompts", args->prompts, "number of built-in prompts")
      ->capture_default_str()
      ->check(count_in(1, 100000));
  cmd->add_option("--max-new-tokens", args->max_new_tokens)
      ->capture_default_str()
      ->check(count_in(1, kMaxNewTokens));
  add_threads_option(*cmd, args->threads);
  cmd->add_flag("--force", args->force, "replace the folder if it exists (and expo demo wrote it)");
  cmd->add_flag("--force-any-folder", args->force_any,
                "with --force: replace the folder even when it is not one expo demo wrote");
  cmd->callback([args, invocation] { run(*args, invocation); });
}

}  // namespace expo::cli
