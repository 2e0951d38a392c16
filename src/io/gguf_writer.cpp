#include "io/gguf_writer.h"

#include <cstring>

#include "core/error.h"
#include "core/utf8.h"

namespace expo {

namespace {

template <typename T>
void append_raw(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));  // little-endian host (asserted in gguf.cpp)
  out.append(buf, sizeof(T));
}

template <typename T>
void append_scalar(std::string& out, const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    append_gguf_string(out, v);
  } else if constexpr (std::is_same_v<T, bool>) {
    append_raw<uint8_t>(out, v ? 1 : 0);
  } else {
    append_raw<T>(out, v);
  }
}

void check_identifier(std::string_view s, const char* what, uint64_t max_bytes) {
  if (s.empty()) fail("GGUF writer: a ", what, " is empty");
  if (s.size() > max_bytes)
    fail("GGUF writer: ", what, " ", s, " is ", s.size(), " bytes, more than the ", max_bytes,
         " allowed");
  if (find_invalid_utf8(s) != std::string_view::npos)
    fail("GGUF writer: ", what, " ", utf8_lossy(s), " is not valid UTF-8");
}

constexpr char kZeros[256] = {};

}  // namespace

void append_gguf_string(std::string& out, std::string_view s) {
  append_raw<uint64_t>(out, s.size());
  out.append(s);
}

void append_gguf_value(std::string& out, const GgufValue& value) {
  append_raw<uint32_t>(out, static_cast<uint32_t>(value.type()));
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string> || !requires { v.size(); }) {
          append_scalar(out, v);
        } else {
          append_raw<uint32_t>(out, static_cast<uint32_t>(value.element_type()));
          append_raw<uint64_t>(out, v.size());
          using E = typename T::value_type;
          for (size_t i = 0; i < v.size(); ++i) append_scalar<E>(out, static_cast<E>(v[i]));
        }
      },
      value.storage());
}

void GgufWriter::add_metadata(std::string key, GgufValue value) {
  if (frozen_) fail("GGUF writer: metadata key ", key, " added after the header was laid out");
  check_identifier(key, "metadata key", kGgufMaxKeyBytes);
  if (value.is_array() && value.array_size() > kGgufMaxArrayElements)
    fail("GGUF writer: metadata key ", key, " has ", value.array_size(),
         " elements, more than the ", kGgufMaxArrayElements, " readers accept");
  if (key == kGgufAlignmentKey) {
    if (!value.holds<uint32_t>())
      fail("GGUF writer: metadata key ", key, " is ", value.type_name(), ", expected uint32");
    const uint32_t a = value.as<uint32_t>();
    if (a == 0 || (a & (a - 1)) != 0)
      fail("GGUF writer: metadata key ", key, " is ", a, ", not a power of two");
    alignment_ = a;
  }
  if (metadata_.contains(key)) fail("GGUF writer: metadata key ", key, " is added twice");
  metadata_.add(std::move(key), std::move(value));
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<uint64_t> shape) {
  if (frozen_) fail("GGUF writer: tensor ", name, " declared after the header was laid out");
  check_identifier(name, "tensor name", kGgufMaxNameBytes);
  if (names_.count(name)) fail("GGUF writer: tensor ", name, " is declared twice");
  const GgmlTypeTraits* traits = find_ggml_type(static_cast<uint32_t>(type));
  if (!traits) fail("GGUF writer: tensor ", name, " has an unknown ggml type");
  GgufTensorInfo t;
  t.name = std::move(name);
  t.type = type;
  t.dims.assign(shape.rbegin(), shape.rend());
  if (t.dims.empty() || t.dims.size() > kGgufMaxDims)
    fail("GGUF writer: tensor ", t.name, " has ", t.dims.size(),
         " dimensions; GGUF tensors have 1 to ", kGgufMaxDims);
  for (uint64_t d : t.dims)
    if (d == 0)
      fail("GGUF writer: tensor ", t.name, " has a zero dimension in its shape ", t.shape_string());
  if (t.dims[0] % traits->block_size != 0)
    fail("GGUF writer: tensor ", t.name, " of shape ", t.shape_string(), " has rows of ", t.dims[0],
         " values, not a whole number of ", traits->name, " blocks of ", traits->block_size);
  const auto bytes = ggml_tensor_bytes(type, t.dims);
  if (!bytes) fail("GGUF writer: tensor ", t.name, " of shape ", t.shape_string(), " overflows");
  t.num_bytes = *bytes;
  names_.emplace(t.name, tensors_.size());
  tensors_.push_back(std::move(t));
}

