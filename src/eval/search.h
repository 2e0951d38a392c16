#pragma once
// Choosing alpha by reward (`expo search`). The model work (extrapolate, generate, score) is
// one injected callback, Evaluate(alpha) -> AlphaResult, so this layer is pure logic.
//
// Alpha = 0 is the aligned model itself: every search evaluates it first, as the baseline
// for the paired win rate. The best alpha is the one with the highest mean reward (the
// authors' rule), the smaller alpha on a tie.
//
// Grid: each alpha of a list, 0 first (added if missing), duplicates dropped, in list order.
//
// Auto (the paper's best alphas range from 0.1 to 25, on a log scale):
//  1. Scan: alpha 0, then AutoSearchOptions::scan (default 0.1, 0.3, 1, 3, 10, 25: steps of
//     about x3) in increasing order. The scan stops early once two scanned alphas in a row are
//     significantly worse than the best so far (paired mean difference > noise_z x its s.e.):
//     past the optimum, large alphas break the model and make long, slow answers.
//  2. If alpha 0 has the best mean reward, stop: extrapolation did not help at the smallest
//     alpha tried.
//  3. Refine by golden-section search on u = ln(alpha). The bracket is the best scanned alpha b
//     and its scanned neighbours [lo, hi]; below the smallest scanned alpha, lo = min_alpha
//     (an unevaluated end); above the largest, hi = b. Each step probes the larger of [lo, b]
//     and [b, hi] at 0.381966 of its length from b (in u), rounded to `significant_digits`
//     significant digits (so alphas stay readable: 0.618, not 0.6180339887), and keeps the
//     better point: a probe better than b becomes b; otherwise it becomes the end on its side.
//     Each step shrinks the bracket by about 0.618.
//  4. It stops (the reason is in SearchOutcome::stop_reason) when
//     - hi / lo <= 1 + tol (tol is relative: 0.1 means the optimum is known within 10%), or
//     - every end of the bracket other than b itself has been evaluated and its reward is
//       within noise of b's (|paired mean difference| < noise_z x paired standard error):
//       the curve is flat within the noise and further points would chase noise, or
//     - the rounded probe is an alpha the bracket already holds (the rounding's resolution), or
//     - max_evaluations alphas (alpha 0 and the scan included) have been used.
// Every decision depends only on the results, in order, so a resumed search (ResultsLog with
// resume) replays the same decisions, takes the finished alphas from the log instead of
// evaluating them, and continues exactly where it stopped. No alpha is evaluated twice.
// With the defaults a search uses about 1 + 6 + 5..7 evaluations, where a log grid over
// [0.03, 25] at the same 10% resolution needs about 70.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "eval/alpha_stats.h"
#include "eval/results_log.h"

namespace expo {

using Evaluate = std::function<AlphaResult(double alpha)>;

struct SearchProgress {
  size_t done = 0;       // alphas finished (evaluated now or taken from the log)
  size_t total = 0;      // grid: exact; auto: an estimate that can change as the search goes
  double alpha = 0;      // the alpha just finished
  bool resumed = false;  // taken from results.jsonl rather than evaluated
  const AlphaSummary* summary = nullptr;
};
using OnProgress = std::function<void(const SearchProgress&)>;

struct SearchContext {
  Evaluate evaluate;
  ResultsLog* log = nullptr;  // where finished alphas go and resumed ones come from (optional)
  OnProgress on_progress;     // optional
  // When set, every result (evaluated or loaded) must carry exactly these prompt ids, in this
  // order: a resumed folder from another prompt set is an error, not a silent mix.
  std::vector<std::string> prompt_ids;
};

struct AutoSearchOptions {
  std::vector<double> scan = {0.1, 0.3, 1, 3, 10, 25};
  double min_alpha = 0.03;      // the bracket's lower end when the smallest scanned alpha is best
  double tol = 0.1;             // relative width at which refinement stops: hi / lo <= 1 + tol
  double noise_z = 2.0;         // differences within noise_z paired standard errors are noise
  size_t max_evaluations = 20;  // alphas used in all, alpha 0 and the scan included
  int significant_digits = 3;   // refinement alphas are rounded to this many digits
  bool stop_scan_when_worse = true;
};

struct SearchOutcome {
  std::vector<AlphaResult> results;     // every alpha the search used, in the order used
  std::vector<AlphaSummary> summaries;  // the same order
  size_t best = 0;                      // index of the best alpha
  double best_alpha = 0;
  std::string method;       // "grid" or "auto"
  std::string stop_reason;  // auto: why it stopped, in words; grid: "grid done"
  size_t evaluated = 0;     // calls to evaluate in this run
  size_t resumed = 0;       // alphas taken from the results log
};

SearchOutcome grid_search(const std::vector<double>& alphas, const SearchContext& context);
SearchOutcome auto_search(const AutoSearchOptions& options, const SearchContext& context);

// alpha rounded to `digits` significant decimal digits (alpha > 0).
double round_alpha(double alpha, int digits);

}  // namespace expo
