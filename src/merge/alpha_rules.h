#pragma once
// Alphas: the list given with --alpha, and per-tensor overrides given with --rule REGEX=ALPHA
// (the first rule whose regex matches anywhere in the tensor name wins).
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace expo {

struct AlphaValue {
  double value;
  std::string text;  // as the user wrote it, for {alpha} in output names
};

struct AlphaRule {
  std::string pattern;
  std::regex regex;
  AlphaValue alpha;
};

// "0.1,0.3,0.5" -> three alphas. Throws on an empty item, a non-number or a duplicate.
std::vector<AlphaValue> parse_alpha_list(const std::string& text);
// "embed_tokens|lm_head=0" -> rule. Splits at the last '='.
AlphaRule parse_alpha_rule(const std::string& text);
// The shortest text that reads back as the same double ("0.3", "25", "0.618"): how an alpha
// is written in folder names ("alpha-0.3"), model ids and reports.
std::string format_alpha(double alpha);

const AlphaRule* match_rule(const std::vector<AlphaRule>& rules, const std::string& name);

}  // namespace expo
