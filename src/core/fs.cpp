#include "core/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace expo {

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open for reading: ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail(path.string(), ": read error");
  return buffer.str();
}

void write_text_file(const fs::path& path, const std::string& text) {
  OutputFile out(path);
  out.write(text.data(), text.size());
  out.close();
}

void copy_file_contents(const fs::path& from, const fs::path& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) fail(from.string(), ": cannot open for reading: ", std::strerror(errno));
  try {
    OutputFile out(to);
    std::vector<char> buffer(1 << 20);
    for (;;) {
      const ssize_t n = ::read(in, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail(from.string(), ": read error: ", std::strerror(errno));
      if (n == 0) break;
      out.write(buffer.data(), static_cast<size_t>(n));
    }
    out.close();
  } catch (...) {
    ::close(in);
    throw;
  }
  ::close(in);
}

namespace {
constexpr size_t kDirectAlignment = 4096;        // O_DIRECT: offsets, sizes and memory
constexpr size_t kStagingBytes = size_t{8} << 20;  // a multiple of kDirectAlignment
}  // namespace

OutputFile::OutputFile(const fs::path& path, bool direct) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path.string(), ": cannot create: ", std::strerror(errno));
  if (direct && ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_DIRECT) == 0) {
    staging_ = static_cast<uint8_t*>(std::aligned_alloc(kDirectAlignment, kStagingBytes));
    if (!staging_) fail(path.string(), ": out of memory for the write buffer");
  }
}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(other.fd_),
      written_(other.written_),
      writeback_from_(other.writeback_from_),
      staging_(other.staging_),
      staged_(other.staged_) {
  other.fd_ = -1;
  other.staging_ = nullptr;
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
  std::free(staging_);
}

void OutputFile::write_fd(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == ENOSPC)
        fail(path_.string(), ": disk full after ", written_, " bytes; free space and run again");
      fail(path_.string(), ": write error: ", std::strerror(errno));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void OutputFile::write(const void* data, size_t size) {
  if (!staging_) {
    write_fd(data, size);
    written_ += size;
    return;
  }
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const size_t n = std::min(size, kStagingBytes - staged_);
    std::memcpy(staging_ + staged_, p, n);
    staged_ += n;
    p += n;
    size -= n;
    written_ += n;
    if (staged_ == kStagingBytes) flush_staging(false);
  }
}

// Writes the staging buffer. Only the last write may end off the alignment: it is padded with
// zeros to a whole block and the file is cut back to its true length.
void OutputFile::flush_staging(bool final) {
  if (staged_ == 0) return;
  size_t bytes = staged_;
  if (final && bytes % kDirectAlignment != 0) {
    const size_t padded = (bytes + kDirectAlignment - 1) / kDirectAlignment * kDirectAlignment;
    std::memset(staging_ + bytes, 0, padded - bytes);
    bytes = padded;
  }
  write_fd(staging_, bytes);
  staged_ = 0;
  if (final && ::ftruncate(fd_, static_cast<off_t>(written_)) != 0)
    fail(path_.string(), ": cannot set the file's length: ", std::strerror(errno));
}

void OutputFile::sync() {
  if (fd_ >= 0 && ::fsync(fd_) != 0)
    fail(path_.string(), ": cannot flush to disk: ", std::strerror(errno));
}

void OutputFile::start_writeback() {
  if (fd_ < 0 || staging_ || written_ == writeback_from_) return;
  // Advisory: a file system without sync_file_range still gets everything at sync() time.
  ::sync_file_range(fd_, static_cast<off_t>(writeback_from_),
                    static_cast<off_t>(written_ - writeback_from_), SYNC_FILE_RANGE_WRITE);
  writeback_from_ = written_;
}

void sync_folder(const fs::path& dir) {
  auto sync_one = [](const fs::path& path, int flags) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) fail(path.string(), ": cannot open to flush: ", std::strerror(errno));
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) fail(path.string(), ": cannot flush to disk: ", std::strerror(err));
  };
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) sync_one(e.path(), O_RDONLY);
  sync_one(dir, O_RDONLY | O_DIRECTORY);
}

void OutputFile::close() {
  if (fd_ < 0) return;
  if (staging_) flush_staging(true);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail(path_.string(), ": error on close: ", std::strerror(errno));
}

StagingDir::StagingDir(const fs::path& target) : target_(fs::absolute(target).lexically_normal()) {
  if (target_.filename().empty()) target_ = target_.parent_path();
  const fs::path parent = target_.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) fail(parent.string(), ": cannot create output's parent folder: ", ec.message());
  std::string pattern =
      (parent / ("." + target_.filename().string() + ".expo-tmp-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr)
    fail(parent.string(), ": cannot create a temporary folder: ", std::strerror(errno));
  staging_ = pattern;
  // mkdtemp makes the folder private (0700); a model folder gets the usual permissions.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(staging_.c_str(), 0777 & ~mask);
}

StagingDir::~StagingDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

void StagingDir::commit(bool force) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(target_))) {
    if (!force) fail(target_.string(), ": already exists; use --force to replace it");
    std::string old_pattern =
        (target_.parent_path() / ("." + target_.filename().string() + ".expo-old-XXXXXX")).string();
    if (::mkdtemp(old_pattern.data()) == nullptr)
      fail(target_.string(), ": cannot prepare replacement: ", std::strerror(errno));
    const fs::path old = fs::path(old_pattern) / "old";
    fs::rename(target_, old, ec);
    if (ec) fail(target_.string(), ": cannot move the existing output aside: ", ec.message());
    fs::rename(staging_, target_, ec);
    if (ec) {
      fs::rename(old, target_);
      fail(target_.string(), ": cannot move the new output into place: ", ec.message());
    }
    committed_ = true;
    fs::remove_all(old_pattern, ec);
    return;
  }
  fs::rename(staging_, target_, ec);
  if (ec) fail(target_.string(), ": cannot move the output into place: ", ec.message());
  committed_ = true;
}

void check_output_target(const fs::path& target, bool force) {
  if (fs::exists(fs::symlink_status(target)) && !force)
    fail(target.string(), ": already exists; use --force to replace it");
}

}  // namespace expo