void GgufWriter::freeze() {
  if (frozen_) return;
  if (!metadata_.contains(kGgufAlignmentKey))
    metadata_.add(kGgufAlignmentKey, GgufValue(uint32_t{alignment_}));
  frozen_ = true;
  // Offsets: each tensor at the aligned end of the one before.
  uint64_t offset = 0;
  for (auto& t : tensors_) {
    t.offset = offset;
    uint64_t padded = t.num_bytes + (alignment_ - t.num_bytes % alignment_) % alignment_;
    if (padded < t.num_bytes || __builtin_add_overflow(offset, padded, &offset))
      fail("GGUF writer: the tensors' data overflows 64-bit offsets at tensor ", t.name);
  }
  data_size_ = offset;

  std::string& h = header_;
  h.append("GGUF", 4);
  append_raw<uint32_t>(h, kGgufVersion);
  append_raw<uint64_t>(h, tensors_.size());
  append_raw<uint64_t>(h, metadata_.size());
  for (const auto& e : metadata_.entries()) {
    append_gguf_string(h, e.key);
    append_gguf_value(h, e.value);
  }
  for (const auto& t : tensors_) {
    append_gguf_string(h, t.name);
    append_raw<uint32_t>(h, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) append_raw<uint64_t>(h, d);
    append_raw<uint32_t>(h, static_cast<uint32_t>(t.type));
    append_raw<uint64_t>(h, t.offset);
  }
  h.append((alignment_ - h.size() % alignment_) % alignment_, '\0');
}

const std::string& GgufWriter::header_bytes() {
  freeze();
  return header_;
}

uint64_t GgufWriter::file_size() {
  freeze();
  // The last tensor's padding is written too (llama.cpp's writer does the same).
  return header_.size() + data_size_;
}

void GgufWriter::start(OutputFile& out) {
  if (out_) fail("GGUF writer: start() called twice");
  freeze();
  out_ = &out;
  out.write(header_.data(), header_.size());
}

void GgufWriter::begin_tensor(const std::string& name) {
  if (!out_) fail("GGUF writer: tensor ", name, " written before start()");
  if (in_tensor_)
    fail(out_->path().string(), ": tensor ", name, " begun while tensor ", tensors_[next_].name,
         " is still being written");
  if (next_ >= tensors_.size())
    fail(out_->path().string(), ": tensor ", name, " written, but all ", tensors_.size(),
         " declared tensors were written already");
  if (tensors_[next_].name != name)
    fail(out_->path().string(), ": tensor ", name, " written where tensor ", tensors_[next_].name,
         " comes next (tensors are written in the order declared)");
  in_tensor_ = true;
  written_ = 0;
}

void GgufWriter::write(const void* data, uint64_t size) {
  if (!in_tensor_) fail("GGUF writer: write() outside begin_tensor() / end_tensor()");
  const GgufTensorInfo& t = tensors_[next_];
  if (size > t.num_bytes - written_)
    fail(out_->path().string(), ": tensor ", t.name, " is given ", written_ + size,
         " bytes or more; its type and shape make it ", t.num_bytes);
  out_->write(data, size);
  written_ += size;
}

void GgufWriter::end_tensor() {
  if (!in_tensor_) fail("GGUF writer: end_tensor() without begin_tensor()");
  const GgufTensorInfo& t = tensors_[next_];
  if (written_ != t.num_bytes)
    fail(out_->path().string(), ": tensor ", t.name, " was given ", written_,
         " bytes; its type and shape make it ", t.num_bytes);
  uint64_t pad = (alignment_ - t.num_bytes % alignment_) % alignment_;
  while (pad > 0) {
    const uint64_t n = std::min<uint64_t>(pad, sizeof kZeros);
    out_->write(kZeros, n);
    pad -= n;
  }
  in_tensor_ = false;
  ++next_;
}

void GgufWriter::write_tensor(const std::string& name, const void* data, uint64_t size) {
  begin_tensor(name);
  write(data, size);
  end_tensor();
}

void GgufWriter::finish() {
  if (!out_) fail("GGUF writer: finish() before start()");
  if (in_tensor_ || next_ != tensors_.size())
    fail(out_->path().string(), ": ", tensors_.size() - next_, " of ", tensors_.size(),
         " tensors were not written (the next is ", tensors_[next_].name, ")");
}

}  // namespace expo
