#pragma once
// The trained demo's report: per alpha the reward model's mean score and the gold score
// (demo_gold.h) side by side, the comparison model (DPO on all the preference data) as a
// reference row, whether the chosen alpha's gold gain is significant, and answers side by
// side. Written as a text table (stdout), demo.md and demo.json.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "demo/demo_gold.h"
#include "eval/alpha_stats.h"

namespace expo {

struct DemoReport {
  std::string pair;                   // the extrapolated DPO model ("dpo-10")
  std::vector<AlphaSummary> rewards;  // per alpha, ascending
  std::vector<GoldRow> gold;          // the same alphas, the same order
  double best_alpha = 0;              // chosen by reward
  std::string reference;              // the comparison model ("dpo-full"); empty: none
  std::optional<AlphaSummary> reference_reward;
  std::optional<GoldRow> reference_gold;

  const GoldRow& gold_at(double alpha) const;  // throws when the alpha is not there
};

// Gold of the best alpha minus gold at alpha 0 (and minus the reference), paired by prompt.
PairedDifference gold_gain(const DemoReport& report);
std::optional<PairedDifference> gold_vs_reference(const DemoReport& report);

std::string format_demo_table(const DemoReport& report);
nlohmann::ordered_json demo_json(const DemoReport& report);
// The first `count` prompts: the answer at alpha 0, at the best alpha and of the reference.
std::string format_side_by_side(const DemoReport& report, const std::vector<std::string>& prompts,
                                size_t count);

}  // namespace expo
