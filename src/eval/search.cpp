#include "eval/search.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "core/error.h"

namespace expo {

namespace {

constexpr size_t kNone = std::numeric_limits<size_t>::max();
// (3 - sqrt(5)) / 2: golden-section search probes this fraction into the larger segment.
constexpr double kGoldenStep = 0.3819660112501051;

void check_alpha(double alpha, const char* what) {
  if (!std::isfinite(alpha) || alpha < 0)
    fail(what, ": alpha ", alpha, " must be a finite number >= 0");
}

// Higher mean reward; a NaN mean (every prompt failed) is never better.
bool better(double a, double b) { return std::isfinite(a) && (!std::isfinite(b) || a > b); }

// Runs or recalls alphas: each alpha is used once; finished ones come from the log.
class Runner {
 public:
  Runner(const SearchContext& context, const char* method) : c_(context) {
    if (!c_.evaluate) fail("search: no evaluate callback");
    out.method = method;
  }

  size_t used() const { return out.results.size(); }

  size_t find(double alpha) const {
    for (size_t i = 0; i < out.results.size(); ++i)
      if (same_alpha(out.results[i].alpha, alpha)) return i;
    return kNone;
  }

  double mean(size_t i) const { return out.summaries[i].mean_reward; }
  double alpha(size_t i) const { return out.results[i].alpha; }

  size_t get(double alpha) {
    if (const size_t i = find(alpha); i != kNone) return i;
    const AlphaResult* baseline = out.results.empty() ? nullptr : &out.results[0];
    if (!baseline && alpha != 0) fail("search: alpha 0 (the baseline) must be evaluated first");
    AlphaResult r;
    bool resumed = false;
    std::string where;
    if (c_.log) {
      if (auto loaded = c_.log->find(alpha)) {
        r = std::move(*loaded);
        resumed = true;
        where = c_.log->path().string();
      }
    }
    if (!resumed) {
      r = c_.evaluate(alpha);
      r.alpha = alpha;
      ++out.evaluated;
      where = str("the evaluation of alpha ", alpha);
    } else {
      ++out.resumed;
    }
    check_result(r, baseline, where);
    if (!c_.prompt_ids.empty()) {
      if (r.rewards.size() != c_.prompt_ids.size())
        fail(where, ": alpha ", alpha, " has ", r.rewards.size(),
             " prompts but the prompt set has ", c_.prompt_ids.size(),
             resumed ? ": this folder holds a search over other prompts; use another folder" : "");
      if (r.ids.empty()) r.ids = c_.prompt_ids;
      for (size_t i = 0; i < r.ids.size(); ++i)
        if (r.ids[i] != c_.prompt_ids[i])
          fail(
              where, ": alpha ", alpha, ": prompt ", i, " is \"", r.ids[i],
              "\" but the prompt set's is \"", c_.prompt_ids[i], "\"",
              resumed ? ": this folder holds a search over other prompts; use another folder" : "");
    }
    AlphaSummary summary = summarize(r, baseline ? baseline : &r);
    if (!resumed && c_.log) c_.log->append(r, summary);
    out.results.push_back(std::move(r));
    out.summaries.push_back(summary);
    if (c_.on_progress) {
      SearchProgress p;
      p.done = out.results.size();
      p.total = std::max(total, p.done);
      p.alpha = alpha;
      p.resumed = resumed;
      p.summary = &out.summaries.back();
      c_.on_progress(p);
    }
    return out.results.size() - 1;
  }

  // Best mean reward; the smaller alpha on a tie.
  void finish(std::string reason) {
    out.stop_reason = std::move(reason);
    size_t best = kNone;
    for (size_t i = 0; i < out.results.size(); ++i) {
      if (best == kNone) {
        best = i;
        continue;
      }
      const double m = mean(i), b = mean(best);
      if (better(m, b) || (m == b && alpha(i) < alpha(best))) best = i;
    }
    out.best = best == kNone ? 0 : best;
    out.best_alpha = out.results.empty() ? 0 : alpha(out.best);
  }

  SearchOutcome out;
  size_t total = 0;

 private:
  const SearchContext& c_;
};

// Golden-section steps to shrink a bracket of log-width `width` to log(1 + tol).
size_t golden_steps(double width, double tol) {
  const double target = std::log1p(tol);
  if (width <= target) return 0;
  return static_cast<size_t>(std::ceil(std::log(width / target) / std::log(1 / (1 - kGoldenStep))));
}

std::string fmt(double alpha) { return str(alpha); }

}  // namespace

double round_alpha(double alpha, int digits) {
  if (!(alpha > 0) || !std::isfinite(alpha)) return alpha;
  const int exponent = static_cast<int>(std::floor(std::log10(alpha)));
  const int decimals = digits - 1 - exponent;
  // Round through the decimal text so that e.g. 0.618 is the double nearest to 0.618.
  char buffer[64];
  if (decimals >= 0)
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, alpha);
  else
    std::snprintf(buffer, sizeof buffer, "%.*e", digits - 1, alpha);
  return std::strtod(buffer, nullptr);
}

SearchOutcome grid_search(const std::vector<double>& alphas, const SearchContext& context) {
  std::vector<double> order = {0.0};
  for (double a : alphas) {
    check_alpha(a, "grid search");
    if (std::none_of(order.begin(), order.end(), [&](double b) { return same_alpha(a, b); }))
      order.push_back(a);
  }
  Runner run(context, "grid");
  run.total = order.size();
  for (double a : order) run.get(a);
  run.finish("every alpha of the grid was evaluated");
  return std::move(run.out);
}

