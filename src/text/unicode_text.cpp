#include "text/unicode_text.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <cstdio>
#include <vector>

#include "core/error.h"

namespace expo::text {

bool is_white_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE);
}

bool is_word_char(char32_t c) {
  if (c < 0x80)
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  const auto u = static_cast<UChar32>(c);
  const int32_t mask = U_GET_GC_MASK(u);
  return u_hasBinaryProperty(u, UCHAR_ALPHABETIC) ||
         (mask & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) ||
         u_hasBinaryProperty(u, UCHAR_JOIN_CONTROL);
}

std::string normalize_unicode(std::string_view s, NormalForm form) {
  // Pure ASCII is invariant under every normalization form.
  bool ascii = true;
  for (char ch : s) ascii &= static_cast<unsigned char>(ch) < 0x80;
  if (ascii) return std::string(s);
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* normalizer = nullptr;
  switch (form) {
    case NormalForm::kNfc:
      normalizer = unorm2_getNFCInstance(&status);
      break;
    case NormalForm::kNfd:
      normalizer = unorm2_getNFDInstance(&status);
      break;
    case NormalForm::kNfkc:
      normalizer = unorm2_getNFKCInstance(&status);
      break;
    case NormalForm::kNfkd:
      normalizer = unorm2_getNFKDInstance(&status);
      break;
  }
  if (U_FAILURE(status)) fail("ICU could not load its normalization data: ", u_errorName(status));
  if (s.size() > static_cast<size_t>(INT32_MAX / 4)) fail("text too long to normalize");
  std::vector<UChar> utf16(s.size() + 1);
  int32_t utf16_len = 0;
  u_strFromUTF8(utf16.data(), static_cast<int32_t>(utf16.size()), &utf16_len, s.data(),
                static_cast<int32_t>(s.size()), &status);
  if (U_FAILURE(status)) fail("ICU could not convert text to UTF-16: ", u_errorName(status));
  // NFKC can expand a code point up to 18 times; grow on U_BUFFER_OVERFLOW_ERROR.
  std::vector<UChar> normalized(static_cast<size_t>(utf16_len) * 3 + 16);
  int32_t normalized_len = unorm2_normalize(normalizer, utf16.data(), utf16_len, normalized.data(),
                                            static_cast<int32_t>(normalized.size()), &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    status = U_ZERO_ERROR;
    normalized.resize(static_cast<size_t>(normalized_len));
    normalized_len = unorm2_normalize(normalizer, utf16.data(), utf16_len, normalized.data(),
                                      static_cast<int32_t>(normalized.size()), &status);
  }
  if (U_FAILURE(status)) fail("ICU could not normalize text: ", u_errorName(status));
  std::string out(static_cast<size_t>(normalized_len) * 3, '\0');
  int32_t out_len = 0;
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &out_len, normalized.data(),
              normalized_len, &status);
  if (U_FAILURE(status)) fail("ICU could not convert text to UTF-8: ", u_errorName(status));
  out.resize(static_cast<size_t>(out_len));
  return out;
}

}  // namespace expo::text
