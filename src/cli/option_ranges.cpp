#include "cli/option_ranges.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace expo::cli {

namespace {

std::string range_text(uint64_t lo, uint64_t hi) {
  return hi == UINT64_MAX ? str("a whole number >= ", lo)
                          : str("a whole number from ", lo, " to ", hi);
}

}  // namespace

CLI::Validator count_in(uint64_t lo, uint64_t hi) {
  const std::string expected = range_text(lo, hi);
  return CLI::Validator(
      [lo, hi, expected](std::string& value) -> std::string {
        const bool digits = !value.empty() && value.size() <= 20 &&
                            value.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        const unsigned long long n = digits ? std::strtoull(value.c_str(), nullptr, 10) : 0;
        if (!digits || errno == ERANGE || n < lo || n > hi)
          return str("expected ", expected, ", got '", value, "'");
        return "";
      },
      lo == 0 && hi == UINT64_MAX ? "UINT" : str("UINT:", lo, "..", hi));
}

CLI::Validator real_in(double lo, double hi, bool lo_open) {
  const std::string expected = str("a number in ", lo_open ? "(" : "[", lo, ", ", hi, "]");
  return CLI::Validator(
      [lo, hi, lo_open, expected](std::string& value) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double x = value.empty() ? NAN : std::strtod(value.c_str(), &end);
        const bool parsed = !value.empty() && end && *end == '\0' && errno != ERANGE;
        if (!parsed || !std::isfinite(x) || x > hi || (lo_open ? x <= lo : x < lo))
          return str("expected ", expected, ", got '", value, "'");
        return "";
      },
      str("FLOAT:", lo_open ? "(" : "[", lo, ",", hi, "]"));
}

CLI::Option* add_threads_option(CLI::App& cmd, size_t& threads) {
  return cmd.add_option("--threads", threads, "worker threads (default and 0: all cores)")
      ->check(count_in(0, kMaxThreads));
}

GgmlType gguf_type_option(const std::string& text) {
  const auto t = parse_ggml_type(text);
  if (!t ||
      (*t != GgmlType::F32 && *t != GgmlType::F16 && *t != GgmlType::BF16 && *t != GgmlType::Q8_0))
    usage_fail("--gguf-type: '", text, "' is not one of f32, f16, bf16, q8_0");
  return *t;
}

}  // namespace expo::cli
