#pragma once
// A whole `expo search` run: the pipeline (search_pipeline.h) driven by the grid or automatic
// search (eval/search.h) with its results log, the report written into the output folder and,
// when asked, the best model. The command line checks the options and prints; this does the
// work and tells it what happens through SearchRunEvents.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "eval/report.h"
#include "eval/search.h"
#include "pipeline/search_pipeline.h"

namespace expo {

struct SearchRunOptions {
  SearchPipelineOptions pipeline;  // out_dir is the output folder D
  std::vector<double> alphas;      // the grid; empty: the automatic search
  AutoSearchOptions auto_options;
  std::vector<std::string> report_details;  // bullet lines for report.md
  std::filesystem::path write_best;         // empty: no model written
  std::string invocation;                   // the command line, for the best model's card
};

struct SearchRunEvents {
  std::function<void(const std::string&)> warning;        // "..." (without "warning: ")
  std::function<void(const PipelineProgress&)> stage;     // within an alpha
  std::function<void(const SearchProgress&)> alpha_done;  // an alpha finished or resumed
};

struct SearchRunResult {
  SearchOutcome outcome;
  ReportFiles report;
  double seconds = 0;  // the search itself, without the report and the best model
};

// Checks the models and prompts before anything is written to D, then searches. On an error
// during the search, the message says how many alphas are saved in D/results.jsonl and to use
// --resume.
SearchRunResult run_search(SearchRunOptions options, const SearchRunEvents& events);

}  // namespace expo
