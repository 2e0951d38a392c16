// Choosing alpha: statistics on hand-computed numbers, results.jsonl (append, resume, crash
// repair), grid search, and the automatic search on synthetic reward curves with fake
// evaluations (fewer evaluations than a grid of the same resolution, the optimum within tol,
// stopping on noise, identical decisions after a resume).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "core/splitmix64.h"
#include "eval/search.h"
#include "test_util.h"

namespace expo {
namespace {

using testing::error_of;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

AlphaResult make_result(double alpha, std::vector<double> rewards,
                        std::vector<double> tokens = {}) {
  AlphaResult r;
  r.alpha = alpha;
  r.rewards = std::move(rewards);
  r.answer_tokens = tokens.empty() ? std::vector<double>(r.rewards.size(), 1) : tokens;
  r.answer_chars.assign(r.rewards.size(), 4);
  for (size_t i = 0; i < r.rewards.size(); ++i) r.ids.push_back(str("p", i));
  return r;
}

// ---- statistics ----

TEST(AlphaStats, HandComputed) {
  const AlphaResult base = make_result(0, {1, 2, 3, 4}, {10, 20, 30, 40});
  AlphaResult r = make_result(0.5, {2, 2, 5, kNaN}, {10, 20, 30, 400});
  r.failed = 1;
  r.truncated = 2;

  const AlphaSummary s = summarize(r, &base);
  EXPECT_EQ(s.alpha, 0.5);
  EXPECT_EQ(s.prompts, 4u);
  EXPECT_EQ(s.scored, 3u);
  EXPECT_DOUBLE_EQ(s.mean_reward, 3.0);
  // deviations -1, -1, 2: sample variance 6 / 2 = 3, s.e. sqrt(3) / sqrt(3) = 1
  EXPECT_DOUBLE_EQ(s.reward_se, 1.0);
  // pairs (2 vs 1) win, (2 vs 2) tie, (5 vs 3) win; the failed prompt is left out
  EXPECT_EQ(s.paired, 3u);
  EXPECT_DOUBLE_EQ(s.win_rate, 2.5 / 3);
  EXPECT_DOUBLE_EQ(s.mean_answer_tokens, 20.0);  // over the scored prompts
  EXPECT_DOUBLE_EQ(s.mean_answer_chars, 4.0);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.truncated, 2u);

  const AlphaSummary b = summarize(base, &base);
  EXPECT_DOUBLE_EQ(b.mean_reward, 2.5);
  EXPECT_DOUBLE_EQ(b.reward_se, std::sqrt(5.0 / 3.0) / 2.0);
  EXPECT_DOUBLE_EQ(b.win_rate, 0.5);  // alpha 0 against itself: all ties
  EXPECT_TRUE(std::isnan(summarize(r, nullptr).win_rate));

  const PairedDifference d = paired_difference(r, base);  // differences 1, 0, 2
  EXPECT_EQ(d.n, 3u);
  EXPECT_DOUBLE_EQ(d.mean, 1.0);
  EXPECT_DOUBLE_EQ(d.se, 1.0 / std::sqrt(3.0));

