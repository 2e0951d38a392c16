#pragma once
// Range checks for numeric options, applied when the command line is parsed: a count is digits
// only ("-1" is refused, never wrapped to 2^64 - 1) within its range, and a real number is
// finite and within its range. The error names the option and the range; the exit status is 2.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "io/ggml_type.h"

namespace expo::cli {

// A whole number in [lo, hi], written in decimal digits.
CLI::Validator count_in(uint64_t lo, uint64_t hi);

// A finite real number in [lo, hi] ((lo, hi] when `lo_open`).
CLI::Validator real_in(double lo, double hi, bool lo_open = false);

// The largest --max-new-tokens and --max-context accepted (2^24 tokens; far beyond any model's
// context, which limits both in practice).
constexpr uint64_t kMaxNewTokens = uint64_t{1} << 24;
constexpr uint64_t kMaxContext = uint64_t{1} << 24;

// The longest timeout in seconds (--request-timeout, --serve-timeout): a week.
constexpr double kMaxSeconds = 7 * 24 * 3600.0;

// The most worker threads a command accepts (0: all cores).
constexpr uint64_t kMaxThreads = 1024;

// --threads, as every command adds it: 0 (all cores) to kMaxThreads.
CLI::Option* add_threads_option(CLI::App& cmd, size_t& threads);

// --gguf-type: f32, f16, bf16 or q8_0 (a usage error otherwise).
GgmlType gguf_type_option(const std::string& text);

}  // namespace expo::cli
