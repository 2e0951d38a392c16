#include "jinja/python_unicode.h"

#include <unicode/uchar.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <vector>

#include "jinja/jinja_value.h"

namespace expo::jinja {

namespace {

std::u16string to_utf16(std::u32string_view s) {
  std::u16string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) c = 0xFFFD;
    if (c < 0x10000) {
      out.push_back(static_cast<char16_t>(c));
    } else {
      out.push_back(static_cast<char16_t>(U16_LEAD(c)));
      out.push_back(static_cast<char16_t>(U16_TRAIL(c)));
    }
  }
  return out;
}

void append_utf16(std::string& out, const std::u16string& s) {
  for (size_t i = 0; i < s.size();) {
    UChar32 c;
    U16_NEXT(s.data(), i, s.size(), c);
    utf8_append(out, static_cast<char32_t>(c));
  }
}

enum class Mapping { kUpper, kLower, kTitle, kFold };

// ICU's full mapping of a UTF-16 string with the root locale (no Turkish or Lithuanian rules,
// as in Python). Grows the buffer once when the result is longer than the input allows.
std::u16string map16(const std::u16string& src, Mapping mapping) {
  std::u16string dst(src.size() * 3 + 4, u'\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    UErrorCode status = U_ZERO_ERROR;
    const auto* in = reinterpret_cast<const UChar*>(src.data());
    auto* out = reinterpret_cast<UChar*>(dst.data());
    const auto in_n = static_cast<int32_t>(src.size());
    const auto cap = static_cast<int32_t>(dst.size());
    int32_t n = 0;
    switch (mapping) {
      case Mapping::kUpper:
        n = u_strToUpper(out, cap, in, in_n, "", &status);
        break;
      case Mapping::kLower:
        n = u_strToLower(out, cap, in, in_n, "", &status);
        break;
      case Mapping::kTitle:  // used on one code point at a time: its full titlecase mapping
        n = u_strToTitle(out, cap, in, in_n, nullptr, "", &status);
        break;
      case Mapping::kFold:
        n = u_strFoldCase(out, cap, in, in_n, U_FOLD_CASE_DEFAULT, &status);
        break;
    }
    if (status == U_BUFFER_OVERFLOW_ERROR) {
      dst.assign(static_cast<size_t>(n), u'\0');
      continue;
    }
    if (U_FAILURE(status))
      throw TemplateError(std::string("Unicode case mapping failed: ") + u_errorName(status));
    dst.resize(static_cast<size_t>(n));
    return dst;
  }
  throw TemplateError("Unicode case mapping failed");
}

std::string map_string(std::string_view s, Mapping mapping) {
  std::string out;
  out.reserve(s.size());
  append_utf16(out, map16(to_utf16(utf8_decode(s)), mapping));
  return out;
}

void append_mapped_char(std::string& out, char32_t c, Mapping mapping) {
  const std::u16string one = to_utf16(std::u32string_view(&c, 1));
  const std::u16string mapped = map16(one, mapping);
  // u_strToTitle titlecases a word's first cased *letter*: a lone cased mark (U+0345) is left
  // as is, where Python titlecases every character it is given. Its simple mapping then.
  if (mapping == Mapping::kTitle && mapped == one)
    return utf8_append(out, static_cast<char32_t>(u_totitle(static_cast<UChar32>(c))));
  append_utf16(out, mapped);
}

bool case_ignorable(char32_t c) { return u_hasBinaryProperty(c, UCHAR_CASE_IGNORABLE); }

// CPython's lower_ucs4 for the character at `i`: capital sigma becomes final sigma when a cased
// character precedes it and none follows (case-ignorable characters skipped both ways).
void append_lower_at(std::string& out, const std::u32string& s, size_t i) {
  if (s[i] != 0x3A3) return append_mapped_char(out, s[i], Mapping::kLower);
  size_t j = i;
  while (j > 0 && case_ignorable(s[j - 1])) --j;
  bool final_sigma = j > 0 && py_char_is_cased(s[j - 1]);
  if (final_sigma) {
    size_t k = i + 1;
    while (k < s.size() && case_ignorable(s[k])) ++k;
    final_sigma = k == s.size() || !py_char_is_cased(s[k]);
  }
  utf8_append(out, final_sigma ? 0x3C2 : 0x3C3);
}

}  // namespace

