// libFuzzer target for config.json as the engine reads it (src/model/config): any JSON must
// give a checked ModelConfig or an expo::Error.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "fuzz_util.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json config =
      nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return 0;
  try {
    expo::parse_model_config(config, "fuzz/config.json");
  } catch (const expo::Error&) {
  }
  return 0;
}
