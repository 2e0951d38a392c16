#include "io/checkpoint_identity.h"

#include <algorithm>
#include <set>
#include <vector>

#include "core/error.h"
#include "core/fingerprint.h"
#include "core/fs.h"
#include "core/units.h"

namespace expo {

namespace fs = std::filesystem;

namespace {

// The checkpoint's weight files, in the order its tensors first name them.
std::vector<const SafetensorsFile*> weight_files(const Checkpoint& checkpoint) {
  std::vector<const SafetensorsFile*> files;
  for (const auto& t : checkpoint.tensors())
    if (std::find(files.begin(), files.end(), t.file) == files.end()) files.push_back(t.file);
  return files;
}

fs::path resolved(const fs::path& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? fs::absolute(path) : p;
}

uint64_t data_bytes(const SafetensorsFile& file) {
  uint64_t end = 0;
  for (const auto& t : file.tensors()) end = std::max(end, t.end);
  return end;
}

// Bytes [offset, offset + length) of the file's data area (tensors tile it from offset 0).
void read_data(const SafetensorsFile& file, uint64_t offset, uint64_t length, void* out) {
  const TensorInfo* first = nullptr;
  for (const auto& t : file.tensors())
    if (t.begin == 0) first = &t;
  if (first) file.read(*first, offset, length, out);
}

}  // namespace

std::string checkpoint_location(const Checkpoint& checkpoint) {
  // A GGUF file's folder is a temporary one, made anew by each opening.
  if (checkpoint.gguf()) return resolved(checkpoint.spec()).string();
  if (!checkpoint.folder().empty()) return resolved(checkpoint.folder()).string();
  const auto files = weight_files(checkpoint);
  return files.empty() ? checkpoint.spec() : resolved(files[0]->path()).string();
}

std::string checkpoint_identity(const Checkpoint& checkpoint) {
  constexpr uint64_t kSample = 64 << 10;
  ContentHash hash;
  uint64_t total = 0;
  const auto files = weight_files(checkpoint);
  std::vector<char> buffer(kSample);
  for (const SafetensorsFile* file : files) {
    const uint64_t size = file->header().data_start + data_bytes(*file);
    total += size;
    hash.add_field(file->path().filename().string()).add_number(size);
    for (const auto& t : file->tensors()) {
      hash.add_field(t.name).add_field(dtype_name(t.dtype)).add_number(t.shape.size());
      for (uint64_t d : t.shape) hash.add_number(d);
      hash.add_number(t.begin).add_number(t.end);
    }
    for (const auto& [key, value] : file->header().metadata) hash.add_field(key).add_field(value);
    const uint64_t data = data_bytes(*file);
    const uint64_t head = std::min(kSample, data);
    read_data(*file, 0, head, buffer.data());
    hash.add(buffer.data(), head);
    if (data > head) {
      const uint64_t tail = std::min(kSample, data - head);
      read_data(*file, data - tail, tail, buffer.data());
      hash.add(buffer.data(), tail);
    }
  }
  hash.add_field(checkpoint.config() ? checkpoint.config()->dump() : "");
  const fs::path generation = checkpoint.folder() / "generation_config.json";
  std::error_code ec;
  hash.add_field(!checkpoint.folder().empty() && !checkpoint.gguf() && fs::exists(generation, ec)
                     ? read_text_file(generation)
                     : "");
  return str(checkpoint_location(checkpoint), ", content ", hash.hex(), " (", files.size(),
             files.size() == 1 ? " file, " : " files, ", format_bytes(total), ")");
}

std::optional<std::string> same_weights(const Checkpoint& a, const Checkpoint& b) {
  const auto a_files = weight_files(a), b_files = weight_files(b);
  std::set<fs::path> a_paths, b_paths;
  for (const auto* f : a_files) a_paths.insert(resolved(f->path()));
  for (const auto* f : b_files) b_paths.insert(resolved(f->path()));
  if (a_paths == b_paths) return str("both are ", checkpoint_location(a));

  if (a.tensors().size() != b.tensors().size()) return std::nullopt;
  for (const auto& t : a.tensors()) {
    const CheckpointTensor* u = b.find(t.name());
    if (!u || u->info->dtype != t.info->dtype || u->info->shape != t.info->shape ||
        u->info->num_bytes() != t.info->num_bytes())
      return std::nullopt;
  }
  constexpr uint64_t kHead = 4096, kChunk = 1 << 20;
  std::vector<uint8_t> x(kChunk), y(kChunk);
  auto equal = [&](const CheckpointTensor& t, uint64_t from, uint64_t to) {
    const CheckpointTensor& u = *b.find(t.name());
    for (uint64_t at = from; at < to; at += kChunk) {
      const uint64_t n = std::min(kChunk, to - at);
      t.file->read(*t.info, at, n, x.data());
      u.file->read(*u.info, at, n, y.data());
      if (!std::equal(x.begin(), x.begin() + static_cast<ptrdiff_t>(n), y.begin())) return false;
    }
    return true;
  };
  for (const auto& t : a.tensors())
    if (!equal(t, 0, std::min(kHead, t.info->num_bytes()))) return std::nullopt;
  for (const auto& t : a.tensors())
    if (!equal(t, std::min(kHead, t.info->num_bytes()), t.info->num_bytes())) return std::nullopt;
  return std::string("their weights are byte for byte identical");
}

}  // namespace expo
