#pragma once
// A read-only memory map of a whole file. Pages are read on demand; release() hands pages that
// were used back to the kernel so a streaming pass over a large model keeps a small RSS.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace expo {

class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
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

 private:
  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace expo
