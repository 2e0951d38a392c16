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
  bool auto_search = false, resume = false, keep = false;
  AutoSearchOptions auto_options;
  GenerationArgs g;
  BackendArgs backend;
  std::string serve;
  double serve_timeout = 600;
  std::vector<std::string> reward_endpoints;
  bool allow_nonfinite = false;
  size_t threads = 0;
};

// Checks the options, runs the search (printing progress on stderr, the table, the best alpha
// and the report's paths on stdout), writes the report and, with write_best, the best model.
SearchOutcome run_search(SearchArgs& args);

}  // namespace expo::cli
