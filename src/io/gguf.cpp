#include "io/gguf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/utf8.h"

namespace expo {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader and writer assume a little-endian host");

namespace {

constexpr GgufType kElementTypes[12] = {GgufType::UINT8,   GgufType::INT8,   GgufType::UINT16,
                                        GgufType::INT16,   GgufType::UINT32, GgufType::INT32,
                                        GgufType::FLOAT32, GgufType::BOOL,   GgufType::STRING,
                                        GgufType::UINT64,  GgufType::INT64,  GgufType::FLOAT64};

// Bytes of one element of a fixed-size type; 0 for STRING and ARRAY.
uint64_t fixed_size(GgufType type) {
  switch (type) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL:
      return 1;
    case GgufType::UINT16:
    case GgufType::INT16:
      return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32:
      return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64:
      return 8;
    default:
      return 0;
  }
}

bool known_type(uint32_t id) { return id <= 12; }

std::string plural_name(GgufType type) {
  return type == GgufType::STRING ? "strings" : std::string(gguf_type_name(type)) + " values";
}

// A string for people: quoted, with control characters, quotes, backslashes and bytes that are
// not UTF-8 escaped; cut after max_chars bytes of input.
std::string quoted(std::string_view s, size_t max_chars) {
  std::string out = "\"";
  size_t i = 0;
  while (i < s.size() && i < max_chars) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c == '\n') {
      out += "\\n";
      ++i;
    } else if (c == '\t') {
      out += "\\t";
      ++i;
    } else if (c == '\r') {
      out += "\\r";
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else {
      const size_t n = utf8_length(c);
      if (i + n <= s.size() && find_invalid_utf8(s.substr(i, n)) == std::string_view::npos) {
        out.append(s.substr(i, n));
        i += n;
      } else {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
        ++i;
      }
    }
  }
  out += '"';
  if (i < s.size()) out += str("... (", s.size(), " bytes)");
  return out;
}

template <typename T>
std::string scalar_display(const T& v, size_t max_chars) {
  if constexpr (std::is_same_v<T, std::string>) {
    return quoted(v, max_chars);
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", std::is_same_v<T, float> ? 9 : 17,
                  static_cast<double>(v));
    return buf;
  } else if constexpr (sizeof(T) == 1) {
    return std::to_string(static_cast<int>(v));
  } else {
    return std::to_string(v);
  }
}

}  // namespace

std::string_view gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::UINT8:
      return "uint8";
    case GgufType::INT8:
      return "int8";
    case GgufType::UINT16:
      return "uint16";
    case GgufType::INT16:
      return "int16";
    case GgufType::UINT32:
      return "uint32";
    case GgufType::INT32:
      return "int32";
    case GgufType::FLOAT32:
      return "float32";
    case GgufType::BOOL:
      return "bool";
    case GgufType::STRING:
      return "string";
    case GgufType::ARRAY:
      return "array";
    case GgufType::UINT64:
      return "uint64";
    case GgufType::INT64:
      return "int64";
    case GgufType::FLOAT64:
      return "float64";
  }
  return "?";
}

// ---- GgufValue ------------------------------------------------------------------------------

GgufType GgufValue::type() const { return is_array() ? GgufType::ARRAY : element_type(); }

GgufType GgufValue::element_type() const { return kElementTypes[storage_.index() % 12]; }

uint64_t GgufValue::array_size() const {
  return std::visit(
      [](const auto& v) -> uint64_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return 0;
        } else if constexpr (requires { v.size(); }) {
          return v.size();
        } else {
          return 0;
        }
      },
      storage_);
}

std::string GgufValue::type_name() const {
  const std::string element(gguf_type_name(element_type()));
  return is_array() ? "array[" + element + "]" : element;
}

std::string GgufValue::to_display(size_t max_items, size_t max_chars) const {
  return std::visit(
      [&](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string> || !requires { v.size(); }) {
          return scalar_display(v, max_chars);
        } else {
          std::string out = str("[", v.size(), " ", plural_name(element_type()));
          const size_t shown = std::min<size_t>(v.size(), max_items);
          for (size_t i = 0; i < shown; ++i) {
            out += i == 0 ? ": " : ", ";
            using E = typename T::value_type;
            out += scalar_display(static_cast<E>(v[i]), max_chars);
          }
          if (shown < v.size()) out += ", ...";
          return out + "]";
        }
      },
      storage_);
}

