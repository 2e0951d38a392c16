#include "eval/alpha_stats.h"

#include <algorithm>

#include <cmath>

#include "core/error.h"
#include "core/json_reader.h"

namespace expo {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

struct MeanSe {
  double mean = AlphaSummary::kNaN;
  double se = AlphaSummary::kNaN;
};

// Two passes (mean, then squared deviations): no cancellation for rewards far from zero.
MeanSe mean_se(const std::vector<double>& values) {
  MeanSe out;
  const size_t n = values.size();
  if (n == 0) return out;
  double sum = 0;
  for (double v : values) sum += v;
  out.mean = sum / static_cast<double>(n);
  if (n < 2) return out;
  double squares = 0;
  for (double v : values) squares += (v - out.mean) * (v - out.mean);
  out.se = std::sqrt(squares / static_cast<double>(n - 1)) / std::sqrt(static_cast<double>(n));
  return out;
}

double mean_where_scored(const std::vector<double>& values, const std::vector<double>& rewards) {
  double sum = 0;
  size_t n = 0;
  for (size_t i = 0; i < rewards.size() && i < values.size(); ++i)
    if (std::isfinite(rewards[i])) sum += values[i], ++n;
  return n ? sum / static_cast<double>(n) : AlphaSummary::kNaN;
}

}  // namespace

ordered_json nan_as_null(double v) {
  return std::isfinite(v) ? ordered_json(v) : ordered_json(nullptr);
}

AlphaSummary summarize(const AlphaResult& r, const AlphaResult* baseline) {
  AlphaSummary s;
  s.alpha = r.alpha;
  s.prompts = r.rewards.size();
  std::vector<double> scored;
  for (double v : r.rewards)
    if (std::isfinite(v)) scored.push_back(v);
  s.scored = scored.size();
  const MeanSe m = mean_se(scored);
  s.mean_reward = m.mean;
  s.reward_se = m.se;
  if (baseline) {
    double wins = 0;
    size_t n = 0;
    for (size_t i = 0; i < r.rewards.size() && i < baseline->rewards.size(); ++i) {
      const double a = r.rewards[i], b = baseline->rewards[i];
      if (!std::isfinite(a) || !std::isfinite(b)) continue;
      ++n;
      wins += a > b ? 1.0 : a == b ? 0.5 : 0.0;
    }
    s.paired = n;
    if (n) s.win_rate = wins / static_cast<double>(n);
  }
  s.mean_answer_tokens = mean_where_scored(r.answer_tokens, r.rewards);
  s.mean_answer_chars = mean_where_scored(r.answer_chars, r.rewards);
  s.failed = r.failed;
  s.truncated = r.truncated;
  return s;
}

PairedDifference paired_difference(const AlphaResult& a, const AlphaResult& b) {
  std::vector<double> d;
  for (size_t i = 0; i < a.rewards.size() && i < b.rewards.size(); ++i)
    if (std::isfinite(a.rewards[i]) && std::isfinite(b.rewards[i]))
      d.push_back(a.rewards[i] - b.rewards[i]);
  const MeanSe m = mean_se(d);
  return {m.mean, m.se, d.size()};
}

void check_result(const AlphaResult& r, const AlphaResult* baseline, const std::string& where) {
  if (!std::isfinite(r.alpha) || r.alpha < 0)
    fail(where, ": alpha ", r.alpha, " is not a finite number >= 0");
  const size_t n = r.rewards.size();
  if (n == 0) fail(where, ": alpha ", r.alpha, " has no rewards (no prompts)");
  if (r.answer_tokens.size() != n || r.answer_chars.size() != n)
    fail(where, ": alpha ", r.alpha, ": ", n, " rewards but ", r.answer_tokens.size(),
         " answer token counts and ", r.answer_chars.size(), " character counts");
  if (!r.ids.empty() && r.ids.size() != n)
    fail(where, ": alpha ", r.alpha, ": ", n, " rewards but ", r.ids.size(), " prompt ids");
  for (size_t i = 0; i < n; ++i) {
    if (std::isinf(r.rewards[i]))
      fail(where, ": alpha ", r.alpha, ": prompt ", i, " has an infinite reward");
    if (!(r.answer_tokens[i] >= 0) || !(r.answer_chars[i] >= 0))
      fail(where, ": alpha ", r.alpha, ": prompt ", i, " has a negative or NaN answer length");
  }
  if (r.failed > n || r.truncated > n)
    fail(where, ": alpha ", r.alpha, ": failed (", r.failed, ") or truncated (", r.truncated,
         ") exceeds the ", n, " prompts");
  if (!baseline) return;
  if (baseline->rewards.size() != n)
    fail(where, ": alpha ", r.alpha, " has ", n, " prompts but alpha ", baseline->alpha, " has ",
         baseline->rewards.size(), ": rewards must be paired (the same prompts at every alpha)");
  if (!r.ids.empty() && !baseline->ids.empty()) {
    for (size_t i = 0; i < n; ++i)
      if (r.ids[i] != baseline->ids[i])
        fail(where, ": alpha ", r.alpha, ": prompt ", i, " is \"", r.ids[i], "\" but at alpha ",
             baseline->alpha, " it is \"", baseline->ids[i],
             "\": rewards must be paired (the same prompts in the same order at every alpha)");
  }
}

