#pragma once
// Limits on the text files expo reads from users and from strangers' repositories (prompt sets,
// answer files, --prompt-file, messages files): a file larger than max_file_bytes or a line
// longer than max_line_bytes is refused with an error naming the file, the line and the limit,
// before it is held in memory. Without them `--prompts /dev/zero` grew until std::bad_alloc, and
// a 50 MB one-line prompt took 1.6 GB to parse.
//
// The defaults are far above real inputs: the largest public prompt sets (UltraFeedback's 64k
// prompts, Arena-Hard, AlpacaEval) and their answer files are well under 1 GiB, and one record
// holding a whole 128k-token conversation is about 0.5 MiB of text, 32 times under 16 MiB.
// Environment variables raise them (sizes as parse_size reads them: 2GiB, 64MiB, a byte count).
#include <cstdint>
#include <string>
#include <string_view>

namespace expo {

inline constexpr const char* kInputMaxFileEnv = "EXPO_INPUT_MAX_FILE";
inline constexpr const char* kInputMaxLineEnv = "EXPO_INPUT_MAX_LINE";

struct InputLimits {
  uint64_t max_file_bytes = uint64_t{1} << 30;   // 1 GiB
  uint64_t max_line_bytes = uint64_t{16} << 20;  // 16 MiB

  // The defaults, overridden by EXPO_INPUT_MAX_FILE and EXPO_INPUT_MAX_LINE when set. Throws
  // expo::Error naming the variable when one is not a size.
  static InputLimits from_environment();
};

// The value of environment variable `name` read as a size (parse_size), or `fallback` when it is
// unset or empty. Throws expo::Error naming the variable when it is not a size.
uint64_t size_from_environment(const char* name, uint64_t fallback);
// The same for a plain count ("50000000", "5e7" is refused).
uint64_t count_from_environment(const char* name, uint64_t fallback);

// "(limit 16 MiB; raise it with EXPO_INPUT_MAX_LINE=SIZE)": the tail of a limit error.
std::string limit_hint(uint64_t limit_bytes, std::string_view env_name);

}  // namespace expo
