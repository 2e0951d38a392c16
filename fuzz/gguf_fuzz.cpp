// libFuzzer target for the GGUF reader. Any input must either parse or throw expo::Error; a
// crash, a sanitizer report or any other exception is a bug. What parses is also checked the
// way a caller would use it: every tensor lies inside the input, and the metadata getters and
// display work on every value.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto contents = expo::parse_gguf(data, size, size, "fuzz-input");
    for (const auto& t : contents.tensors) {
      if (contents.data_start + t.offset + t.num_bytes > size) __builtin_trap();
      if (t.shape().size() != t.dims.size() || t.num_elements() == 0) __builtin_trap();
    }
    for (const auto& e : contents.metadata.entries()) {
      (void)e.value.to_display();
      (void)contents.metadata.find_count(e.key);
    }
  } catch (const expo::Error&) {
  }
  return 0;
}
