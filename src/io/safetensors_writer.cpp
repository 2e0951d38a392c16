#include "io/safetensors_writer.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

namespace expo {

uint64_t TensorLayout::num_bytes() const {
  uint64_t n = dtype_size(dtype);
  for (uint64_t d : shape) n *= d;
  return n;
}

SafetensorsLayout layout_safetensors(const std::vector<TensorLayout>& tensors,
                                     const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  SafetensorsLayout layout;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const uint64_t size = t.num_bytes();
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + size}}};
    layout.begins.push_back(offset);
    offset += size;
  }
  layout.data_size = offset;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t n = text.size();
  layout.header_bytes.resize(8);
  for (int i = 0; i < 8; ++i) layout.header_bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  layout.header_bytes += text;
  return layout;
}

void write_safetensors_file(const std::string& path, const std::vector<TensorData>& tensors,
                            const std::map<std::string, std::string>& metadata) {
  std::vector<TensorLayout> layouts;
  for (const auto& t : tensors) {
    if (t.bytes.size() != t.layout.num_bytes())
      fail("internal: tensor '", t.layout.name, "' has ", t.bytes.size(),
           " bytes, its shape needs ", t.layout.num_bytes());
    layouts.push_back(t.layout);
  }
  const auto layout = layout_safetensors(layouts, metadata);
  OutputFile out(path);
  out.write(layout.header_bytes.data(), layout.header_bytes.size());
  for (const auto& t : tensors) out.write(t.bytes.data(), t.bytes.size());
  out.close();
}

}  // namespace expo