  const AlphaSummary one = summarize(make_result(1, {7}), nullptr);
  EXPECT_DOUBLE_EQ(one.mean_reward, 7);
  EXPECT_TRUE(std::isnan(one.reward_se));  // undefined with one score
  const AlphaSummary none = summarize(make_result(1, {kNaN, kNaN}), nullptr);
  EXPECT_EQ(none.scored, 0u);
  EXPECT_TRUE(std::isnan(none.mean_reward));
}

TEST(AlphaStats, JsonRoundTripAndChecks) {
  AlphaResult r = make_result(0.3, {1.5, kNaN, -2.25}, {5, 0, 7});
  r.failed = 1;
  const auto j = result_to_json(r, summarize(r, nullptr));
  EXPECT_TRUE(j["rewards"][1].is_null());
  EXPECT_EQ(j["summary"]["scored"], 2);
  const AlphaResult back = result_from_json(nlohmann::json::parse(j.dump()), "x");
  EXPECT_EQ(back.alpha, 0.3);
  EXPECT_EQ(back.ids, r.ids);
  EXPECT_EQ(back.rewards[0], 1.5);
  EXPECT_TRUE(std::isnan(back.rewards[1]));
  EXPECT_EQ(back.answer_tokens, r.answer_tokens);
  EXPECT_EQ(back.failed, 1u);

  EXPECT_ERROR(result_from_json(nlohmann::json::parse(R"({"alpha": 1})"), "f:3"), "f:3",
               "missing \"rewards\"");
  EXPECT_ERROR(result_from_json(nlohmann::json::parse(
                                    R"({"alpha": 1, "rewards": [1, "x"], "answer_tokens": [1, 1],
                                        "answer_chars": [1, 1], "failed": 0, "truncated": 0})"),
                                "f:3"),
               "f:3", "\"rewards\"[1] must be a number");
  EXPECT_ERROR(result_from_json(nlohmann::json::parse(
                                    R"({"alpha": 1, "rewards": [1], "answer_tokens": [1, 1],
                                        "answer_chars": [1], "failed": 0, "truncated": 0})"),
                                "f:3"),
               "f:3", "1 rewards but 2 answer token counts");
  EXPECT_ERROR(result_from_json(nlohmann::json::parse(
                                    R"({"alpha": -1, "rewards": [1], "answer_tokens": [1],
                                        "answer_chars": [1], "failed": 0, "truncated": 0})"),
                                "f:3"),
               "alpha -1");
  EXPECT_ERROR(check_result(make_result(1, {1, 2}), &r, "here"), "here", "2 prompts",
               "alpha 0.3 has 3");
  AlphaResult other = make_result(1, {1, 2, 3});
  other.ids[2] = "zz";
  EXPECT_ERROR(check_result(other, &r, "here"), "prompt 2 is \"zz\"", "paired");
}

// ---- fakes ----

// reward of prompt i at alpha: curve(alpha) + a per-prompt offset (cancelled by pairing)
// + sigma * noise with unit variance, fixed by (i, alpha): a deterministic "model".
struct FakeModel {
  FakeModel(std::function<double(double)> curve, double sigma, size_t prompts = 100)
      : curve(std::move(curve)), sigma(sigma), prompts(prompts) {}
  std::function<double(double)> curve;
  double sigma = 0;
  size_t prompts = 100;
  std::vector<double> calls;
  size_t crash_at_call = 0;  // throw (like Ctrl-C) when this many calls were made; 0 = never
  uint64_t seed = 0;         // of the noise

  AlphaResult operator()(double alpha) {
    if (crash_at_call && calls.size() == crash_at_call) fail("interrupted");
    calls.push_back(alpha);
    AlphaResult r;
    r.alpha = alpha;
    uint64_t bits;
    std::memcpy(&bits, &alpha, sizeof bits);
    for (size_t i = 0; i < prompts; ++i) {
      SplitMix64 rng(bits * 31 + i + seed * 1000003);
      const double u = (static_cast<double>(rng.next() >> 11) + 0.5) / 9007199254740992.0;
      const double noise = (u - 0.5) * std::sqrt(12.0);
      r.ids.push_back(str("q", i));
      r.rewards.push_back(curve(alpha) + 0.5 * std::sin(static_cast<double>(i)) + sigma * noise);
      r.answer_tokens.push_back(100 + 10 * alpha);
      r.answer_chars.push_back(400 + 40 * alpha);
    }
    return r;
  }
  Evaluate evaluate() {
    return [this](double alpha) { return (*this)(alpha); };
  }
};

// A smooth unimodal reward of log(alpha) peaking at `best`; alpha 0 scores like a tiny alpha.
std::function<double(double)> peak_at(double best, double width = 1.5) {
  return [=](double alpha) {
    const double u = std::log(std::max(alpha, 1e-3)) - std::log(best);
    return 1.0 - u * u / (width * width);
  };
}

