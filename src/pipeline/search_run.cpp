#include "pipeline/search_run.h"

#include <chrono>

#include "core/error.h"
#include "eval/results_log.h"

namespace expo {

namespace fs = std::filesystem;

SearchRunResult run_search(SearchRunOptions options, const SearchRunEvents& events) {
  const fs::path dir = options.pipeline.out_dir;
  const bool resume = options.pipeline.resume;
  std::vector<std::string> ids;
  for (const auto& p : options.pipeline.prompts.prompts) ids.push_back(p.id_text);
  auto warn = [&](const std::string& w) {
    if (events.warning) events.warning(w);
  };

  SearchPipeline pipeline(std::move(options.pipeline));
  fs::create_directories(dir);
  ResultsLog log(dir / "results.jsonl", resume);
  for (const auto& w : log.warnings()) warn(w);
  for (const auto& w : pipeline.warnings()) warn(w);
  size_t warned = pipeline.warnings().size();

  if (events.stage) pipeline.set_progress(events.stage);
  SearchContext context;
  context.evaluate = [&](double alpha) {
    AlphaResult r = pipeline.evaluate(alpha);
    for (; warned < pipeline.warnings().size(); ++warned) warn(pipeline.warnings()[warned]);
    return r;
  };
  context.log = &log;
  context.prompt_ids = ids;
  size_t finished = 0;  // alphas in results.jsonl
  context.on_progress = [&](const SearchProgress& s) {
    finished = s.done;
    if (events.alpha_done) events.alpha_done(s);
  };

  SearchRunResult result;
  const auto start = std::chrono::steady_clock::now();
  try {
    result.outcome = options.alphas.empty() ? auto_search(options.auto_options, context)
                                            : grid_search(options.alphas, context);
  } catch (const Error& e) {
    fail(e.what(), " (", finished, finished == 1 ? " alpha is" : " alphas are", " saved in ",
         (dir / "results.jsonl").string(), "; run the same command with --resume to continue)");
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  ReportOptions report;
  report.details = std::move(options.report_details);
  result.report = write_report(dir, result.outcome, report);
  if (!options.write_best.empty())
    pipeline.write_model(result.outcome.best_alpha, options.write_best, options.invocation);
  return result;
}

}  // namespace expo
