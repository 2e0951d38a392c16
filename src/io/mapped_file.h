#pragma once
// A read-only memory map of a whole file, and its open descriptor. Headers and small reads use
// the map; the bulk streaming pass reads with read_at() (pread into the caller's buffer),
// which measured far cheaper than faulting pages in and out of a mapping on the virtual
// machines expo runs on (every fault and every release is a trip through the hypervisor's
// page tables). release() hands mapped pages back so a pass over the map keeps a small RSS.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace expo {

class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  // Maps the file at `path` and names it `name` in path() and errors (a memory file opened
  // through /proc/self/fd, named after what it was made from).
  MappedFile(const std::filesystem::path& path, std::filesystem::path name);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // Drops the pages of [offset, offset + length) from this process (the page cache keeps them).
  void release(uint64_t offset, uint64_t length) const;
  // Tells the kernel [offset, offset + length) will be read next, front to back.
  void will_need(uint64_t offset, uint64_t length) const;
  // Reads [offset, offset + length) into `out`; throws naming the file if it comes up short.
  void read_at(uint64_t offset, uint64_t length, void* out) const;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace expo
