#pragma once
// UTF-8 text: validation with the offset of the first bad byte, code point decoding and
// encoding, code point counts (Python's len()) and Rust's String::from_utf8_lossy. Used by the
// tokenizers, the Jinja engine and the answer statistics.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace expo {

// Byte offset of the first byte that does not start a well-formed UTF-8 sequence (overlongs,
// surrogates and code points above U+10FFFF are ill-formed), or npos when `s` is valid.
size_t find_invalid_utf8(std::string_view s);
// Throws expo::Error "WHAT is not valid UTF-8: byte 0xNN at byte offset K ..." when invalid.
void check_utf8(std::string_view s, std::string_view what);

// Length of the UTF-8 sequence that starts with lead byte `b` (1 for continuation bytes).
inline size_t utf8_length(unsigned char b) {
  return b < 0x80 ? 1 : b < 0xE0 ? (b < 0xC0 ? 1 : 2) : b < 0xF0 ? 3 : 4;
}
// Decodes the code point at s[i] (valid UTF-8 assumed) and advances i past it.
char32_t next_code_point(std::string_view s, size_t& i);
void append_utf8(std::string& out, char32_t c);
// Number of code points in UTF-8 text (Python's len()): the bytes that are not continuation
// bytes.
size_t code_point_count(std::string_view s);

// Rust's String::from_utf8_lossy: every maximal ill-formed subsequence becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

}  // namespace expo
