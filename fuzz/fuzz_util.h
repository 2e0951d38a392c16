#pragma once
// What the libFuzzer targets share: the input as text, and the rule that any input must either
// succeed or throw expo::Error (a crash, a sanitizer report, a hang, an OOM or any other
// exception is a bug; libFuzzer reports an escaping exception as a crash).
#include <cstddef>
#include <cstdint>
#include <string>

namespace expo::fuzz {

inline std::string as_text(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace expo::fuzz
