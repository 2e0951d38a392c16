#pragma once
// Laying out a safetensors file: the header bytes (JSON padded with spaces to 8 bytes, as the
// reference writer does) and each tensor's offsets, computed before any data is written so a
// writer can stream tensors into place one after another.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <cstdint>
#include "core/dtype.h"

namespace expo {

struct TensorLayout {
  std::string name;
  DType dtype;
  std::vector<uint64_t> shape;
  uint64_t num_bytes() const;
};

struct SafetensorsLayout {
  std::string header_bytes;      // 8-byte length + JSON, ready to write
  std::vector<uint64_t> begins;  // each tensor's offset in the data area, in the given order
  uint64_t data_size = 0;
  uint64_t file_size() const { return header_bytes.size() + data_size; }
};

struct TensorData {
  TensorLayout layout;
  std::vector<uint8_t> bytes;
};

// Writes a whole safetensors file from tensors held in memory (small models, tests, demos).
void write_safetensors_file(const std::string& path, const std::vector<TensorData>& tensors,
                            const std::map<std::string, std::string>& metadata);

SafetensorsLayout layout_safetensors(const std::vector<TensorLayout>& tensors,
                                     const std::map<std::string, std::string>& metadata);

}  // namespace expo
