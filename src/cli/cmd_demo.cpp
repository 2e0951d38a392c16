// expo demo: the main job end to end on a built-in example, with nothing to download: a small
// random Llama SFT/aligned pair is generated, inspected, compared and extrapolated.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/thread_pool.h"
#include "core/units.h"
#include "merge/diff.h"
#include "merge/extrapolate.h"
#include "merge/random_model.h"

namespace expo::cli {

namespace {
struct DemoArgs {
  std::string dir = "expo-demo";
  std::string alpha = "0.3";
  bool force = false;
};

void run(const DemoArgs& args) {
  const fs::path root(args.dir);
  if (fs::exists(root) && !args.force)
    fail(root.string(), ": already exists; use --force to write the demo there again");
  if (fs::exists(root)) fs::remove_all(root);
  const fs::path sft_dir = root / "sft", aligned_dir = root / "aligned";

  RandomLlamaSpec spec;
  spec.layers = 4;
  spec.hidden = 128;
  spec.intermediate = 344;
  spec.heads = 8;
  spec.kv_heads = 4;
  spec.vocab = 1000;
  spec.max_shard_size = 1'000'000;  // several shards, to show sharded input
  std::printf("1. writing a random Llama pair (SFT and aligned, BF16) to %s\n", root.c_str());
  write_random_pair(sft_dir, aligned_dir, spec, 42);

  const auto sft = Checkpoint::open(sft_dir.string());
  const auto aligned = Checkpoint::open(aligned_dir.string());
  std::printf("   %s: %s, %zu tensors, %llu parameters in %zu shards\n", aligned_dir.c_str(),
              aligned.architecture().c_str(), aligned.tensors().size(),
              static_cast<unsigned long long>(aligned.total_parameters()), aligned.num_files());

  ThreadPool pool;
  PlanOptions plan_options;
  const Plan plan = make_plan(sft, aligned, plan_options);
  const auto report = diff_checkpoints(plan, pool, false);
  std::printf(
      "2. expo diff: alignment moved the weights by %.4g (%.3f%% of their norm), "
      "cosine %.6f\n",
      report.total.delta_norm(), 100 * report.total.relative(), report.total.cosine());

  ExtrapolateOptions options;
  for (const auto& alpha : parse_alpha_list(args.alpha))
    options.outputs.push_back({root / ("expo-alpha" + alpha.text), alpha});
  options.command_line = command_line();
  extrapolate_checkpoints(sft, aligned, plan, options, pool);
  for (const auto& o : options.outputs) {
    std::printf("3. expo extrapolate --alpha %s: wrote %s (%s)\n", o.alpha.text.c_str(),
                o.dir.c_str(), format_bytes(plan.out_bytes()).c_str());
  }
  std::printf(
      "\nTry it on your own pair:\n  build/expo extrapolate --sft %s --aligned %s "
      "--alpha 0.3 --output %s/my-expo\n",
      sft_dir.c_str(), aligned_dir.c_str(), root.c_str());
}
}  // namespace

void add_demo_command(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  auto* cmd =
      app.add_subcommand("demo",
                         "Run expo end to end on a generated random Llama SFT/aligned pair.\n"
                         "Example: expo demo --dir expo-demo --alpha 0.3");
  cmd->add_option("--dir", args->dir, "folder for the demo's models (default: expo-demo)");
  cmd->add_option("--alpha", args->alpha, "alpha, or a list such as 0.1,0.3,0.5");
  cmd->add_flag("--force", args->force, "replace the folder if it exists");
  cmd->callback([args] { run(*args); });
}

}  // namespace expo::cli
