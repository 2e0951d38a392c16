#pragma once
// Human sizes: "5GB" (10^9, as transformers' max_shard_size), "500MiB", "1024".
#include <cstdint>
#include <string>
#include <string_view>

namespace expo {

// Throws expo::UsageError naming `what` (e.g. "--max-shard-size") when the text is not a size.
uint64_t parse_size(std::string_view text, std::string_view what);
std::string format_bytes(uint64_t bytes);
// Shortest text that reads back as the same double ("0.3", "25", "1e-05").
std::string format_double(double value);
// printf of one double ("%.4f", "%g").
std::string format_printf(const char* format, double value);
// Parses a whole string as a finite double; throws UsageError naming `what` otherwise.
double parse_double(std::string_view text, std::string_view what);

}  // namespace expo