ordered_json summary_to_json(const AlphaSummary& s) {
  ordered_json j;
  j["prompts"] = s.prompts;
  j["scored"] = s.scored;
  j["mean_reward"] = nan_as_null(s.mean_reward);
  j["reward_se"] = nan_as_null(s.reward_se);
  j["win_rate_vs_alpha0"] = nan_as_null(s.win_rate);
  j["paired"] = s.paired;
  j["mean_answer_tokens"] = nan_as_null(s.mean_answer_tokens);
  j["mean_answer_chars"] = nan_as_null(s.mean_answer_chars);
  j["failed"] = s.failed;
  j["truncated"] = s.truncated;
  return j;
}

ordered_json result_to_json(const AlphaResult& r, const AlphaSummary& s) {
  ordered_json j;
  j["alpha"] = r.alpha;
  j["ids"] = r.ids;
  ordered_json rewards = ordered_json::array();
  for (double v : r.rewards) rewards.push_back(nan_as_null(v));
  j["rewards"] = rewards;
  j["answer_tokens"] = r.answer_tokens;
  j["answer_chars"] = r.answer_chars;
  j["failed"] = r.failed;
  j["truncated"] = r.truncated;
  j["summary"] = summary_to_json(s);
  return j;
}

AlphaResult result_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": expected a JSON object, got ", json_type_name(j));
  auto field = [&](const char* key) -> const json& {
    const auto it = j.find(key);
    if (it == j.end()) fail(where, ": missing \"", key, "\"");
    return *it;
  };
  auto numbers = [&](const char* key, bool null_is_nan) {
    const json& list = field(key);
    if (!list.is_array()) fail(where, ": \"", key, "\" must be a list, got ", json_type_name(list));
    std::vector<double> out;
    out.reserve(list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].is_number())
        out.push_back(list[i].get<double>());
      else if (null_is_nan && list[i].is_null())
        out.push_back(AlphaSummary::kNaN);
      else
        fail(where, ": \"", key, "\"[", i, "] must be a number, got ", json_type_name(list[i]));
    }
    return out;
  };
  auto count = [&](const char* key) -> size_t {
    const json& v = field(key);
    if (!v.is_number_unsigned())
      fail(where, ": \"", key, "\" must be a non-negative integer, got ", v.dump());
    return v.get<size_t>();
  };
  AlphaResult r;
  const json& alpha = field("alpha");
  if (!alpha.is_number()) fail(where, ": \"alpha\" must be a number, got ", json_type_name(alpha));
  r.alpha = alpha.get<double>();
  if (const auto it = j.find("ids"); it != j.end()) {
    if (!it->is_array()) fail(where, ": \"ids\" must be a list, got ", json_type_name(*it));
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string())
        fail(where, ": \"ids\"[", i, "] must be a string, got ", json_type_name((*it)[i]));
      r.ids.push_back((*it)[i].get<std::string>());
    }
  }
  r.rewards = numbers("rewards", true);
  r.answer_tokens = numbers("answer_tokens", false);
  r.answer_chars = numbers("answer_chars", false);
  r.failed = count("failed");
  r.truncated = count("truncated");
  check_result(r, nullptr, where);
  return r;
}

std::vector<AlphaSummary> sorted_by_alpha(std::span<const AlphaSummary> summaries) {
  std::vector<AlphaSummary> rows(summaries.begin(), summaries.end());
  std::stable_sort(rows.begin(), rows.end(),
                   [](const AlphaSummary& a, const AlphaSummary& b) { return a.alpha < b.alpha; });
  return rows;
}

}  // namespace expo