// ---- GgufMetadata ---------------------------------------------------------------------------

void GgufMetadata::add(std::string key, GgufValue value) {
  if (key.empty()) fail(label_, ": a metadata key is empty");
  if (index_.count(key)) fail(label_, ": metadata key ", key, " appears twice");
  index_.emplace(key, entries_.size());
  entries_.push_back({std::move(key), std::move(value)});
}

const GgufValue* GgufMetadata::find(std::string_view key) const {
  const auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &entries_[it->second].value;
}

const GgufValue& GgufMetadata::get(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) fail(label_, ": metadata key ", key, " is missing");
  return *v;
}

void GgufMetadata::type_mismatch(std::string_view key, const GgufValue& value,
                                 const std::string& expected) const {
  fail(label_, ": metadata key ", key, " is ", value.type_name(), ", expected ", expected);
}

std::optional<uint64_t> GgufMetadata::find_count(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  const std::optional<uint64_t> count = std::visit(
      [](const auto& x) -> std::optional<uint64_t> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          if constexpr (std::is_signed_v<T>)
            if (x < 0) return std::nullopt;
          return static_cast<uint64_t>(x);
        } else {
          return std::nullopt;
        }
      },
      v->storage());
  if (!count) {
    if (v->is_array() || v->element_type() == GgufType::STRING ||
        v->element_type() == GgufType::BOOL || v->element_type() == GgufType::FLOAT32 ||
        v->element_type() == GgufType::FLOAT64)
      type_mismatch(key, *v, "an unsigned integer");
    fail(label_, ": metadata key ", key, " is ", v->to_display(), ", expected a count (>= 0)");
  }
  return count;
}

uint64_t GgufMetadata::get_count(std::string_view key) const {
  get(key);  // the "missing" error
  return *find_count(key);
}

// ---- tensors --------------------------------------------------------------------------------

uint64_t GgufTensorInfo::num_elements() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;  // checked against overflow when parsed or declared
  return n;
}

std::vector<uint64_t> GgufTensorInfo::shape() const { return {dims.rbegin(), dims.rend()}; }

namespace {
std::string list_string(const std::vector<uint64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}
}  // namespace

std::string GgufTensorInfo::dims_string() const { return list_string(dims); }
std::string GgufTensorInfo::shape_string() const { return list_string(shape()); }

