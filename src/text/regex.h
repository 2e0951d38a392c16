#pragma once
// Regular expressions for pre-tokenizers and Replace normalizers/decoders, through PCRE2 with
// its JIT. Hugging Face tokenizers compiles these patterns with Oniguruma; the Oniguruma
// escapes whose meaning differs in PCRE2 are rewritten (\s is Unicode White_Space, which
// includes U+0085; \w is Alphabetic, marks, Nd, Pc and the Latin-1 digits/fractions; \h is a
// hex digit; ^ and $ are line anchors), and constructs PCRE2 cannot express (class
// intersections, nested classes) are refused with an error naming `where`.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace expo::text {

class Regex {
 public:
  // `where` names the file and JSON path for errors ("tokenizer.json: pre_tokenizer.pattern").
  static Regex oniguruma(std::string_view pattern, const std::string& where);
  static Regex literal(std::string_view text, const std::string& where);

  // Calls on_match(start, end) for each non-overlapping match, left to right (byte offsets;
  // `s` must be valid UTF-8). After an empty match the search goes on one character later.
  void for_each_match(std::string_view s,
                      const std::function<void(size_t, size_t)>& on_match) const;
  const std::string& pattern() const { return source_; }

 private:
  struct Code;
  Regex(std::string source, std::string translated, const std::string& where);
  std::string source_;
  std::shared_ptr<const Code> code_;
};

// The PCRE2 pattern for an Oniguruma one (exposed for tests).
std::string translate_oniguruma(std::string_view pattern, const std::string& where);

}  // namespace expo::text