std::string py_upper(std::string_view s) { return map_string(s, Mapping::kUpper); }
std::string py_lower(std::string_view s) { return map_string(s, Mapping::kLower); }
std::string py_casefold(std::string_view s) { return map_string(s, Mapping::kFold); }

std::string py_title(std::string_view text) {
  const std::u32string s = utf8_decode(text);
  std::string out;
  out.reserve(text.size());
  bool previous_cased = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (previous_cased)
      append_lower_at(out, s, i);
    else
      append_mapped_char(out, s[i], Mapping::kTitle);
    previous_cased = py_char_is_cased(s[i]);
  }
  return out;
}

std::string py_capitalize(std::string_view text) {
  const std::u32string s = utf8_decode(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 0)
      append_mapped_char(out, s[i], Mapping::kTitle);
    else
      append_lower_at(out, s, i);
  }
  return out;
}

std::string py_swapcase(std::string_view text) {
  const std::u32string s = utf8_decode(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (py_char_is_upper(s[i]))
      append_lower_at(out, s, i);
    else if (py_char_is_lower(s[i]))
      append_mapped_char(out, s[i], Mapping::kUpper);
    else
      utf8_append(out, s[i]);
  }
  return out;
}

bool py_char_is_cased(char32_t c) { return u_hasBinaryProperty(c, UCHAR_CASED); }
bool py_char_is_upper(char32_t c) { return u_hasBinaryProperty(c, UCHAR_UPPERCASE); }
bool py_char_is_lower(char32_t c) { return u_hasBinaryProperty(c, UCHAR_LOWERCASE); }
bool py_char_is_title(char32_t c) { return u_charType(c) == U_TITLECASE_LETTER; }
bool py_char_is_alpha(char32_t c) { return u_isalpha(c); }
bool py_char_is_decimal(char32_t c) { return u_charType(c) == U_DECIMAL_DIGIT_NUMBER; }
bool py_char_is_digit(char32_t c) {
  const int type = u_getIntPropertyValue(c, UCHAR_NUMERIC_TYPE);
  return type == U_NT_DECIMAL || type == U_NT_DIGIT;
}
bool py_char_is_numeric(char32_t c) {
  return u_getIntPropertyValue(c, UCHAR_NUMERIC_TYPE) != U_NT_NONE;
}
bool py_char_is_alnum(char32_t c) {
  return py_char_is_alpha(c) || py_char_is_decimal(c) || py_char_is_digit(c) ||
         py_char_is_numeric(c);
}

// CPython's unicode_islower_impl, unicode_isupper_impl and unicode_istitle_impl.
bool py_islower(std::string_view text) {
  bool cased = false;
  for (char32_t c : utf8_decode(text)) {
    if (py_char_is_upper(c) || py_char_is_title(c)) return false;
    if (!cased && py_char_is_lower(c)) cased = true;
  }
  return cased;
}

bool py_isupper(std::string_view text) {
  bool cased = false;
  for (char32_t c : utf8_decode(text)) {
    if (py_char_is_lower(c) || py_char_is_title(c)) return false;
    if (!cased && py_char_is_upper(c)) cased = true;
  }
  return cased;
}

bool py_istitle(std::string_view text) {
  bool cased = false, previous_cased = false;
  for (char32_t c : utf8_decode(text)) {
    if (py_char_is_upper(c) || py_char_is_title(c)) {
      if (previous_cased) return false;
      previous_cased = cased = true;
    } else if (py_char_is_lower(c)) {
      if (!previous_cased) return false;
      previous_cased = cased = true;
    } else {
      previous_cased = false;
    }
  }
  return cased;
}

}  // namespace expo::jinja
