#include "pipeline/search_run.h"

#include <chrono>

#include "core/error.h"
#include "core/fingerprint.h"
#include "core/folder_lock.h"
#include "eval/results_log.h"
#include "pipeline/run_fingerprint.h"

namespace expo {

namespace fs = std::filesystem;

namespace {

// With --resume, refuses a folder whose recorded settings differ from this run's, or that holds
// results without a record of their settings.
void check_resumed_settings(const fs::path& dir, const Fingerprint& now, bool resume) {
  if (!resume) return;
  const fs::path path = dir / "fingerprint.json";
  const auto recorded = read_fingerprint(path);
  if (recorded) {
    check_same_settings(
        *recorded, now, str("--resume: the search in ", dir.string()),
        str("Its results cannot be compared with this run's. Run the command that started it "
            "to continue it, or give another "
            "--output-dir for a search with these settings (",
            path.string(), " lists the recorded ones)."));
    return;
  }
  std::error_code ec;
  const fs::path results = dir / "results.jsonl";
  if (fs::exists(results, ec) && fs::file_size(results, ec) > 0)
    fail("--resume: ", dir.string(),
         " holds results but no fingerprint.json: they were made by an "
         "earlier expo, which did not record the models, prompts and "
         "options of a search, so this run cannot check that its results would be comparable. "
         "Finish that search with the expo that started it, or give another --output-dir");
}

}  // namespace

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
  const FolderLock lock(dir / ".expo.lock", "--output-dir " + dir.string(), "expo search");
  check_resumed_settings(dir, pipeline.fingerprint(), resume);
  ResultsLog log(dir / "results.jsonl", resume);
  // Written before the first result, and kept as it was when a resume matched it.
  if (!resume || !fs::exists(dir / "fingerprint.json")) {
    write_fingerprint(dir / "fingerprint.json", pipeline.fingerprint());
  }
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
