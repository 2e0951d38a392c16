#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace expo {

namespace {
uint64_t page_size() {
  static const uint64_t size = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return size;
}
}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path, std::filesystem::path name)
    : MappedFile(path) {
  path_ = std::move(name);
}

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path.string(), ": cannot open: ", std::strerror(errno));
  fd_ = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path.string(), ": cannot stat: ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path.string(), ": not a regular file");
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail(path.string(), ": cannot map into memory: ", std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::read_at(uint64_t offset, uint64_t length, void* out) const {
  auto* dst = static_cast<uint8_t*>(out);
  while (length > 0) {
    const ssize_t n = ::pread(fd_, dst, length, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path_.string(), ": read error at byte ", offset, ": ", std::strerror(errno));
    if (n == 0)
      fail(path_.string(), ": ends at byte ", offset, "; was it truncated while expo ran?");
    dst += n;
    offset += static_cast<uint64_t>(n);
    length -= static_cast<uint64_t>(n);
  }
}

void MappedFile::release(uint64_t offset, uint64_t length) const {
  if (!data_ || length == 0) return;
  // Only whole pages inside the range: a page shared with the next tensor stays mapped.
  const uint64_t page = page_size();
  const uint64_t begin = (offset + page - 1) / page * page;
  const uint64_t end = std::min(offset + length, size_) / page * page;
  if (end > begin) ::madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_DONTNEED);
}

void MappedFile::will_need(uint64_t offset, uint64_t length) const {
  if (length == 0) return;
  if (offset < size_)
    ::posix_fadvise(fd_, static_cast<off_t>(offset),
                    static_cast<off_t>(std::min(length, size_ - offset)), POSIX_FADV_WILLNEED);
}

}  // namespace expo