const GgufTensorInfo* GgufContents::find_tensor(std::string_view name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

// ---- the parser -----------------------------------------------------------------------------

namespace {

class Cursor {
 public:
  Cursor(const uint8_t* bytes, uint64_t available, uint64_t file_size, const std::string& label)
      : bytes_(bytes), end_(std::min(available, file_size)), file_size_(file_size), label_(label) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return end_ - pos_; }
  // What the file holds after pos (more than remaining() when only a prefix was given): the
  // bound for counts and lengths.
  uint64_t file_remaining() const { return file_size_ - pos_; }

  // Fails unless n more bytes are there; `what` says what was being read.
  void need(uint64_t n, const std::string& what) const {
    if (n <= remaining()) return;
    if (end_ < file_size_)
      fail(label_, ": truncated header: ", what, " at byte ", pos_, " needs ", n,
           " bytes, only the first ", end_, " bytes were available");
    fail(label_, ": truncated: ", what, " at byte ", pos_, " needs ", n, " bytes but the file (",
         file_size_, " bytes) ends ", remaining(), " bytes later");
  }

  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string_view read_bytes(uint64_t n, const std::string& what) {
    need(n, what);
    std::string_view s(reinterpret_cast<const char*>(bytes_ + pos_), n);
    pos_ += n;
    return s;
  }

  // A GGUF string: u64 length, then the bytes; at most `max_bytes`.
  std::string_view read_string(const std::string& what, uint64_t max_bytes) {
    const uint64_t n = read<uint64_t>(what + "'s length");
    if (n > max_bytes)
      fail(label_, ": ", what, " is ", n, " bytes long, more than the ", max_bytes,
           " bytes allowed");
    if (n > file_remaining())
      fail(label_, ": ", what, " is ", n, " bytes long at byte ", pos_,
           ", past the end of the file (", file_remaining(),
           " bytes left); the file is truncated or corrupt");
    return read_bytes(n, what);
  }

 private:
  const uint8_t* bytes_;
  uint64_t end_;
  uint64_t file_size_;
  const std::string& label_;
  uint64_t pos_ = 0;
};

template <typename T>
T read_scalar(Cursor& in, GgufType type, const std::string& label, const std::string& what) {
  if constexpr (std::is_same_v<T, std::string>) {
    return std::string(in.read_string(what, kGgufMaxStringBytes));
  } else if constexpr (std::is_same_v<T, bool>) {
    const auto b = in.read<uint8_t>(what);
    if (b > 1)
      fail(label, ": ", what, " is a bool stored as ", static_cast<int>(b), ", not 0 or 1");
    return b == 1;
  } else {
    (void)type;
    return in.read<T>(what);
  }
}

template <typename T>
GgufValue read_array(Cursor& in, GgufType type, uint64_t n, const std::string& label,
                     const std::string& what) {
  std::vector<T> out;
  out.reserve(n);  // n was checked against the bytes left
  const std::string element_what = what + " element";
  for (uint64_t i = 0; i < n; ++i) out.push_back(read_scalar<T>(in, type, label, element_what));
  return GgufValue(std::move(out));
}

template <typename F>
auto dispatch(GgufType type, F&& f) {
  switch (type) {
    case GgufType::UINT8:
      return f(uint8_t{});
    case GgufType::INT8:
      return f(int8_t{});
    case GgufType::UINT16:
      return f(uint16_t{});
    case GgufType::INT16:
      return f(int16_t{});
    case GgufType::UINT32:
      return f(uint32_t{});
    case GgufType::INT32:
      return f(int32_t{});
    case GgufType::FLOAT32:
      return f(float{});
    case GgufType::BOOL:
      return f(bool{});
    case GgufType::STRING:
      return f(std::string{});
    case GgufType::UINT64:
      return f(uint64_t{});
    case GgufType::INT64:
      return f(int64_t{});
    default:  // FLOAT64; ARRAY is handled by the callers
      return f(double{});
  }
}

GgufValue read_value(Cursor& in, const std::string& label, const std::string& key) {
  const std::string what = "metadata key " + key;
  const auto raw_type = in.read<uint32_t>(what + "'s value type");
  if (!known_type(raw_type))
    fail(label, ": ", what, " has unknown value type ", raw_type, " (known: 0 to 12)");
  const auto type = static_cast<GgufType>(raw_type);
  if (type != GgufType::ARRAY)
    return dispatch(type, [&](auto tag) -> GgufValue {
      return GgufValue(read_scalar<decltype(tag)>(in, type, label, what + "'s value"));
    });

  const auto raw_element = in.read<uint32_t>(what + "'s array element type");
  if (!known_type(raw_element))
    fail(label, ": ", what, " is an array of unknown value type ", raw_element,
         " (known: 0 to 12)");
  const auto element = static_cast<GgufType>(raw_element);
  if (element == GgufType::ARRAY)
    fail(label, ": ", what,
         " is an array of arrays, which expo does not read (no model key is one)");
  const uint64_t n = in.read<uint64_t>(what + "'s array length");
  if (n > kGgufMaxArrayElements)
    fail(label, ": ", what, " is an array of ", n, " elements, more than the ",
         kGgufMaxArrayElements, " allowed");
  // Each element takes at least its fixed size, a string at least its 8-byte length.
  const uint64_t min_size = element == GgufType::STRING ? 8 : fixed_size(element);
  uint64_t min_bytes;
  if (__builtin_mul_overflow(n, min_size, &min_bytes) || min_bytes > in.file_remaining())
    fail(label, ": ", what, " is an array of ", n, " ", plural_name(element), " at byte ", in.pos(),
         ", more than the ", in.file_remaining(),
         " bytes left can hold; the file is truncated or corrupt");
  return dispatch(element, [&](auto tag) -> GgufValue {
    return read_array<decltype(tag)>(in, element, n, label, what);
  });
}

void check_name_utf8(std::string_view s, const std::string& label, const std::string& what) {
  const size_t bad = find_invalid_utf8(s);
  if (bad != std::string_view::npos)
    fail(label, ": ", what, " ", quoted(s, 80), " is not valid UTF-8 (byte ", bad, ")");
}

uint64_t align_up(uint64_t offset, uint64_t alignment, bool* overflow) {
  const uint64_t rem = offset % alignment;
  uint64_t out = offset;
  *overflow = rem != 0 && __builtin_add_overflow(offset, alignment - rem, &out);
  return out;
}

}  // namespace

