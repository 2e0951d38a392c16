#include "text/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "text/unicode_text.h"

namespace expo::text {

namespace {

// Oniguruma's Unicode \w: Letter-ish (Alphabetic), marks, decimal digits, connector
// punctuation, plus the Latin-1 superscripts and fractions its ctype table counts as word.
constexpr std::string_view kWordInClass =
    "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

// Per-thread match data and JIT stack, reused across matches.
struct MatchScratch {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchScratch() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);
    if (!data || !context || !stack) fail("out of memory for PCRE2 match data");
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

std::string translate_oniguruma(std::string_view p, const std::string& where) {
  std::string out;
  out.reserve(p.size() + 32);
  bool in_class = false;
  size_t class_start = 0;  // index in p just after '[' or '[^'
  const auto refuse = [&](const std::string& what) {
    fail(where, ": the regex /", std::string(p), "/ uses ", what,
         ", which expo's PCRE2 translation of Oniguruma patterns does not support");
  };
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size()) refuse("a trailing backslash");
      const char e = p[++i];
      switch (e) {
        case 's':
          out += "\\p{White_Space}";
          break;
        case 'S':
          out += "\\P{White_Space}";
          break;
        case 'd':
          out += "\\p{Nd}";
          break;
        case 'D':
          out += "\\P{Nd}";
          break;
        case 'w':
          out += in_class ? std::string(kWordInClass) : "[" + std::string(kWordInClass) + "]";
          break;
        case 'W':
          if (in_class) refuse("\\W inside a character class");
          out += "[^" + std::string(kWordInClass) + "]";
          break;
        case 'h':
          out += in_class ? "0-9A-Fa-f" : "[0-9A-Fa-f]";
          break;
        case 'H':
          if (in_class) refuse("\\H inside a character class");
          out += "[^0-9A-Fa-f]";
          break;
        case 'b':
        case 'B': {
          if (in_class) {
            out += "\\x08";  // backspace inside a class, as in Oniguruma
            break;
          }
          const std::string w = "[" + std::string(kWordInClass) + "]";
          out += e == 'b' ? "(?:(?<!" + w + ")(?=" + w + ")|(?<=" + w + ")(?!" + w + "))"
                          : "(?:(?<!" + w + ")(?!" + w + ")|(?<=" + w + ")(?=" + w + "))";
          break;
        }
        case 'u': {  // \uHHHH
          if (i + 4 >= p.size()) refuse("a truncated \\u escape");
          out += "\\x{" + std::string(p.substr(i + 1, 4)) + "}";
          i += 4;
          break;
        }
        case 'G':
          refuse("\\G");
          break;
        default:
          out += '\\';
          out += e;
      }
      continue;
    }
    if (in_class) {
      if (c == '[') {
        if (i + 1 < p.size() && p[i + 1] == ':') {  // POSIX bracket [:alpha:]
          const size_t close = p.find(":]", i + 2);
          if (close == std::string_view::npos) refuse("an unterminated POSIX bracket");
          out += p.substr(i, close + 2 - i);
          i = close + 1;
          continue;
        }
        refuse("a nested character class");
      }
      if (c == '&' && i + 1 < p.size() && p[i + 1] == '&') refuse("a class intersection (&&)");
      if (c == ']' && i > class_start) in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') {
        out += '^';
        ++i;
      }
      class_start = i + 1;
      continue;
    }
    out += c;
  }
  if (in_class) refuse("an unterminated character class");
  return out;
}

Regex::Regex(std::string source, std::string translated, const std::string& where)
    : source_(std::move(source)) {
  auto code = std::make_shared<Code>();
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_compile_context* context = pcre2_compile_context_create(nullptr);
  pcre2_set_newline(context, PCRE2_NEWLINE_LF);
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | PCRE2_NO_UTF_CHECK, &error,
                             &offset, context);
  pcre2_compile_context_free(context);
  if (!code->code)
    fail(where, ": cannot compile the regex /", source_, "/ (as PCRE2 /", translated,
         "/): ", pcre2_message(error), " at offset ", offset);
  code->jit = pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE) == 0;
  code_ = std::move(code);
}

Regex Regex::oniguruma(std::string_view pattern, const std::string& where) {
  return Regex(std::string(pattern), translate_oniguruma(pattern, where), where);
}

Regex Regex::literal(std::string_view text, const std::string& where) {
  std::string quoted;
  for (char c : text) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) quoted += '\\';
    quoted += c;
  }
  return Regex(std::string(text), quoted, where);
}

void Regex::for_each_match(std::string_view s,
                           const std::function<void(size_t, size_t)>& on_match) const {
  MatchScratch& m = scratch();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t start = 0;
  while (start <= s.size()) {
    const int rc =
        code_->jit ? pcre2_jit_match(code_->code, subject, s.size(), start, 0, m.data, m.context)
                   : pcre2_match(code_->code, subject, s.size(), start, PCRE2_NO_UTF_CHECK, m.data,
                                 m.context);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) fail("regex /", source_, "/ failed on the input: ", pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(m.data);
    const size_t b = ov[0], e = ov[1];
    on_match(b, e);
    if (e == b) {
      // After an empty match the search goes on one character later (as Oniguruma's find_iter).
      if (b >= s.size()) return;
      start = b + utf8_length(static_cast<unsigned char>(s[b]));
      continue;
    }
    start = e;
  }
}

}  // namespace expo::text
