#include "core/atomic_write.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/fs.h"

namespace expo {

void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  namespace fs = std::filesystem;
  const fs::path target = fs::absolute(path);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) fail(target.parent_path().string(), ": cannot create the folder: ", ec.message());
  std::string temp =
      (target.parent_path() / str(".", target.filename().string(), ".expo-tmp-XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());
  if (fd < 0)
    fail(path.string(), ": cannot create a temporary file beside it: ", std::strerror(errno));
  auto abandon = [&](const std::string& what) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    ::unlink(temp.c_str());
    fail(path.string(), ": ", what, ": ", reason);
  };
  try {
    write_all(fd, text, path);
  } catch (...) {
    ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  if (::fchmod(fd, 0644) != 0) abandon("cannot set permissions");
  if (::fsync(fd) != 0) abandon("cannot flush to disk");
  if (::close(fd) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    fail(path.string(), ": error on close: ", reason);
  }
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    fail(path.string(), ": cannot rename the finished file into place: ", reason);
  }
}

}  // namespace expo