std::vector<double> alphas_of(const SearchOutcome& o) {
  std::vector<double> out;
  for (const auto& r : o.results) out.push_back(r.alpha);
  return out;
}

// ---- grid ----

TEST(GridSearch, BaselineFirstEachAlphaOnceBestByMean) {
  FakeModel model{peak_at(1.0), 0.01};
  std::vector<SearchProgress> progress;
  SearchContext c;
  c.evaluate = model.evaluate();
  c.on_progress = [&](const SearchProgress& p) { progress.push_back(p); };
  const SearchOutcome o = grid_search({0.5, 1, 0.5, 2, 0}, c);
  EXPECT_EQ(model.calls, (std::vector<double>{0, 0.5, 1, 2}));
  EXPECT_EQ(alphas_of(o), (std::vector<double>{0, 0.5, 1, 2}));
  EXPECT_EQ(o.best_alpha, 1.0);
  EXPECT_EQ(o.results[o.best].alpha, 1.0);
  EXPECT_EQ(o.evaluated, 4u);
  EXPECT_EQ(o.method, "grid");
  ASSERT_EQ(progress.size(), 4u);
  EXPECT_EQ(progress[2].done, 3u);
  EXPECT_EQ(progress[2].total, 4u);
  EXPECT_EQ(progress[2].alpha, 1.0);
  EXPECT_FALSE(progress[2].resumed);
  ASSERT_NE(progress[2].summary, nullptr);
  EXPECT_GT(progress[2].summary->win_rate, 0.5);
  EXPECT_ERROR(grid_search({-1}, c), "alpha -1");
}

TEST(GridSearch, ChecksPairingAndPromptIds) {
  SearchContext c;
  size_t calls = 0;
  c.evaluate = [&](double alpha) {
    ++calls;
    return make_result(alpha, calls == 1 ? std::vector<double>{1, 2} : std::vector<double>{1});
  };
  EXPECT_ERROR(grid_search({1}, c), "alpha 1 has 1 prompts but alpha 0 has 2", "paired");
  c.evaluate = [&](double alpha) { return make_result(alpha, {1, 2}); };
  c.prompt_ids = {"p0", "other"};
  EXPECT_ERROR(grid_search({1}, c), "prompt 1 is \"p1\"", "\"other\"");
}

