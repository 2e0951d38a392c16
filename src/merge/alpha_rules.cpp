#include "merge/alpha_rules.h"

#include <charconv>

#include "core/error.h"
#include "core/units.h"

namespace expo {

namespace {
std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}
}  // namespace

std::vector<AlphaValue> parse_alpha_list(const std::string& text) {
  std::vector<AlphaValue> alphas;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    const std::string item =
        trim(text.substr(start, comma == std::string::npos ? comma : comma - start));
    if (item.empty()) usage_fail("--alpha: empty value in '", text, "'");
    const double value = parse_double(item, "--alpha");
    for (const auto& a : alphas)
      if (a.value == value) usage_fail("--alpha: ", item, " is given twice");
    alphas.push_back({value, item});
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return alphas;
}

AlphaRule parse_alpha_rule(const std::string& text) {
  const size_t eq = text.rfind('=');
  if (eq == std::string::npos || eq == 0)
    usage_fail("--rule: '", text, "' is not REGEX=ALPHA (e.g. 'embed_tokens|lm_head=0')");
  AlphaRule rule;
  rule.pattern = text.substr(0, eq);
  const std::string alpha_text = trim(text.substr(eq + 1));
  rule.alpha = {parse_double(alpha_text, "--rule alpha"), alpha_text};
  try {
    rule.regex = std::regex(rule.pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    usage_fail("--rule: '", rule.pattern, "' is not a valid regular expression: ", e.what());
  }
  return rule;
}

const AlphaRule* match_rule(const std::vector<AlphaRule>& rules, const std::string& name) {
  for (const auto& rule : rules)
    if (std::regex_search(name, rule.regex)) return &rule;
  return nullptr;
}

std::string format_alpha(double alpha) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, alpha);
  return std::string(buffer, result.ptr);
}

}  // namespace expo
