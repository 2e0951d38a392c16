#pragma once
// Unicode helpers for the tokenizers: the character classes Hugging Face tokenizers use
// (White_Space, the regex crate's \w) and the normalization forms (NFC, NFD, NFKC, NFKD)
// through ICU's unorm2. UTF-8 validation, decoding and encoding are core/utf8.h.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/utf8.h"

namespace expo::text {

// Unicode White_Space (what Rust's char::is_whitespace and the regex crate's \s match).
bool is_white_space(char32_t c);
// The regex crate's \w: Alphabetic, M, Nd, Pc or Join_Control.
bool is_word_char(char32_t c);

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };
std::string normalize_unicode(std::string_view s, NormalForm form);

}  // namespace expo::text
