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
#include "core/input_limits.h"
#include "core/serial_worker.h"

namespace expo {

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open for reading: ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail(path.string(), ": read error");
  return buffer.str();
}

std::string read_text_file(const fs::path& path, uint64_t max_bytes, std::string_view env_name,
                           bool json_text) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path.string(), ": cannot open for reading: ", std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  auto too_large = [&](const std::string& size) {
    fail(path.string(), ": the file is larger than expo reads (", size, ") ",
         limit_hint(max_bytes, env_name));
  };
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max_bytes)
    too_large(std::to_string(st.st_size) + " bytes");
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path.string(), ": read error: ", std::strerror(errno));
    if (n == 0) break;
    if (json_text) {
      // JSON text never holds a raw NUL byte: a binary file or a device such as /dev/zero
      // stops here, at its first chunk, rather than at the size limit.
      const void* nul = std::memchr(buffer, '\0', static_cast<size_t>(n));
      if (nul)
        fail(path.string(), ": byte ", text.size() + (static_cast<const char*>(nul) - buffer),
             " is a NUL byte: this is not a JSON or JSONL text file");
    }
    if (static_cast<uint64_t>(n) > max_bytes - text.size())
      too_large("more than " + std::to_string(max_bytes) + " bytes");
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

void write_all(int fd, std::string_view text, const fs::path& path) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path.string(), ": write error (disk full?): ", std::strerror(errno));
    done += static_cast<size_t>(n);
  }
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
constexpr size_t kDirectAlignment = 4096;          // O_DIRECT: offsets, sizes and memory
constexpr size_t kStagingBytes = size_t{8} << 20;  // a multiple of kDirectAlignment
constexpr int kStagingBuffers = 4;                 // filled in turn; buffer i -> thread i % 2

void pwrite_all(int fd, const uint8_t* data, size_t size, uint64_t offset, const fs::path& path) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == ENOSPC)
        fail(path.string(), ": disk full after ", offset, " bytes; free space and run again");
      fail(path.string(), ": write error: ", std::strerror(errno));
    }
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
}
}  // namespace

struct OutputFile::Direct {
  uint8_t* buffers[kStagingBuffers] = {};
  uint64_t tickets[kStagingBuffers] = {};
  int current = 0;
  size_t staged = 0;           // bytes in buffers[current]
  uint64_t buffer_offset = 0;  // file offset of buffers[current]
  std::unique_ptr<SerialWorker> threads[2];

  Direct() {
    for (auto& t : threads) t = std::make_unique<SerialWorker>();
  }
  ~Direct() {
    for (auto& t : threads) t.reset();  // joined before the buffers they write go away
    for (auto* b : buffers) std::free(b);
  }
  SerialWorker& thread_of(int buffer) { return *threads[buffer % 2]; }
};

OutputFile::OutputFile(const fs::path& path, bool direct) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path.string(), ": cannot create: ", std::strerror(errno));
  if (direct && ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_DIRECT) == 0) {
    direct_ = std::make_unique<Direct>();
    for (auto*& b : direct_->buffers) {
      b = static_cast<uint8_t*>(std::aligned_alloc(kDirectAlignment, kStagingBytes));
      if (!b) fail(path.string(), ": out of memory for the write buffers");
    }
  }
}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(other.fd_),
      written_(other.written_),
      writeback_from_(other.writeback_from_),
      direct_(std::move(other.direct_)) {
  other.fd_ = -1;
}

OutputFile::~OutputFile() {
  direct_.reset();  // pending writes end before the descriptor closes
  if (fd_ >= 0) ::close(fd_);
}

void OutputFile::write(const void* data, size_t size) {
  if (!direct_) {
    pwrite_all(fd_, static_cast<const uint8_t*>(data), size, written_, path_);
    written_ += size;
    return;
  }
  Direct& d = *direct_;
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const size_t n = std::min(size, kStagingBytes - d.staged);
    std::memcpy(d.buffers[d.current] + d.staged, p, n);
    d.staged += n;
    p += n;
    size -= n;
    written_ += n;
    if (d.staged < kStagingBytes) continue;
    // A full buffer goes to its thread; the next buffer is refilled once its last write ended.
    d.tickets[d.current] = d.thread_of(d.current).submit(
        [fd = fd_, buffer = d.buffers[d.current], offset = d.buffer_offset, path = path_] {
          pwrite_all(fd, buffer, kStagingBytes, offset, path);
        });
    d.buffer_offset += kStagingBytes;
    d.current = (d.current + 1) % kStagingBuffers;
    d.staged = 0;
    d.thread_of(d.current).wait(d.tickets[d.current]);
  }
}

void OutputFile::start_writeback() {
  if (fd_ < 0 || direct_ || written_ == writeback_from_) return;
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
  if (direct_) {
    // Wait for the full buffers, then write the tail padded to a whole block and cut the file
    // back to its true length.
    Direct& d = *direct_;
    for (auto& t : d.threads) t->wait_all();
    if (d.staged > 0) {
      const size_t padded = (d.staged + kDirectAlignment - 1) / kDirectAlignment * kDirectAlignment;
      std::memset(d.buffers[d.current] + d.staged, 0, padded - d.staged);
      pwrite_all(fd_, d.buffers[d.current], padded, d.buffer_offset, path_);
      if (::ftruncate(fd_, static_cast<off_t>(written_)) != 0)
        fail(path_.string(), ": cannot set the file's length: ", std::strerror(errno));
    }
    direct_.reset();
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail(path_.string(), ": error on close: ", std::strerror(errno));
}

fs::path canonical_or_absolute(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(fs::absolute(p), ec);
  return ec ? fs::absolute(p).lexically_normal() : c;
}

bool is_same_or_ancestor(const fs::path& ancestor, const fs::path& path) {
  auto a = ancestor.begin(), p = path.begin();
  for (; a != ancestor.end(); ++a, ++p) {
    if (a->empty()) continue;
    if (p == path.end() || *a != *p) return false;
  }
  return true;
}

void check_can_create(const fs::path& target, const std::string& what) {
  std::error_code ec;
  fs::path dir = fs::absolute(target, ec).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  // The nearest ancestor that exists (the target itself may exist: its folder must be writable
  // for a replacement, and for an output folder, the folder itself).
  fs::path probe_in = fs::is_directory(dir, ec) ? dir : dir.parent_path();
  while (!fs::exists(fs::symlink_status(probe_in, ec)) && probe_in.has_relative_path())
    probe_in = probe_in.parent_path();
  if (!fs::is_directory(probe_in, ec))
    fail(what, " ", target.string(), ": cannot be created, because ", probe_in.string(),
         " is not a folder");
  std::string probe = (probe_in / ".expo-write-probe-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0)
    fail(what, " ", target.string(), ": cannot write in ", probe_in.string(), ": ",
         std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace expo
