#pragma once
// Writing GGUF (version 3, little-endian). Everything that goes before the tensor data is
// declared first: metadata key-value pairs (written in the order they are added) and tensor
// infos (name, ggml type, row-major shape; the byte size follows from the type). Then the
// header, the metadata, the tensor infos and the padding to general.alignment are written at
// once, and the tensors' bytes are streamed in declaration order, each padded with zeros to the
// alignment, so nothing but one tensor (or one chunk of one) need be in memory.
//
//   GgufWriter w;
//   w.add_metadata("general.architecture", "llama");
//   w.add_metadata("llama.block_count", uint32_t{32});
//   w.add_tensor("token_embd.weight", GgmlType::Q8_0, {32000, 4096});  // row-major
//   OutputFile out(staging.path() / "model.gguf", /*direct=*/true);
//   w.start(out);
//   w.write_tensor("token_embd.weight", bytes.data(), bytes.size());  // or begin/write/end
//   w.finish();
//   out.close();
//
// The writer writes to an OutputFile the caller opened, so the caller decides where: inside a
// StagingDir (core/staging_dir.h) committed after finish(), as every expo output is made atomic.
// general.alignment is always written: the caller may add it (a uint32 power of two, which then
// sets the alignment), otherwise it is appended after the caller's keys with the default 32.
// Keys, names and shapes are checked as the reader checks them, so whatever this writes, the
// reader (and llama.cpp) reads back.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/fs.h"
#include "io/gguf.h"

namespace expo {

class GgufWriter {
 public:
  GgufWriter() = default;

  // Appends a metadata pair; throws on an empty, non-UTF-8, over-long or duplicate key, and for
  // general.alignment that is not a uint32 power of two. Only before start().
  void add_metadata(std::string key, GgufValue value);
  // Declares the next tensor: `shape` is row-major (Hugging Face / safetensors order), stored
  // reversed as GGUF dims. Throws on a name that is empty, not UTF-8, longer than 63 bytes or
  // taken, on 0 or more than 4 dims, a zero dim, a last dim (GGUF's ne[0]) that is not a whole
  // number of the type's blocks, or a size that overflows. Only before start().
  void add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape);

  uint32_t alignment() const { return alignment_; }
  const GgufMetadata& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  // Everything before the tensor data (header, metadata, tensor infos with their offsets,
  // padding), and the size of the whole file. Calling either freezes the declarations.
  const std::string& header_bytes();
  uint64_t file_size();

  // Writes the header bytes to `out`; then the tensors follow, in declaration order.
  void start(OutputFile& out);
  // A whole tensor: its name must be the next one declared and `size` its num_bytes.
  void write_tensor(const std::string& name, const void* data, uint64_t size);
  // The same in parts: begin_tensor(name), write() any number of times, end_tensor() when
  // exactly num_bytes were given (more is refused at once), which writes the padding.
  void begin_tensor(const std::string& name);
  void write(const void* data, uint64_t size);
  void end_tensor();
  // Checks that every tensor was written. Does not close `out`.
  void finish();

 private:
  void freeze();

  GgufMetadata metadata_{"GGUF writer"};
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> names_;
  uint32_t alignment_ = kGgufDefaultAlignment;
  bool frozen_ = false;
  std::string header_;
  uint64_t data_size_ = 0;

  OutputFile* out_ = nullptr;
  size_t next_ = 0;  // the tensor to write next (or being written)
  bool in_tensor_ = false;
  uint64_t written_ = 0;  // bytes of the current tensor given so far
};

// Serializes one metadata value (type id, then the value) as GGUF stores it; for tests and
// tools that build files by hand.
void append_gguf_value(std::string& out, const GgufValue& value);
void append_gguf_string(std::string& out, std::string_view s);

}  // namespace expo
