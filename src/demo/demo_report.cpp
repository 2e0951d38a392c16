#include "demo/demo_report.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/units.h"
#include "eval/report.h"
#include "merge/alpha_rules.h"

namespace expo {

namespace {

// snprintf into a string (the arguments are numbers and C strings).
template <typename... Args>
std::string fmt(const char* format, Args... args) {
  const int n = std::snprintf(nullptr, 0, format, args...);
  std::string out(static_cast<size_t>(n > 0 ? n : 0), '\0');
  std::snprintf(out.data(), out.size() + 1, format, args...);
  return out;
}

std::string row_text(const std::string& label, const AlphaSummary& r, const GoldSummary& g,
                     const std::string& mark) {
  return fmt("%-16s %8s ± %-6s  %6s ± %-6s  %5.0f%%  %5.0f%%  %5.0f%%  %6.1f  %s\n", label.c_str(),
             number_or_na("%.3f", r.mean_reward).c_str(), number_or_na("%.3f", r.reward_se).c_str(),
             number_or_na("%.3f", g.mean).c_str(), number_or_na("%.3f", g.se).c_str(),
             100 * g.correct, 100 * g.polite, 100 * g.concise, g.words, mark.c_str());
}

nlohmann::ordered_json row_json(const AlphaSummary& r, const GoldSummary& g) {
  return {{"alpha", r.alpha},
          {"reward", nan_as_null(r.mean_reward)},
          {"reward_se", nan_as_null(r.reward_se)},
          {"gold", nan_as_null(g.mean)},
          {"gold_se", nan_as_null(g.se)},
          {"correct", g.correct},
          {"polite", g.polite},
          {"concise", g.concise},
          {"words", g.words},
          {"answer_tokens", nan_as_null(r.mean_answer_tokens)}};
}

nlohmann::ordered_json difference_json(const PairedDifference& d) {
  const double z = d.se > 0 ? d.mean / d.se : AlphaSummary::kNaN;
  return {{"mean", nan_as_null(d.mean)},
          {"se", nan_as_null(d.se)},
          {"z", nan_as_null(z)},
          {"prompts", d.n}};
}

std::string one_line(const std::string& text) {
  std::string out;
  for (char c : text) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  return out;
}

}  // namespace

const GoldRow& DemoReport::gold_at(double alpha) const {
  for (const GoldRow& g : gold)
    if (g.alpha == alpha) return g;
  fail("demo report: no gold scores at alpha ", format_alpha(alpha));
}

PairedDifference gold_gain(const DemoReport& report) {
  return paired_difference(report.gold_at(report.best_alpha).as_result(),
                           report.gold_at(0).as_result());
}

std::optional<PairedDifference> gold_vs_reference(const DemoReport& report) {
  if (!report.reference_gold) return std::nullopt;
  return paired_difference(report.gold_at(report.best_alpha).as_result(),
                           report.reference_gold->as_result());
}

std::string format_demo_table(const DemoReport& report) {
  std::string out = fmt("%-16s %17s  %15s  %6s  %6s  %6s  %6s\n", "model", "reward", "gold",
                        "correct", "polite", "concise", "words");
  for (size_t i = 0; i < report.rewards.size(); ++i) {
    const AlphaSummary& r = report.rewards[i];
    const std::string label = report.pair + " a=" + format_alpha(r.alpha);
    out += row_text(label, r, summarize_gold(report.gold[i]),
                    r.alpha == report.best_alpha ? "<- best by reward" : "");
  }
  if (report.reference_reward && report.reference_gold)
    out += row_text(report.reference, *report.reference_reward,
                    summarize_gold(*report.reference_gold), "(for comparison, not extrapolated)");
  const PairedDifference gain = gold_gain(report);
  out += fmt(
      "\ngold at the chosen alpha %s minus alpha 0: %s ± %s (paired over %zu prompts, z = %s)\n",
      format_alpha(report.best_alpha).c_str(), number_or_na("%+.3f", gain.mean).c_str(),
      number_or_na("%.3f", gain.se).c_str(), gain.n,
      number_or_na("%.1f", gain.se > 0 ? gain.mean / gain.se : AlphaSummary::kNaN).c_str());
  if (const auto vs = gold_vs_reference(report))
    out += fmt("gold at the chosen alpha %s minus %s: %s ± %s (z = %s)\n",
               format_alpha(report.best_alpha).c_str(), report.reference.c_str(),
               number_or_na("%+.3f", vs->mean).c_str(), number_or_na("%.3f", vs->se).c_str(),
               number_or_na("%.1f", vs->se > 0 ? vs->mean / vs->se : AlphaSummary::kNaN).c_str());
  return out;
}

nlohmann::ordered_json demo_json(const DemoReport& report) {
  nlohmann::ordered_json j;
  j["pair"] = report.pair;
  j["best_alpha"] = report.best_alpha;
  j["alphas"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < report.rewards.size(); ++i)
    j["alphas"].push_back(row_json(report.rewards[i], summarize_gold(report.gold[i])));
  if (report.reference_reward && report.reference_gold) {
    j["reference"] = row_json(*report.reference_reward, summarize_gold(*report.reference_gold));
    j["reference"]["model"] = report.reference;
  }
  j["gold_gain"] = difference_json(gold_gain(report));
  if (const auto vs = gold_vs_reference(report)) j["gold_vs_reference"] = difference_json(*vs);
  return j;
}

std::string format_side_by_side(const DemoReport& report, const std::vector<std::string>& prompts,
                                size_t count) {
  const GoldRow& zero = report.gold_at(0);
  const GoldRow& best = report.gold_at(report.best_alpha);
  std::string out;
  for (size_t i = 0; i < count && i < prompts.size() && i < zero.answers.size(); ++i) {
    out += "Q: " + one_line(prompts[i]) + "\n";
    auto line = [&](const std::string& who, const GoldRow& row) {
      out += fmt("  %-16s [gold %.2f] %s\n", who.c_str(), row.scores[i].value(),
                 one_line(row.answers[i]).c_str());
    };
    line(report.pair + " a=0", zero);
    if (report.best_alpha != 0) line(report.pair + " a=" + format_alpha(report.best_alpha), best);
    if (report.reference_gold) line(report.reference, *report.reference_gold);
  }
  return out;
}

}  // namespace expo
