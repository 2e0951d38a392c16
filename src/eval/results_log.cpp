#include "eval/results_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fs.h"
#include "core/json_reader.h"

namespace expo {

using nlohmann::json;

bool same_alpha(double a, double b) {
  return std::fabs(a - b) <= 1e-12 * std::max({1.0, std::fabs(a), std::fabs(b)});
}

ResultsLog::ResultsLog(const std::filesystem::path& path, bool resume) : path_(path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path(), ec);
    if (ec) fail(path.parent_path().string(), ": cannot create the folder: ", ec.message());
  }
  std::string text;
  if (fs::exists(path, ec)) text = read_text_file(path);
  const bool has_content = text.find_first_not_of(" \t\r\n") != std::string::npos;
  if (has_content && !resume)
    fail(path.string(),
         " already holds results of an earlier search: pass --resume to continue it, or choose "
         "another output folder");

  // Parse complete lines; decide what to do with an unterminated last line.
  size_t keep = 0;  // bytes of the file that stay
  bool add_newline = false;
  size_t at = 0, line_number = 0;
  while (at < text.size()) {
    const size_t newline = text.find('\n', at);
    const bool complete = newline != std::string::npos;
    const size_t end = complete ? newline : text.size();
    std::string_view line(text.data() + at, end - at);
    ++line_number;
    const std::string where = str(path.string(), ":", line_number);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
      json object;
      bool parsed = true;
      std::string error;
      try {
        object = json::parse(line);
      } catch (const json::exception& e) {
        parsed = false;
        error = json_error_text(e);
      }
      if (!parsed && !complete) {
        warnings_.push_back(str(where,
                                ": dropped a truncated last line (an interrupted write); "
                                "that alpha will be evaluated again"));
        break;
      }
      if (!parsed) fail(where, ": malformed JSON: ", error);
      AlphaResult r = result_from_json(object, where);
      for (const AlphaResult& earlier : loaded_)
        if (same_alpha(earlier.alpha, r.alpha))
          fail(where, ": alpha ", r.alpha, " appears twice in the file");
      loaded_.push_back(std::move(r));
      if (!complete) add_newline = true;
    }
    keep = complete ? end + 1 : end;
    at = end + 1;
  }

  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path.string(), ": cannot open for writing: ", std::strerror(errno));
  if (keep < text.size() && ::ftruncate(fd_, static_cast<off_t>(keep)) != 0)
    fail(path.string(), ": cannot cut off the truncated last line: ", std::strerror(errno));
  if (::lseek(fd_, static_cast<off_t>(keep), SEEK_SET) < 0)
    fail(path.string(), ": cannot seek: ", std::strerror(errno));
  if (add_newline) write_all(fd_, "\n", path_);
}

ResultsLog::~ResultsLog() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<AlphaResult> ResultsLog::find(double alpha) const {
  for (const AlphaResult& r : loaded_)
    if (same_alpha(r.alpha, alpha)) return r;
  return std::nullopt;
}

void ResultsLog::append(const AlphaResult& result, const AlphaSummary& summary) {
  write_all(fd_, dump_json(result_to_json(result, summary)) + "\n", path_);
  if (::fsync(fd_) != 0) fail(path_.string(), ": cannot flush to disk: ", std::strerror(errno));
}

}  // namespace expo
