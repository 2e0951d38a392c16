#pragma once
// expo's one error type. Library code throws expo::Error with a message that says what went
// wrong, where (file, tensor, line) and, where there is one, what to do; the CLI catches it
// at the top, prints it and exits non-zero. Nothing calls abort() on bad input. A UsageError
// is a bad command line (an option's value out of range, options that do not go together): the
// CLI exits 2 for it, as for the parser's own errors, and 1 for every other Error.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace expo {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

// Concatenate anything streamable into one string: str("tensor ", name, " has ", n, " rows").
template <typename... Parts>
std::string str(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(str(std::forward<Parts>(parts)...));
}

template <typename... Parts>
[[noreturn]] void usage_fail(Parts&&... parts) {
  throw UsageError(str(std::forward<Parts>(parts)...));
}

}  // namespace expo