SearchOutcome auto_search(const AutoSearchOptions& o, const SearchContext& context) {
  if (o.scan.empty()) fail("auto search: the scan list is empty");
  std::vector<double> scan;
  for (double a : o.scan) {
    check_alpha(a, "auto search scan");
    if (a == 0) continue;  // alpha 0 is always evaluated first anyway
    scan.push_back(a);
  }
  std::sort(scan.begin(), scan.end());
  scan.erase(std::unique(scan.begin(), scan.end(), same_alpha), scan.end());
  if (scan.empty()) fail("auto search: the scan list holds no alpha > 0");
  if (!(o.min_alpha > 0) || !std::isfinite(o.min_alpha))
    fail("auto search: min_alpha ", o.min_alpha, " must be > 0");
  if (!(o.tol > 0) || !std::isfinite(o.tol)) fail("auto search: tol ", o.tol, " must be > 0");
  if (!(o.noise_z >= 0)) fail("auto search: noise_z ", o.noise_z, " must be >= 0");
  if (o.max_evaluations < 2) fail("auto search: max_evaluations must be at least 2");
  if (o.significant_digits < 1 || o.significant_digits > 15)
    fail("auto search: significant_digits must be between 1 and 15");

  Runner run(context, "auto");
  auto estimate = [&](size_t more) { run.total = std::min(o.max_evaluations, run.used() + more); };
  estimate(1 + scan.size() + golden_steps(std::log(9.0), o.tol));
  const std::string out_of_budget =
      str("max_evaluations (", o.max_evaluations, ") alphas were used");

  run.get(0);

  // 1. The scan.
  size_t best = kNone;
  int worse_in_a_row = 0;
  for (size_t k = 0; k < scan.size(); ++k) {
    if (run.used() >= o.max_evaluations) {
      run.finish(out_of_budget + " during the scan");
      return std::move(run.out);
    }
    const size_t i = run.get(scan[k]);
    if (best == kNone || better(run.mean(i), run.mean(best))) {
      best = i;
      worse_in_a_row = 0;
      continue;
    }
    if (!o.stop_scan_when_worse) continue;
    const PairedDifference d = paired_difference(run.out.results[best], run.out.results[i]);
    const bool significantly_worse = d.n >= 2 && std::isfinite(d.se) && d.mean > o.noise_z * d.se;
    worse_in_a_row = significantly_worse ? worse_in_a_row + 1 : 0;
    if (worse_in_a_row >= 2 && k + 1 < scan.size()) {
      estimate(0);
      break;
    }
  }

  // 2. Alpha 0 best: nothing to refine.
  if (!better(run.mean(best), run.mean(0))) {
    run.finish(str("alpha 0 (the aligned model) scored best: no scanned alpha (smallest ",
                   fmt(scan.front()), ") raised the mean reward"));
    return std::move(run.out);
  }

  // 3. The bracket around the best scanned alpha.
  double b = run.alpha(best);
  double below = 0, above = 0;  // the nearest evaluated alphas on each side of b
  for (size_t i = 0; i < run.used(); ++i) {
    const double a = run.alpha(i);
    if (a > 0 && a < b) below = std::max(below, a);
    if (a > b && (above == 0 || a < above)) above = a;
  }
  double lo = below > 0 ? below : std::min(o.min_alpha, b);
  double hi = above > 0 ? above : b;
  size_t b_index = best;

  const double width_tol = std::log1p(o.tol);
  for (;;) {
    estimate(golden_steps(std::log(hi / lo), o.tol));
    if (std::log(hi / lo) <= width_tol) {
      run.finish(str("the bracket [", fmt(lo), ", ", fmt(hi), "] is within tol (", o.tol,
                     ", relative) around the best alpha"));
      break;
    }
    bool any_end = false, all_noise = true;
    for (double end : {lo, hi}) {
      if (same_alpha(end, b)) continue;
      any_end = true;
      const size_t e = run.find(end);
      if (e == kNone) {
        all_noise = false;
        continue;
      }
      const PairedDifference d = paired_difference(run.out.results[b_index], run.out.results[e]);
      if (!(d.n >= 2 && std::isfinite(d.se) && std::fabs(d.mean) < o.noise_z * d.se))
        all_noise = false;
    }
    if (any_end && all_noise) {
      run.finish(str("the rewards at the bracket's ends [", fmt(lo), ", ", fmt(hi),
                     "] are within noise (", o.noise_z, " paired standard errors) of alpha ",
                     fmt(b), "'s"));
      break;
    }
    if (run.used() >= o.max_evaluations) {
      run.finish(out_of_budget);
      break;
    }
    const double ul = std::log(lo), ub = std::log(b), uh = std::log(hi);
    const bool right = uh - ub > ub - ul;
    const double u = right ? ub + kGoldenStep * (uh - ub) : ub - kGoldenStep * (ub - ul);
    const double x = round_alpha(std::exp(u), o.significant_digits);
    const bool inside = right ? (x > b && x < hi) : (x > lo && x < b);
    if (!inside || same_alpha(x, b) || same_alpha(x, lo) || same_alpha(x, hi)) {
      run.finish(str("the bracket [", fmt(lo), ", ", fmt(hi), "] is at the resolution of ",
                     o.significant_digits, " significant digits"));
      break;
    }
    const size_t xi = run.get(x);
    if (better(run.mean(xi), run.mean(b_index))) {
      (right ? lo : hi) = b;
      b = x;
      b_index = xi;
    } else {
      (right ? hi : lo) = x;
    }
  }
  return std::move(run.out);
}

}  // namespace expo
