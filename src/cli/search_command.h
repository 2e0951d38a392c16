#pragma once
// expo search's options and its whole run, shared by the search command and the demo (which
// runs the same search on its generated models).
#include <string>
#include <vector>

#include "cli/generation_args.h"
#include "eval/search.h"

namespace expo::cli {

struct SearchArgs {
  // Required: sft, aligned, reward_model, g.prompts_file, output_dir; alphas or --auto.
  std::string sft, aligned, reward_model, output_dir, alphas, write_best;
  std::string base;  // --base: with --sft and --aligned both LoRA adapters over it
  bool auto_search = false, resume = false, keep = false;
  AutoSearchOptions auto_options;
  GenerationArgs g;
  BackendArgs backend;
  std::string serve;
  double serve_timeout = 600;
  std::vector<std::string> reward_endpoints;
  bool allow_nonfinite = false;
  size_t threads = 0;
  std::string invocation;  // the command line, for the model card of --write-best
  bool quiet = false;      // print nothing on stdout (the demo's comparison run)
};

// Checks the options and runs the search (pipeline/search_run.h), printing progress on stderr
// and the table, the best alpha and the report's paths on stdout.
SearchOutcome run_search_command(SearchArgs& args);

}  // namespace expo::cli
