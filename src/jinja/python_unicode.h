#pragma once
// Python's str case mappings and character classes, as CPython defines them from the Unicode
// Character Database, computed with ICU: full case mappings (SpecialCasing: 'ß'.upper() is "SS",
// 'ﬁ'.upper() "FI", 'İ'.lower() "i̇"), the final-sigma rule of lower(), titlecase for title() and
// capitalize() (Python 3.8+: 'ǆ'.title() is "ǅ"), and the classes behind isalpha (letters, L*),
// isdecimal (Nd), isdigit (Numeric_Type Decimal or Digit), isnumeric (any Numeric_Type),
// isupper/islower (the Uppercase/Lowercase properties), istitle (Lt) and str.title's "cased".
// ICU and CPython may follow different Unicode versions: characters assigned in between can
// differ; the goldens in tests/golden/text/unicode/ pin the behaviour on characters both know.
#include <string>
#include <string_view>

namespace expo::jinja {

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_casefold(std::string_view s);
std::string py_title(std::string_view s);
std::string py_capitalize(std::string_view s);
std::string py_swapcase(std::string_view s);

bool py_char_is_cased(char32_t c);    // Cased
bool py_char_is_upper(char32_t c);    // Uppercase
bool py_char_is_lower(char32_t c);    // Lowercase
bool py_char_is_title(char32_t c);    // General_Category Lt
bool py_char_is_alpha(char32_t c);    // General_Category L*
bool py_char_is_decimal(char32_t c);  // General_Category Nd
bool py_char_is_digit(char32_t c);    // Numeric_Type Decimal or Digit
bool py_char_is_numeric(char32_t c);  // any Numeric_Type
bool py_char_is_alnum(char32_t c);    // alpha, decimal, digit or numeric

// The str predicates: false for the empty string, as in Python.
bool py_islower(std::string_view s);
bool py_isupper(std::string_view s);
bool py_istitle(std::string_view s);

}  // namespace expo::jinja
