#include "core/input_limits.h"

#include <cstdlib>

#include "core/error.h"
#include "core/units.h"

namespace expo {

uint64_t size_from_environment(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  if (!value || !*value) return fallback;
  return parse_size(value, str("environment variable ", name));
}

uint64_t count_from_environment(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  if (!value || !*value) return fallback;
  const std::string_view text(value);
  uint64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || n > (UINT64_MAX - 9) / 10)
      fail("environment variable ", name, ": '", text, "' is not a count; write e.g. 50000000");
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n == 0) fail("environment variable ", name, ": must be at least 1");
  return n;
}

InputLimits InputLimits::from_environment() {
  InputLimits limits;
  limits.max_file_bytes = size_from_environment(kInputMaxFileEnv, limits.max_file_bytes);
  limits.max_line_bytes = size_from_environment(kInputMaxLineEnv, limits.max_line_bytes);
  return limits;
}

std::string limit_hint(uint64_t limit_bytes, std::string_view env_name) {
  std::string size;
  if (limit_bytes % (uint64_t{1} << 30) == 0)
    size = std::to_string(limit_bytes >> 30) + " GiB";
  else if (limit_bytes % (uint64_t{1} << 20) == 0)
    size = std::to_string(limit_bytes >> 20) + " MiB";
  else
    size = std::to_string(limit_bytes) + " bytes";
  return str("(limit ", size, "; raise it with ", env_name, "=SIZE, e.g. ", env_name, "=4GiB)");
}

}  // namespace expo
