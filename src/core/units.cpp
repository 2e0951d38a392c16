#include "core/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace expo {

uint64_t parse_size(std::string_view text, std::string_view what) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  const std::string number(text.substr(0, i));
  std::string unit;
  for (char c : text.substr(i))
    if (c != ' ') unit += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double multiplier = 0;
  if (unit.empty() || unit == "B")
    multiplier = 1;
  else if (unit == "KB")
    multiplier = 1e3;
  else if (unit == "MB")
    multiplier = 1e6;
  else if (unit == "GB")
    multiplier = 1e9;
  else if (unit == "TB")
    multiplier = 1e12;
  else if (unit == "KIB")
    multiplier = 1024.0;
  else if (unit == "MIB")
    multiplier = 1024.0 * 1024;
  else if (unit == "GIB")
    multiplier = 1024.0 * 1024 * 1024;
  else if (unit == "TIB")
    multiplier = 1024.0 * 1024 * 1024 * 1024;
  char* end = nullptr;
  const double value = number.empty() ? -1 : std::strtod(number.c_str(), &end);
  if (multiplier == 0 || number.empty() || end != number.c_str() + number.size() || value <= 0 ||
      value * multiplier > 9e18)
    usage_fail(what, ": '", text, "' is not a size; write e.g. 5GB, 500MB, 2GiB or a byte count");
  return static_cast<uint64_t>(std::llround(value * multiplier));
}

std::string format_bytes(uint64_t bytes) {
  char buf[64];
  if (bytes >= 1000000000ull)
    std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  else if (bytes >= 1000000ull)
    std::snprintf(buf, sizeof buf, "%.2f MB", bytes / 1e6);
  else if (bytes >= 1000ull)
    std::snprintf(buf, sizeof buf, "%.2f kB", bytes / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

std::string format_printf(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::string format_double(double value) {
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

double parse_double(std::string_view text, std::string_view what) {
  const std::string s(text);
  char* end = nullptr;
  const double value = s.empty() ? NAN : std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(value))
    usage_fail(what, ": '", text, "' is not a finite number");
  return value;
}

}  // namespace expo
