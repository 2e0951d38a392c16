#pragma once
// D/results.jsonl: one line per finished alpha (alpha_stats.h's result_to_json), appended and
// flushed to disk the moment the alpha is done, so hours of generation survive a crash or
// Ctrl-C. Resuming reads it back: a last line cut short by a crash (no newline, not valid
// JSON) is dropped with a warning and cut off the file; any other malformed line, or an alpha
// that appears twice, is an error naming the line.
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "eval/alpha_stats.h"

namespace expo {

class ResultsLog {
 public:
  // Opens (creating the folder and the file when needed) `path`. Without `resume`, a file that
  // already holds results is an error (use --resume, or another folder); with it, its results
  // are loaded.
  ResultsLog(const std::filesystem::path& path, bool resume);
  ~ResultsLog();
  ResultsLog(const ResultsLog&) = delete;
  ResultsLog& operator=(const ResultsLog&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The results read at opening, in file order.
  const std::vector<AlphaResult>& loaded() const { return loaded_; }
  // What was repaired at opening ("dropped a truncated last line 7"), for the CLI to print.
  const std::vector<std::string>& warnings() const { return warnings_; }
  // The loaded result for `alpha` (matched to 1e-12 relative), if any.
  std::optional<AlphaResult> find(double alpha) const;

  // Writes one line and fsyncs it. Errors name the file.
  void append(const AlphaResult& result, const AlphaSummary& summary);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::vector<AlphaResult> loaded_;
  std::vector<std::string> warnings_;
};

// The match rule of ResultsLog::find and of the search's cache: alpha values equal to 1e-12
// relative (values read back from JSON are exact; this only absorbs last-bit noise).
bool same_alpha(double a, double b);

}  // namespace expo
