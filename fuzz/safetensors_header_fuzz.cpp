// libFuzzer target for the safetensors header parser. Any input must either parse or throw
// expo::Error; a crash, a sanitizer report or any other exception is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto header = expo::parse_safetensors_header(data, size, size, "fuzz-input");
    // Touch what a caller would use: every tensor lies inside the data area.
    for (const auto& t : header.tensors)
      if (header.data_start + t.end > size) __builtin_trap();
  } catch (const expo::Error&) {
  }
  return 0;
}
