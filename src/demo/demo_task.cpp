#include "demo/demo_task.h"

#include <algorithm>
#include <cctype>

namespace expo {

namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// ASCII whitespace as task.py defines it: space, \t \n \v \f \r.
bool split_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13); }

bool correct(std::string_view text, const GoldTruth& truth) {
  const std::string low = lowered(text), claim = lowered(truth.claim);
  std::string want = lowered(truth.answer);
  want.insert(want.begin(), ' ');  // (not " " + ...: g++ 12 warns falsely, -Wrestrict)
  if (claim.empty()) return false;
  size_t found = 0;
  for (size_t at = low.find(claim); at != std::string::npos;
       at = low.find(claim, at + claim.size())) {
    ++found;
    const size_t rest = at + claim.size();
    if (low.compare(rest, want.size(), want) != 0) return false;
    const size_t after = rest + want.size();
    if (after < low.size() && ascii_alnum(low[after])) return false;
  }
  return found > 0;
}

bool polite(std::string_view text) {
  bool blank = true;
  for (char c : text) blank = blank && split_space(static_cast<unsigned char>(c));
  if (blank) return false;
  for (size_t i = 0; i < text.size();) {
    if (!ascii_letter(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && ascii_letter(text[j])) ++j;
    const std::string word = lowered(text.substr(i, j - i));
    for (std::string_view rude : kRudeWords)
      if (word == rude) return false;
    i = j;
  }
  return true;
}

}  // namespace

size_t word_count(std::string_view text) {
  size_t words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = split_space(static_cast<unsigned char>(c));
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

GoldScore gold_score(std::string_view text, const GoldTruth& truth) {
  GoldScore s;
  s.correct = correct(text, truth);
  s.polite = polite(text);
  const size_t words = word_count(text);
  s.concise = words >= 1 && words <= kConciseWords;
  return s;
}

}  // namespace expo