TEST(GridSearch, ResumeSkipsFinishedAlphas) {
  testing::TempDir dir;
  const auto path = dir / "search" / "results.jsonl";
  FakeModel first{peak_at(1.0), 0.01};
  {
    ResultsLog log(path, /*resume=*/false);
    SearchContext c{first.evaluate(), &log, {}, {}};
    grid_search({0.5, 1}, c);
  }
  EXPECT_EQ(first.calls.size(), 3u);
  EXPECT_ERROR(ResultsLog(path, false), "results.jsonl", "already holds results", "--resume");

  FakeModel second{peak_at(1.0), 0.01};
  ResultsLog log(path, /*resume=*/true);
  EXPECT_EQ(log.loaded().size(), 3u);
  EXPECT_TRUE(log.warnings().empty());
  std::vector<bool> resumed;
  SearchContext c{
      second.evaluate(), &log, [&](const SearchProgress& p) { resumed.push_back(p.resumed); }, {}};
  const SearchOutcome o = grid_search({0.5, 1, 2}, c);
  EXPECT_EQ(second.calls, std::vector<double>{2});  // only the new alpha
  EXPECT_EQ(o.evaluated, 1u);
  EXPECT_EQ(o.resumed, 3u);
  EXPECT_EQ(resumed, (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(o.best_alpha, 1.0);
  // the resumed results are bit-identical to the evaluated ones
  EXPECT_EQ(o.results[1].rewards, first(0.5).rewards);
  EXPECT_EQ(ResultsLog(path, true).loaded().size(), 4u);
}

// ---- results.jsonl repair and errors ----

std::string result_line(double alpha) {
  const AlphaResult r = make_result(alpha, {1, 2});
  return result_to_json(r, summarize(r, nullptr)).dump() + "\n";
}

TEST(ResultsLog, TruncatedLastLineIsDroppedWithAWarning) {
  testing::TempDir dir;
  const auto path = dir / "results.jsonl";
  const std::string two = result_line(0) + result_line(0.5);
  write_text_file(path, two + result_line(1).substr(0, 30));  // a crash mid-write
  {
    ResultsLog log(path, true);
    ASSERT_EQ(log.loaded().size(), 2u);
    ASSERT_EQ(log.warnings().size(), 1u);
    EXPECT_CONTAINS(log.warnings()[0], "results.jsonl:3");
    EXPECT_CONTAINS(log.warnings()[0], "truncated");
    EXPECT_EQ(read_text_file(path), two);  // cut off the file
    EXPECT_FALSE(log.find(1).has_value());
    EXPECT_TRUE(log.find(0.5).has_value());
    const AlphaResult r = make_result(1, {1, 2});
    log.append(r, summarize(r, nullptr));
  }
  ResultsLog again(path, true);
  EXPECT_EQ(again.loaded().size(), 3u);
  EXPECT_TRUE(again.warnings().empty());

  // a complete last line without its newline is kept, and the newline added
  write_text_file(dir / "b.jsonl",
                  result_line(0) + result_line(2).substr(0, result_line(2).size() - 1));
  {
    ResultsLog log(dir / "b.jsonl", true);
    EXPECT_EQ(log.loaded().size(), 2u);
    const AlphaResult r = make_result(3, {1, 2});
    log.append(r, summarize(r, nullptr));
  }
  EXPECT_EQ(ResultsLog(dir / "b.jsonl", true).loaded().size(), 3u);
}

TEST(ResultsLog, OtherMalformedLinesAreErrors) {
  testing::TempDir dir;
  const auto path = dir / "results.jsonl";
  auto rewrite = [&](const std::string& text) {
    std::filesystem::remove(path);
    write_text_file(path, text);
  };
  rewrite(result_line(0) + "{\"alpha\": 0.5, \"rew\n" + result_line(1));
  EXPECT_ERROR(ResultsLog(path, true), "results.jsonl:2", "malformed JSON");
  rewrite(result_line(0) + "{\"alpha\": 0.5}\n");
  EXPECT_ERROR(ResultsLog(path, true), "results.jsonl:2", "missing \"rewards\"");
  rewrite(result_line(0) + result_line(0.5) + result_line(0.5));
  EXPECT_ERROR(ResultsLog(path, true), "results.jsonl:3", "alpha 0.5 appears twice");
  // an empty file is a fresh start, with or without resume
  write_text_file(dir / "empty.jsonl", "");
  EXPECT_TRUE(ResultsLog(dir / "empty.jsonl", false).loaded().empty());
}

// ---- auto ----

// Alphas a log grid needs to know the optimum within the same relative tolerance over the
// same range: [min_alpha, max scanned alpha] at ratio 1 + tol, plus alpha 0.
size_t equivalent_grid_size(const AutoSearchOptions& o) {
  return 1 +
         static_cast<size_t>(std::ceil(std::log(o.scan.back() / o.min_alpha) / std::log1p(o.tol))) +
         1;
}

void expect_distinct(const std::vector<double>& calls) {
  std::set<double> seen(calls.begin(), calls.end());
  EXPECT_EQ(seen.size(), calls.size()) << "an alpha was evaluated twice";
}

TEST(AutoSearch, RoundAlpha) {
  EXPECT_EQ(round_alpha(0.6180339887, 3), 0.618);
  EXPECT_EQ(round_alpha(12.345, 3), 12.3);
  EXPECT_EQ(round_alpha(123456, 3), 123000);
  EXPECT_EQ(round_alpha(0.0012345, 3), 0.00123);
  EXPECT_EQ(round_alpha(2.5, 2), 2.5);
  EXPECT_EQ(round_alpha(0, 3), 0);
}

TEST(AutoSearch, FindsTheOptimumWithinTolInFewEvaluations) {
  const AutoSearchOptions o;
  for (double optimum : {0.05, 0.2, 0.7, 2.2, 8.0, 20.0}) {
    SCOPED_TRACE(optimum);
    FakeModel model{peak_at(optimum), 0.001};  // noise far below the differences
    SearchContext c;
    c.evaluate = model.evaluate();
    const SearchOutcome o_ = auto_search(o, c);
    EXPECT_LE(std::fabs(std::log(o_.best_alpha / optimum)), std::log1p(o.tol))
        << "best " << o_.best_alpha << ", stopped: " << o_.stop_reason;
    EXPECT_CONTAINS(o_.stop_reason, "within tol");
    EXPECT_LE(model.calls.size(), 16u);
    EXPECT_LT(model.calls.size(), equivalent_grid_size(o) / 4);
    EXPECT_EQ(model.calls.front(), 0.0);
    EXPECT_EQ(o_.evaluated, model.calls.size());
    expect_distinct(model.calls);
    for (double a : model.calls) EXPECT_EQ(round_alpha(a, 3), a);  // readable alphas
  }
  EXPECT_GE(equivalent_grid_size(o), 70u);
}

TEST(AutoSearch, ScanStopsEarlyPastTheOptimum) {
  FakeModel model{peak_at(0.3, 0.8), 0.001};
  SearchContext c;
  c.evaluate = model.evaluate();
  auto_search({}, c);
  // 0.1, 0.3 (best), then 1 and 3 are clearly worse: 10 and 25 are never generated
  EXPECT_EQ(std::count(model.calls.begin(), model.calls.end(), 10.0), 0);
  EXPECT_EQ(std::count(model.calls.begin(), model.calls.end(), 25.0), 0);
  EXPECT_EQ(std::count(model.calls.begin(), model.calls.end(), 3.0), 1);
}

TEST(AutoSearch, StopsWhenAlphaZeroIsBest) {
  FakeModel model{[](double alpha) { return -alpha; }, 0.001};
  SearchContext c;
  c.evaluate = model.evaluate();
  const SearchOutcome o = auto_search({}, c);
  EXPECT_EQ(o.best_alpha, 0.0);
  EXPECT_CONTAINS(o.stop_reason, "alpha 0");
  EXPECT_EQ(model.calls, (std::vector<double>{0, 0.1, 0.3, 1}));  // the scan stopped early too
}

TEST(AutoSearch, StopsOnNoise) {
  // Above alpha 0 the curve is far flatter than the noise: refining would chase noise. Several
  // noise seeds, so the test does not rest on one lucky draw.
  for (uint64_t seed = 0; seed < 8; ++seed) {
    SCOPED_TRACE(seed);
    auto curve = [](double alpha) { return alpha == 0 ? -1.0 : 1e-4 * std::log(alpha); };
    AutoSearchOptions options;
    options.tol = 0.01;
    FakeModel model(curve, 1.0, 200);
    model.seed = seed;
    SearchContext c;
    c.evaluate = model.evaluate();
    const SearchOutcome o = auto_search(options, c);
    EXPECT_CONTAINS(o.stop_reason, "within noise");
    EXPECT_LE(model.calls.size(), 1u + 6u + 5u);
    expect_distinct(model.calls);

    // without the noise rule the same search goes on to tol
    FakeModel chasing(curve, 1.0, 200);
    chasing.seed = seed;
    c.evaluate = chasing.evaluate();
    options.noise_z = 0;
    const SearchOutcome all = auto_search(options, c);
    EXPECT_EQ(all.stop_reason.find("within noise"), std::string::npos) << all.stop_reason;
    EXPECT_GE(chasing.calls.size(), model.calls.size() + 3) << all.stop_reason;
  }
}

TEST(AutoSearch, RespectsMaxEvaluations) {
  FakeModel model{peak_at(2.2), 0.001};
  SearchContext c;
  c.evaluate = model.evaluate();
  AutoSearchOptions options;
  options.max_evaluations = 9;
  const SearchOutcome o = auto_search(options, c);
  EXPECT_EQ(model.calls.size(), 9u);
  EXPECT_CONTAINS(o.stop_reason, "max_evaluations");
  options.max_evaluations = 3;
  FakeModel small{peak_at(2.2), 0.001};
  c.evaluate = small.evaluate();
  EXPECT_CONTAINS(auto_search(options, c).stop_reason, "during the scan");
  EXPECT_EQ(small.calls.size(), 3u);
}

TEST(AutoSearch, ResumeContinuesIdentically) {
  FakeModel reference{peak_at(2.2), 0.05};
  SearchContext rc;
  rc.evaluate = reference.evaluate();
  const SearchOutcome whole = auto_search({}, rc);
  ASSERT_GT(reference.calls.size(), 9u);

  for (size_t crash : {size_t{1}, size_t{4}, size_t{8}, reference.calls.size() - 1}) {
    SCOPED_TRACE(crash);
    testing::TempDir dir;
    const auto path = dir / "results.jsonl";
    FakeModel first{peak_at(2.2), 0.05};
    first.crash_at_call = crash;
    {
      ResultsLog log(path, false);
      SearchContext c{first.evaluate(), &log, {}, {}};
      EXPECT_ERROR(auto_search({}, c), "interrupted");
    }
    EXPECT_EQ(first.calls.size(), crash);
    if (crash == 4) {  // and a crash in the middle of writing the next line
      std::string text = read_text_file(path);
      std::filesystem::remove(path);
      write_text_file(path, text + "{\"alpha\": 3, \"ids\": [\"q0\"");
    }

    FakeModel second{peak_at(2.2), 0.05};
    ResultsLog log(path, true);
    EXPECT_EQ(log.warnings().size(), crash == 4 ? 1u : 0u);
    SearchContext c{second.evaluate(), &log, {}, {}};
    const SearchOutcome resumed = auto_search({}, c);
    // finished alphas are not evaluated again; together the two runs made the same calls
    std::vector<double> all = first.calls;
    all.insert(all.end(), second.calls.begin(), second.calls.end());
    EXPECT_EQ(all, reference.calls);
    EXPECT_EQ(resumed.resumed, crash);
    EXPECT_EQ(alphas_of(resumed), alphas_of(whole));
    EXPECT_EQ(resumed.best_alpha, whole.best_alpha);
    EXPECT_EQ(resumed.stop_reason, whole.stop_reason);
  }
}

TEST(AutoSearch, ResumeRefusesAnotherPromptSet) {
  testing::TempDir dir;
  FakeModel model{peak_at(2.2), 0.05, 10};
  {
    ResultsLog log(dir / "results.jsonl", false);
    SearchContext c{model.evaluate(), &log, {}, {}};
    grid_search({1}, c);
  }
  ResultsLog log(dir / "results.jsonl", true);
  SearchContext c{model.evaluate(), &log, {}, {"a", "b"}};
  EXPECT_ERROR(auto_search({}, c), "results.jsonl", "10 prompts but the prompt set has 2",
               "another folder");
}

TEST(AutoSearch, RejectsBadOptions) {
  SearchContext c;
  FakeModel model{peak_at(1), 0};
  c.evaluate = model.evaluate();
  AutoSearchOptions o;
  o.scan = {};
  EXPECT_ERROR(auto_search(o, c), "scan list is empty");
  o.scan = {0};
  EXPECT_ERROR(auto_search(o, c), "no alpha > 0");
  o = {};
  o.tol = 0;
  EXPECT_ERROR(auto_search(o, c), "tol");
  o = {};
  o.min_alpha = -1;
  EXPECT_ERROR(auto_search(o, c), "min_alpha");
  EXPECT_TRUE(model.calls.empty());
}

}  // namespace
}  // namespace expo
