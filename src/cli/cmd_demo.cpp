// expo demo: the paper's experiment at toy scale, on trained models that ship in the repository
// (demo/models, made by demo/train/train_demo.py): an SFT model, DPO models trained from it on
// 10%, 20% and all of a preference set, and a Bradley-Terry reward model, on a task whose
// answers have a gold score from ground truth (demo/demo_task.h). The demo extrapolates a
// partially trained DPO model, chooses alpha by reward with expo search, and reports reward and
// gold side by side against the fully trained DPO model.
//
// `expo demo --planted` is the earlier demo: random models with planted directions
// (demo/demo_models.h), written in a second; the engine tests use its models.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/option_ranges.h"
#include "cli/search_command.h"
#include "core/atomic_write.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/staging_dir.h"
#include "core/thread_pool.h"
#include "core/units.h"
#include "demo/demo_gold.h"
#include "demo/demo_inputs.h"
#include "demo/demo_report.h"
#include "eval/plot.h"
#include "merge/alpha_rules.h"
#include "merge/diff.h"
#include "merge/plan.h"
#include "pipeline/search_pipeline.h"

#ifndef EXPO_DEMO_MODELS_DIR
#define EXPO_DEMO_MODELS_DIR "demo/models"
#endif

namespace expo::cli {

namespace {

struct DemoArgs {
  std::string dir = "expo-demo";
  std::string pair = "10";
  std::string models = EXPO_DEMO_MODELS_DIR;
  std::string alphas;
  size_t prompts = 256;
  uint64_t max_new_tokens = 64;
  double temperature = 1.0;
  uint64_t seed = 1;
  bool planted = false;
  bool force = false, force_any = false;
  size_t threads = 0;
  bool prompts_given = false, tokens_given = false;
};

const char* const kTrainedModels[] = {"sft", "dpo-10", "dpo-20", "dpo-full", "reward"};

// A folder `expo demo` wrote: the planted layout (sft/, aligned/, reward/) or the trained one
// (sft/, dpo-full/, reward/).
bool is_any_demo_folder(const fs::path& root) {
  std::error_code ec;
  if (is_demo_folder(root)) return true;
  for (const char* name : {"sft", "dpo-full", "reward"})
    if (!fs::is_regular_file(root / name / "config.json", ec)) return false;
  return true;
}

void prepare_root(const DemoArgs& args, const fs::path& root) {
  if (fs::exists(root) && !args.force)
    fail(root.string(), ": already exists; use --force to write the demo there again");
  if (fs::exists(root)) {
    check_force_target(root, args.force_any, is_any_demo_folder,
                       "a folder expo demo wrote (with sft/ and reward/) or an empty folder",
                       "--force-any-folder");
    fs::remove_all(root);
  }
}

void print_diff(const fs::path& sft_dir, const fs::path& aligned_dir, size_t threads,
                const char* what) {
  const auto sft = Checkpoint::open(sft_dir.string());
  const auto aligned = Checkpoint::open(aligned_dir.string());
  ThreadPool pool(threads);
  const Plan plan = make_plan(sft, aligned, PlanOptions{});
  const auto report = diff_checkpoints(plan, pool, false);
  std::printf("   expo diff: %s moved the weights by %.4g (%.3f%% of their norm), cosine %.6f\n",
              what, report.total.delta_norm(), 100 * report.total.relative(),
              report.total.cosine());
}

// ---- the planted demo (random models) ----

void run_planted(const DemoArgs& args, const std::string& invocation) {
  const fs::path root(args.dir);
  prepare_root(args, root);
  const size_t prompts = args.prompts_given ? args.prompts : 16;
  const uint64_t max_new_tokens = args.tokens_given ? args.max_new_tokens : 48;
  std::printf(
      "1. writing a small Llama pair (SFT and aligned, BF16; alignment moved it towards\n"
      "   readable text, plus noise), a Llama reward model that scores readable text, and a\n"
      "   byte-level BPE tokenizer with a ChatML template to %s\n",
      root.c_str());
  const DemoInputs inputs = write_demo_inputs(root, prompts);
  {
    const auto aligned = Checkpoint::open(inputs.aligned.string());
    std::printf("   %s: %s, %zu tensors, %llu parameters in %zu shards\n", inputs.aligned.c_str(),
                aligned.architecture().c_str(), aligned.tensors().size(),
                static_cast<unsigned long long>(aligned.total_parameters()), aligned.num_files());
  }
  std::printf("2.");
  print_diff(inputs.sft, inputs.aligned, args.threads, "alignment");

  SearchArgs search;
  search.sft = inputs.sft.string();
  search.aligned = inputs.aligned.string();
  search.reward_model = inputs.reward.string();
  search.g.prompts_file = inputs.prompts.string();
  search.g.gen.max_new_tokens = max_new_tokens;
  search.output_dir = (root / "search").string();
  search.alphas = args.alphas;
  search.auto_search = args.alphas.empty();
  search.write_best = (root / "expo-best").string();
  search.threads = args.threads;
  search.invocation = invocation;
  std::printf("3. expo search: %zu prompts, up to %llu new tokens each, %s\n\n", prompts,
              static_cast<unsigned long long>(max_new_tokens),
              args.alphas.empty() ? "--auto (log-scale scan, then golden-section refinement)"
                                  : ("--alphas " + args.alphas).c_str());
  std::fflush(stdout);
  run_search_command(search);
}

// ---- the trained demo ----

// The search's answers to the demo's prompts (a JSONL prompt set: answers in JSONL).
fs::path answers_file(const fs::path& search_dir, double alpha) {
  return search_alpha_dir(search_dir, alpha) / default_answer_file_name(AnswerFormat::kJsonl, "");
}

void check_models(const fs::path& models) {
  for (const char* name : kTrainedModels)
    for (const char* file : {"config.json", "model.safetensors", "tokenizer.json"})
      if (!fs::is_regular_file(models / name / file))
        fail((models / name / file).string(),
             ": missing. expo demo's trained models ship in the repository's demo/models "
             "(demo/train/train_demo.py makes them); give their folder with --models DIR, or "
             "run expo demo --planted for the generated random models");
  if (!fs::is_regular_file(models / "prompts.jsonl"))
    fail((models / "prompts.jsonl").string(), ": missing (the demo's prompts with their answers)");
}

SearchArgs demo_search(const DemoArgs& args, const fs::path& root, const std::string& aligned,
                       const std::string& out, const std::string& invocation) {
  SearchArgs s;
  s.sft = (root / "sft").string();
  s.aligned = (root / aligned).string();
  s.reward_model = (root / "reward").string();
  s.g.prompts_file = (root / "prompts.jsonl").string();
  s.g.gen.max_new_tokens = args.max_new_tokens;
  s.g.gen.sampling.temperature = args.temperature;
  s.g.gen.sampling.seed = args.seed;
  s.output_dir = (root / out).string();
  s.threads = args.threads;
  s.invocation = invocation;
  return s;
}

void run_trained(const DemoArgs& args, const std::string& invocation) {
  const fs::path models(args.models);
  const std::string pair = args.pair == "full" ? "dpo-full" : "dpo-" + args.pair;
  check_models(models);
  const fs::path root(args.dir);
  prepare_root(args, root);

  // The models, copied so that the demo folder holds everything its commands refer to, and the
  // first --prompts prompts.
  fs::create_directories(root);
  for (const char* name : kTrainedModels)
    fs::copy(models / name, root / name, fs::copy_options::recursive);
  PromptSet all = read_prompt_set(models / "prompts.jsonl");
  select_prompts(all, args.prompts, false, 0);
  std::string lines;
  for (const Prompt& p : all.prompts) {
    gold_truth(p, all.path.string());  // every prompt carries its truth
    lines += p.fields.dump() + "\n";
  }
  write_file_atomically(root / "prompts.jsonl", lines);

  const auto sft = Checkpoint::open((root / "sft").string());
  std::printf(
      "1. trained models (demo/train/train_demo.py; copied to %s):\n"
      "   sft/       Llama, %llu parameters, trained on questions answered in a mix of styles\n"
      "              (30%% good; wrong, rude, rambling or refusing answers for the rest)\n"
      "   dpo-10/, dpo-20/, dpo-full/  DPO from sft/ on 10%%, 20%% and all of 4000 preference\n"
      "              pairs (same hyperparameters and epochs, so fewer steps on less data)\n"
      "   reward/    Bradley-Terry reward model (LlamaForSequenceClassification) on the pairs\n"
      "   gold score: 0.5 correct + 0.25 polite + 0.25 concise, from the ground truth\n",
      root.c_str(), static_cast<unsigned long long>(sft.total_parameters()));
  std::printf("2.");
  print_diff(root / "sft", root / pair, args.threads, ("DPO (" + pair + ")").c_str());

  SearchArgs search = demo_search(args, root, pair, "search", invocation);
  search.alphas = args.alphas;
  search.auto_search = args.alphas.empty();
  search.write_best = (root / "expo-best").string();
  std::printf(
      "3. expo search on sft + %s: %zu prompts, sampled at temperature %g, up to %llu new "
      "tokens, %s\n\n",
      pair.c_str(), all.prompts.size(), args.temperature,
      static_cast<unsigned long long>(args.max_new_tokens),
      args.alphas.empty() ? "--auto" : ("--alphas " + args.alphas).c_str());
  std::fflush(stdout);
  const SearchOutcome outcome = run_search_command(search);

  DemoReport report;
  report.pair = pair;
  report.best_alpha = outcome.best_alpha;
  report.rewards = sorted_by_alpha(outcome.summaries);
  for (const AlphaSummary& s : report.rewards)
    report.gold.push_back(score_answers_file(answers_file(root / "search", s.alpha), all, s.alpha));
  if (pair != "dpo-full") {
    std::printf(
        "\n4. for comparison: dpo-full (DPO on all the pairs), the same prompts and "
        "sampling\n");
    std::fflush(stdout);
    SearchArgs full = demo_search(args, root, "dpo-full", "search-dpo-full", invocation);
    full.alphas = "0";
    full.quiet = true;
    const SearchOutcome f = run_search_command(full);
    report.reference = "dpo-full";
    report.reference_reward = f.summaries.front();
    report.reference_gold = score_answers_file(answers_file(root / "search-dpo-full", 0), all, 0);
  }

  const std::string table = format_demo_table(report);
  std::vector<std::string> questions;
  for (const Prompt& p : all.prompts) questions.push_back(p.user_turn(0));
  const std::string answers = format_side_by_side(report, questions, 6);
  std::printf("\n%s reward (reward model) and gold score (ground truth) per alpha:\n\n%s\n",
              pair.c_str(), table.c_str());
  std::printf("answers side by side (the first prompts):\n%s\n", answers.c_str());

  // The plot: reward, gold and length against alpha, the comparison model as dotted lines.
  std::vector<PlotSeries> panels(3);
  panels[0] = {"mean reward (± s.e.)", "#1f77b4", {}, {}};
  panels[1] = {"mean gold score (± s.e.)", "#9467bd", {}, {}};
  panels[2] = {"mean answer length (words)", "#2ca02c", {}, {}};
  for (size_t i = 0; i < report.rewards.size(); ++i) {
    const AlphaSummary& r = report.rewards[i];
    const GoldSummary g = summarize_gold(report.gold[i]);
    panels[0].points.push_back({r.alpha, r.mean_reward, r.reward_se});
    panels[1].points.push_back({r.alpha, g.mean, g.se});
    panels[2].points.push_back({r.alpha, g.words, AlphaSummary::kNaN});
  }
  if (report.reference_gold) {
    const GoldSummary g = summarize_gold(*report.reference_gold);
    panels[0].references.push_back({"dpo-full", report.reference_reward->mean_reward});
    panels[1].references.push_back({"dpo-full", g.mean});
    panels[2].references.push_back({"dpo-full", g.words});
  }
  const fs::path svg = root / "reward_and_gold_vs_alpha.svg";
  write_file_atomically(
      svg, render_plot(panels, report.best_alpha,
                       "expo demo: sft + " + pair + ", reward and gold score against alpha"));
  std::string png_note;
  const fs::path png = root / "reward_and_gold_vs_alpha.png";
  const bool have_png = convert_svg_to_png(svg, png, png_note);

  write_file_atomically(root / "demo.json", demo_json(report).dump(2) + "\n");
  write_file_atomically(
      root / "demo.md",
      str("# expo demo: sft + ", pair, "\n\nAlpha chosen by reward: **",
          format_alpha(report.best_alpha),
          "**. Gold scores come from the ground truth, not the "
          "reward model.\n\n```\n",
          table, "```\n\n![reward and gold against alpha](", svg.filename().string(),
          ")\n\n## Answers side by side\n\n```\n", answers, "```\n"));
  std::printf("plot:    %s%s\nreport:  %s\n         %s\n", svg.c_str(),
              have_png ? str("\n         ", png.string()).c_str() : "", (root / "demo.md").c_str(),
              (root / "demo.json").c_str());
  std::printf(
      "\nThe same on your own models:\n"
      "  expo search --sft SFT --aligned DPO --reward-model RM --prompts prompts.jsonl --auto \\\n"
      "      --output-dir runs/search --write-best ./expo-best\n"
      "or one alpha at a time:\n"
      "  expo extrapolate --sft %s/sft --aligned %s/%s --alpha %s --output %s/expo-chosen\n"
      "  expo generate --model %s/expo-chosen --prompt \"What is 7 plus 5?\" --temperature 1\n",
      root.c_str(), root.c_str(), pair.c_str(), format_alpha(report.best_alpha).c_str(),
      root.c_str(), root.c_str());
}

void run(const DemoArgs& args, const std::string& invocation) {
  if (args.prompts == 0) usage_fail("--prompts must be at least 1");
  if (args.planted)
    run_planted(args, invocation);
  else
    run_trained(args, invocation);
}

}  // namespace

void add_demo_command(CLI::App& app, const std::string& invocation) {
  auto args = std::make_shared<DemoArgs>();
  auto* cmd = app.add_subcommand(
      "demo",
      "Run the paper's experiment on small trained models that ship with expo: an SFT model,\n"
      "DPO models trained on 10%, 20% and all of a preference set, and a reward model. expo\n"
      "search extrapolates the partially trained DPO model, chooses alpha by reward, and the\n"
      "demo reports reward and the gold score (from ground truth) per alpha against the fully\n"
      "trained model. About a minute.\n"
      "Example: expo demo --dir expo-demo --pair 10");
  cmd->add_option("--dir", args->dir, "folder for the demo's models and results")
      ->capture_default_str();
  cmd->add_option("--pair", args->pair,
                  "which DPO model to extrapolate: 10 or 20 (trained on that percentage of the "
                  "preference pairs) or full")
      ->capture_default_str()
      ->check(CLI::IsMember({"10", "20", "full"}));
  cmd->add_option("--models", args->models,
                  "folder of the trained models (sft/, dpo-10/, dpo-20/, dpo-full/, reward/, "
                  "prompts.jsonl)")
      ->capture_default_str();
  cmd->add_option("--alphas", args->alphas, "search this grid (e.g. 0,1,2,4,8) instead of --auto");
  auto* prompts =
      cmd->add_option("--prompts", args->prompts, "number of prompts (default 256; --planted: 16)")
          ->check(count_in(1, 100000));
  auto* tokens =
      cmd->add_option("--max-new-tokens", args->max_new_tokens, "default 64; --planted: 48")
          ->check(count_in(1, kMaxNewTokens));
  cmd->add_option("--temperature", args->temperature, "sampling temperature (0 = greedy)")
      ->capture_default_str()
      ->check(real_in(0, 1e4));
  cmd->add_option("--seed", args->seed, "sampling seed")
      ->capture_default_str()
      ->check(count_in(0, UINT64_MAX));
  cmd->add_flag("--planted", args->planted,
                "the generated demo instead: random models with planted directions, seconds");
  add_threads_option(*cmd, args->threads);
  cmd->add_flag("--force", args->force, "replace the folder if it exists (and expo demo wrote it)");
  cmd->add_flag("--force-any-folder", args->force_any,
                "with --force: replace the folder even when it is not one expo demo wrote");
  cmd->callback([args, invocation, prompts, tokens] {
    args->prompts_given = prompts->count() > 0;
    args->tokens_given = tokens->count() > 0;
    run(*args, invocation);
  });
}

}  // namespace expo::cli
