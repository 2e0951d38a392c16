// expo diff: where alignment changed the model, per tensor and per layer.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/option_ranges.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "merge/diff.h"

namespace expo::cli {

namespace {
struct DiffArgs {
  std::string sft, aligned, revision;
  bool json = false;
  size_t threads = 0;
};

void run(const DiffArgs& args) {
  const auto sft = Checkpoint::open(args.sft, args.revision);
  const auto aligned = Checkpoint::open(args.aligned, args.revision);
  PlanOptions options;
  options.on_missing = OnMissing::kCopyAligned;  // compare what matches, list the rest
  const Plan plan = make_plan(sft, aligned, options);
  ThreadPool pool(args.threads);
  const auto report = diff_checkpoints(plan, pool, !args.json && StatusLine::stderr_is_terminal());
  if (args.json)
    std::fputs(format_diff_json(report, sft.spec(), aligned.spec()).c_str(), stdout);
  else
    std::fputs(format_diff_table(report).c_str(), stdout);
}
}  // namespace

void add_diff_command(CLI::App& app) {
  auto args = std::make_shared<DiffArgs>();
  auto* cmd = app.add_subcommand(
      "diff",
      "Per tensor and per layer: |aligned - sft|, that relative to |aligned|, and the cosine "
      "between the two models' weights.\nExample: expo diff --sft ./mistral-7b-sft-beta "
      "--aligned ./zephyr-7b-beta");
  cmd->add_option("--sft", args->sft, "theta0, the SFT checkpoint")->required();
  cmd->add_option("--aligned", args->aligned, "theta1, the aligned checkpoint")->required();
  cmd->add_option("--revision", args->revision, "revision of repo ids in the Hugging Face cache");
  add_threads_option(*cmd, args->threads);
  cmd->add_flag("--json", args->json, "machine-readable output");
  cmd->callback([args] { run(*args); });
}

}  // namespace expo::cli
