#pragma once
// Reading the safetensors format: an 8-byte little-endian header length, a JSON header that
// maps tensor names to {dtype, shape, data_offsets}, then the tensor bytes.
//
// The parser trusts nothing: the header length is checked against the file and a 100 MB cap,
// every offset and element count is checked for overflow, and the byte ranges must tile the
// data area exactly (no gap, no overlap, nothing past the end), as the reference
// implementation requires. Every error names the file and, where there is one, the tensor.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "io/mapped_file.h"

namespace expo {

constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;  // the format's own limit

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<uint64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data area
  uint64_t end = 0;

  uint64_t num_elements() const;
  uint64_t num_bytes() const { return end - begin; }
  std::string shape_string() const;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // in data order (by offset)
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + header length
};

// Parses and validates the header of a safetensors file of `file_size` bytes whose first
// `available` bytes are at `bytes`. `label` names the file in errors.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, uint64_t available,
                                           uint64_t file_size, const std::string& label);

// A memory-mapped, validated safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  // Tensors another parser found in `file` (a GGUF file's data section): `header`'s offsets are
  // relative to header.data_start and were checked against the file by that parser.
  SafetensorsFile(std::unique_ptr<MappedFile> file, SafetensorsHeader header);

  const std::filesystem::path& path() const { return file_->path(); }
  const SafetensorsHeader& header() const { return header_; }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const TensorInfo* find(const std::string& name) const;
  const uint8_t* data(const TensorInfo& tensor) const {
    return file_->data() + header_.data_start + tensor.begin;
  }
  // Releases the pages of [tensor.begin + offset, + length) (see MappedFile::release).
  void release(const TensorInfo& tensor, uint64_t offset, uint64_t length) const {
    file_->release(header_.data_start + tensor.begin + offset, length);
  }
  void will_need(const TensorInfo& tensor, uint64_t offset, uint64_t length) const {
    file_->will_need(header_.data_start + tensor.begin + offset, length);
  }
  // Copies bytes [offset, offset + length) of the tensor's data into `out` (pread).
  void read(const TensorInfo& tensor, uint64_t offset, uint64_t length, void* out) const {
    file_->read_at(header_.data_start + tensor.begin + offset, length, out);
  }

 private:
  std::unique_ptr<MappedFile> file_;
  SafetensorsHeader header_;
  std::unordered_map<std::string, size_t> by_name_;
};

}  // namespace expo
