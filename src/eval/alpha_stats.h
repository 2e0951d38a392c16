#pragma once
// What one alpha scored, and its statistics: mean reward with its standard error, the paired
// win rate against alpha = 0 (the aligned model itself) and answer lengths.
//
// Rewards are paired: entry i is the same prompt at every alpha. A prompt whose answer or
// score failed has a NaN reward (null in JSON) and is left out of every statistic (of the
// paired ones when it failed at either alpha). Lengths are averaged over the scored prompts.
#include <cstddef>
#include <limits>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

namespace expo {

struct AlphaResult {
  double alpha = 0;
  std::vector<std::string> ids;       // prompt ids in order; may be empty (then not checked)
  std::vector<double> rewards;        // per prompt; NaN where the prompt failed
  std::vector<double> answer_tokens;  // per prompt, all turns together
  std::vector<double> answer_chars;   // per prompt, all turns together
  size_t failed = 0;                  // prompts without a reward
  size_t truncated = 0;               // prompts whose answer hit the token limit
};

struct AlphaSummary {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  double alpha = 0;
  size_t prompts = 0;  // rewards.size()
  size_t scored = 0;   // finite rewards
  double mean_reward = kNaN;
  // sample standard deviation (n - 1 denominator) / sqrt(n); NaN with fewer than 2 scores
  double reward_se = kNaN;
  // Against alpha = 0 over the prompts scored at both: (wins + ties / 2) / paired, where a win
  // is reward(alpha) > reward(0). NaN without a baseline. Alpha 0 itself gets 0.5.
  double win_rate = kNaN;
  size_t paired = 0;
  double mean_answer_tokens = kNaN;
  double mean_answer_chars = kNaN;
  size_t failed = 0;
  size_t truncated = 0;
};

// `baseline` is the alpha = 0 result (nullptr: no win rate).
AlphaSummary summarize(const AlphaResult& result, const AlphaResult* baseline);

// mean and standard error of reward(a) - reward(b) over prompts scored at both.
struct PairedDifference {
  double mean = AlphaSummary::kNaN;
  double se = AlphaSummary::kNaN;  // NaN with fewer than 2 pairs
  size_t n = 0;
};
PairedDifference paired_difference(const AlphaResult& a, const AlphaResult& b);

// Checks a result's own consistency (array lengths, counts), and against `baseline` when
// given (same number of prompts, same ids). `where` names it in errors.
void check_result(const AlphaResult& result, const AlphaResult* baseline, const std::string& where);

// One results.jsonl line: {"alpha", "ids", "rewards", "answer_tokens", "answer_chars",
// "failed", "truncated", "summary": {...}} (NaN as null); and back, strictly.
nlohmann::ordered_json result_to_json(const AlphaResult& result, const AlphaSummary& summary);
AlphaResult result_from_json(const nlohmann::json& object, const std::string& where);
nlohmann::ordered_json summary_to_json(const AlphaSummary& summary);

// A number for JSON: null when it is NaN or infinite (JSON has neither).
nlohmann::ordered_json nan_as_null(double v);

// The summaries in increasing alpha (stable for equal alphas).
std::vector<AlphaSummary> sorted_by_alpha(std::span<const AlphaSummary> summaries);

}  // namespace expo