bool has_gguf_magic(const uint8_t* bytes, uint64_t available) {
  return available >= 4 && std::memcmp(bytes, "GGUF", 4) == 0;
}

bool is_gguf_file(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  uint8_t magic[4];
  const ssize_t n = ::pread(fd, magic, 4, 0);
  ::close(fd);
  return n == 4 && has_gguf_magic(magic, 4);
}

GgufContents parse_gguf(const uint8_t* bytes, uint64_t available, uint64_t file_size,
                        const std::string& label) {
  Cursor in(bytes, available, file_size, label);
  GgufContents out;
  out.metadata = GgufMetadata(label);

  // Header.
  if (std::min(available, file_size) < 4)
    fail(label, ": truncated: ", file_size, " bytes, too short for a GGUF header");
  const std::string_view magic = in.read_bytes(4, "the magic");
  if (magic == "FUGG")
    fail(label, ": the magic is byte-swapped (\"FUGG\"): big-endian GGUF is not supported");
  if (magic != "GGUF")
    fail(label, ": not a GGUF file (the first 4 bytes are ", quoted(magic, 4),
         ", expected \"GGUF\")");
  const auto version = in.read<uint32_t>("the version");
  if (version != 0 && (version & 0xffff) == 0 && __builtin_bswap32(version) <= kGgufVersion)
    fail(label, ": version field ", version, " is GGUF version ", __builtin_bswap32(version),
         " byte-swapped: big-endian GGUF is not supported");
  if (version == 1)
    fail(label,
         ": GGUF version 1 is not supported (it stored 32-bit counts and lengths, and "
         "llama.cpp dropped it too); convert the model again with a current llama.cpp");
  if (version != 2 && version != 3)
    fail(label, ": GGUF version ", version, " is not supported (expo reads versions 2 and 3)");
  out.version = version;
  const auto n_tensors = in.read<uint64_t>("the tensor count");
  const auto n_kv = in.read<uint64_t>("the metadata count");
  // The smallest key-value pair is 14 bytes (an 8-byte length, a 1-byte key, a 4-byte type, a
  // 1-byte value); the smallest tensor info 33 (length, 1-byte name, n_dims, one dim, type,
  // offset). Counts the rest of the file cannot hold are corrupt, refused before any loop.
  constexpr uint64_t kMinKv = 14, kMinTensor = 33;
  uint64_t kv_bytes, tensor_bytes, header_bytes;
  if (__builtin_mul_overflow(n_kv, kMinKv, &kv_bytes) ||
      __builtin_mul_overflow(n_tensors, kMinTensor, &tensor_bytes) ||
      __builtin_add_overflow(kv_bytes, tensor_bytes, &header_bytes) ||
      header_bytes > in.file_remaining())
    fail(label, ": the header claims ", n_tensors, " tensors and ", n_kv,
         " metadata keys, more than the remaining ", in.file_remaining(),
         " bytes can hold; the file is truncated or corrupt");

  // Metadata.
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string_view key = in.read_string(str("metadata key #", i), kGgufMaxKeyBytes);
    if (key.empty()) fail(label, ": metadata key #", i, " is empty");
    check_name_utf8(key, label, str("metadata key #", i));
    std::string k(key);
    if (out.metadata.contains(k)) fail(label, ": metadata key ", k, " appears twice");
    GgufValue value = read_value(in, label, k);
    out.metadata.add(std::move(k), std::move(value));
  }
  if (const GgufValue* a = out.metadata.find(kGgufAlignmentKey)) {
    if (!a->holds<uint32_t>())
      fail(label, ": metadata key ", kGgufAlignmentKey, " is ", a->type_name(),
           ", expected uint32");
    const uint32_t alignment = a->as<uint32_t>();
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
      fail(label, ": metadata key ", kGgufAlignmentKey, " is ", alignment, ", not a power of two");
    out.alignment = alignment;
  }

  // Tensor infos.
  std::unordered_map<std::string, size_t> seen;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const std::string_view name_view = in.read_string(str("tensor name #", i), kGgufMaxStringBytes);
    if (name_view.empty()) fail(label, ": tensor #", i, " has an empty name");
    check_name_utf8(name_view, label, str("tensor name #", i));
    GgufTensorInfo t;
    t.name = std::string(name_view);
    const std::string what = "tensor " + t.name;
    if (t.name.size() > kGgufMaxNameBytes)
      fail(label, ": ", what, ": the name is ", t.name.size(), " bytes, more than ggml's ",
           kGgufMaxNameBytes);
    if (!seen.emplace(t.name, i).second) fail(label, ": ", what, " appears twice");
    const auto n_dims = in.read<uint32_t>(what + "'s dimension count");
    if (n_dims < 1 || n_dims > kGgufMaxDims)
      fail(label, ": ", what, " has ", n_dims, " dimensions; GGUF tensors have 1 to ",
           kGgufMaxDims);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = in.read<uint64_t>(what + "'s dimensions");
      t.dims.push_back(dim);
      if (dim == 0) fail(label, ": ", what, " has dimension ", d, " = 0");
      if (__builtin_mul_overflow(elements, dim, &elements) ||
          elements > static_cast<uint64_t>(INT64_MAX))
        fail(label, ": ", what, ": dims ", t.dims_string(), "... overflow ggml's int64 count");
    }
    const auto raw_type = in.read<uint32_t>(what + "'s type");
    const GgmlTypeTraits* traits = find_ggml_type(raw_type);
    if (!traits) {
      if (const char* removed = removed_ggml_type_name(raw_type))
        fail(label, ": ", what, " has ggml type ", raw_type, " (", removed,
             "), which was removed from GGUF files");
      fail(label, ": ", what, " has unknown ggml type ", raw_type);
    }
    t.type = traits->type;
    if (t.dims[0] % traits->block_size != 0)
      fail(label, ": ", what, " of type ", traits->name, " has rows of ", t.dims[0],
           " values, not a whole number of its blocks of ", traits->block_size);
    const auto bytes = ggml_tensor_bytes(t.type, t.dims);
    if (!bytes) fail(label, ": ", what, ": dims ", t.dims_string(), " overflow 64-bit sizes");
    t.num_bytes = *bytes;
    t.offset = in.read<uint64_t>(what + "'s offset");
    if (t.offset % out.alignment != 0)
      fail(label, ": ", what, " has offset ", t.offset, ", not a multiple of the alignment ",
           out.alignment);
    out.tensors.push_back(std::move(t));
  }

  // The data section.
  bool overflow = false;
  out.data_start = align_up(in.pos(), out.alignment, &overflow);
  if (out.tensors.empty()) {
    out.data_start = std::min(out.data_start, file_size);
    return out;
  }
  if (overflow || out.data_start > file_size)
    fail(label, ": truncated: the data section would start at byte ", out.data_start,
         ", past the end of the file (", file_size, " bytes)");
  const uint64_t data_size = file_size - out.data_start;
  std::vector<size_t> order(out.tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return out.tensors[a].offset < out.tensors[b].offset; });
  const GgufTensorInfo* previous = nullptr;
  for (size_t idx : order) {
    const GgufTensorInfo& t = out.tensors[idx];
    uint64_t end;
    if (__builtin_add_overflow(t.offset, t.num_bytes, &end) || end > data_size)
      fail(label, ": tensor ", t.name, " (", t.num_bytes, " bytes at offset ", t.offset,
           ") runs past the end of the data section (", data_size,
           " bytes); the file is truncated");
    if (previous && t.offset < previous->offset + previous->num_bytes)
      fail(label, ": tensor ", t.name, " (bytes ", t.offset, " to ", end, ") overlaps tensor ",
           previous->name, " (bytes ", previous->offset, " to ",
           previous->offset + previous->num_bytes, ")");
    previous = &t;
  }
  return out;
}

// ---- GgufFile -------------------------------------------------------------------------------

GgufFile::GgufFile(const std::filesystem::path& path) : file_(std::make_unique<MappedFile>(path)) {
  contents_ = parse_gguf(file_->data(), file_->size(), file_->size(), path.string());
  for (size_t i = 0; i < contents_.tensors.size(); ++i) by_name_[contents_.tensors[i].name] = i;
}

const GgufTensorInfo* GgufFile::find(std::string_view name) const {
  const auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &contents_.tensors[it->second];
}

}  // namespace expo
