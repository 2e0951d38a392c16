#pragma once
// Reading GGUF, llama.cpp's model file format (little-endian, versions 2 and 3):
//
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x   (string key, u32 value type, value)
//   tensor_count x (string name, u32 n_dims, n_dims x u64 ne, u32 ggml type, u64 offset)
//   zero padding to general.alignment (default 32) | tensor data (each at an aligned offset)
//
// where a string is a u64 byte length and the bytes, and an array value is a u32 element type,
// a u64 length and the elements. The parser trusts nothing, like the safetensors reader: every
// count and length is checked against the bytes left before anything is allocated for it (with
// __builtin_mul_overflow), and the file is refused, with an error naming the file and the key
// or tensor, unless:
//   - the magic is "GGUF" and the version 2 or 3 (1 used 32-bit lengths and is refused with that
//     reason; a byte-swapped version is a big-endian file, refused as such);
//   - each key is non-empty, at most 65535 bytes, valid UTF-8 and unique; each value type is
//     known; an array holds scalars or strings (not arrays), at most 2^30 of them, and a bool is
//     0 or 1; strings are at most 2^30 bytes (both llama.cpp's limits);
//   - general.alignment, when present, is a uint32 power of two;
//   - each tensor name is non-empty, valid UTF-8, unique and at most 63 bytes (ggml keeps names
//     in 64 bytes with a terminating NUL: llama.cpp refuses 64); n_dims is 1..4; every dim is
//     > 0 and the element count fits int64; the type is a ggml type that still exists; ne[0] is
//     a whole number of blocks of the type; the byte size does not overflow;
//   - the data section starts at the aligned end of the tensor infos, inside the file (when there
//     are tensors); every offset is a multiple of the alignment, every tensor lies inside the
//     file, and no two tensors overlap (gaps are allowed: a writer may leave padding).
//
// String values are kept as bytes without a UTF-8 check: the spec calls them UTF-8, but byte-
// level vocabularies (RWKV's, converted by llama.cpp) store tokens that are not valid UTF-8 and
// llama.cpp reads them. Keys and tensor names are checked: they are identifiers, printed in
// errors and JSON.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "io/ggml_type.h"
#include "io/mapped_file.h"

namespace expo {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint32_t kGgufVersion = 3;         // what the writer writes
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr const char* kGgufAlignmentKey = "general.alignment";
inline constexpr uint64_t kGgufMaxNameBytes = 63;  // GGML_MAX_NAME (64) less the NUL
inline constexpr uint32_t kGgufMaxDims = 4;        // GGML_MAX_DIMS
inline constexpr uint64_t kGgufMaxKeyBytes = 65535;
inline constexpr uint64_t kGgufMaxStringBytes = uint64_t{1} << 30;
inline constexpr uint64_t kGgufMaxArrayElements = uint64_t{1} << 30;

// The metadata value types, with the ids GGUF stores.
enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
// "uint8", "int32", "float32", "bool", "string", "array", ...
std::string_view gguf_type_name(GgufType type);

// One metadata value with its GGUF type kept: a scalar (uint8 .. float64, bool, string) or an
// array of one of those. Built from the C++ type that matches: GgufValue(uint32_t{32}),
// GgufValue(std::string("llama")), GgufValue(std::vector<int32_t>{...}); a plain int literal is
// int32, 1.0 is float64, "text" is a string.
class GgufValue {
 public:
  using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, uint64_t, int64_t, double, std::vector<uint8_t>,
                               std::vector<int8_t>, std::vector<uint16_t>, std::vector<int16_t>,
                               std::vector<uint32_t>, std::vector<int32_t>, std::vector<float>,
                               std::vector<bool>, std::vector<std::string>, std::vector<uint64_t>,
                               std::vector<int64_t>, std::vector<double>>;
  // True for the C++ types a GgufValue holds (the alternatives of Storage).
  template <typename T>
  static constexpr bool kHolds = []<typename... Ts>(std::variant<Ts...>*) {
    return (std::is_same_v<T, Ts> || ...);
  }(static_cast<Storage*>(nullptr));

  GgufValue() = default;  // uint8 0
  template <typename T>
  requires kHolds<std::decay_t<T>> GgufValue(T&& value)
      : storage_(std::forward<T>(value)) {}                     // NOLINT: implicit on purpose
  GgufValue(const char* text) : storage_(std::string(text)) {}  // NOLINT

  GgufType type() const;          // ARRAY for arrays
  GgufType element_type() const;  // the scalar's type, or the array's element type
  bool is_array() const { return storage_.index() >= 12; }
  uint64_t array_size() const;  // 0 for a scalar
  // "uint32", "string", "array[string]"
  std::string type_name() const;

  template <typename T>
  bool holds() const {
    return std::holds_alternative<T>(storage_);
  }
  // The value as T; throws std::bad_variant_access when it is not one (use holds() first, or
  // GgufMetadata's getters, which name the key and both types).
  template <typename T>
  const T& as() const {
    return std::get<T>(storage_);
  }
  const Storage& storage() const { return storage_; }

  // For people: a scalar as written (strings quoted and escaped, long ones cut at max_chars),
  // an array as "[N strings: "a", "b", ...]" with its first max_items elements.
  std::string to_display(size_t max_items = 8, size_t max_chars = 80) const;

  bool operator==(const GgufValue& other) const = default;

 private:
  Storage storage_;
};

// The metadata of a file, in file order, with typed lookups whose errors name the file
// ("<label>: metadata key <k> is uint64, expected uint32" / "... is missing").
class GgufMetadata {
 public:
  struct Entry {
    std::string key;
    GgufValue value;
  };

  explicit GgufMetadata(std::string label = "GGUF metadata") : label_(std::move(label)) {}
  // Appends; a duplicate or empty key throws naming it.
  void add(std::string key, GgufValue value);

  const std::vector<Entry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  const GgufValue* find(std::string_view key) const;  // nullptr when absent
  const GgufValue& get(std::string_view key) const;   // throws when absent
  const std::string& label() const { return label_; }

  // The value as T (a Storage alternative: uint32_t, std::string, std::vector<float>, ...);
  // throws when the key is absent or holds another type.
  template <typename T>
  const T& get_as(std::string_view key) const {
    const GgufValue& v = get(key);
    if (!v.holds<T>()) type_mismatch(key, v, GgufValue(T{}).type_name());
    return v.as<T>();
  }
  // The same, or nullopt when the key is absent (a present key of another type still throws).
  template <typename T>
  std::optional<T> find_as(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (!v->holds<T>()) type_mismatch(key, *v, GgufValue(T{}).type_name());
    return v->as<T>();
  }

  uint8_t get_u8(std::string_view key) const { return get_as<uint8_t>(key); }
  int8_t get_i8(std::string_view key) const { return get_as<int8_t>(key); }
  uint16_t get_u16(std::string_view key) const { return get_as<uint16_t>(key); }
  int16_t get_i16(std::string_view key) const { return get_as<int16_t>(key); }
  uint32_t get_u32(std::string_view key) const { return get_as<uint32_t>(key); }
  int32_t get_i32(std::string_view key) const { return get_as<int32_t>(key); }
  uint64_t get_u64(std::string_view key) const { return get_as<uint64_t>(key); }
  int64_t get_i64(std::string_view key) const { return get_as<int64_t>(key); }
  float get_f32(std::string_view key) const { return get_as<float>(key); }
  double get_f64(std::string_view key) const { return get_as<double>(key); }
  bool get_bool(std::string_view key) const { return get_as<bool>(key); }
  const std::string& get_string(std::string_view key) const { return get_as<std::string>(key); }
  const std::vector<std::string>& get_string_array(std::string_view key) const {
    return get_as<std::vector<std::string>>(key);
  }
  const std::vector<float>& get_f32_array(std::string_view key) const {
    return get_as<std::vector<float>>(key);
  }
  const std::vector<int32_t>& get_i32_array(std::string_view key) const {
    return get_as<std::vector<int32_t>>(key);
  }
  const std::vector<uint32_t>& get_u32_array(std::string_view key) const {
    return get_as<std::vector<uint32_t>>(key);
  }

  std::optional<uint32_t> find_u32(std::string_view key) const { return find_as<uint32_t>(key); }
  std::optional<int32_t> find_i32(std::string_view key) const { return find_as<int32_t>(key); }
  std::optional<uint64_t> find_u64(std::string_view key) const { return find_as<uint64_t>(key); }
  std::optional<float> find_f32(std::string_view key) const { return find_as<float>(key); }
  std::optional<bool> find_bool(std::string_view key) const { return find_as<bool>(key); }
  std::optional<std::string> find_string(std::string_view key) const {
    return find_as<std::string>(key);
  }

  // Counts and sizes that writers store as uint32 or uint64 (the spec asks readers to take
  // both): any integer type holding a value >= 0, as uint64. Throws for other types and for
  // negative values.
  uint64_t get_count(std::string_view key) const;
  std::optional<uint64_t> find_count(std::string_view key) const;

 private:
  [[noreturn]] void type_mismatch(std::string_view key, const GgufValue& value,
                                  const std::string& expected) const;

  std::string label_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<uint64_t> dims;  // GGUF order: dims[0] is ne[0], the fastest-varying (a row)
  uint64_t offset = 0;         // from the start of the data section; a multiple of alignment
  uint64_t num_bytes = 0;      // from dims and type (ggml_tensor_bytes)

  uint64_t num_elements() const;
  // Row-major shape, as Hugging Face / safetensors / numpy write it: dims reversed. A GGUF
  // tensor with dims [4096, 11008] is a [11008, 4096] matrix (11008 rows of 4096).
  std::vector<uint64_t> shape() const;
  std::string dims_string() const;   // "[4096, 11008]"
  std::string shape_string() const;  // "[11008, 4096]"
};

struct GgufContents {
  uint32_t version = kGgufVersion;
  uint32_t alignment = kGgufDefaultAlignment;
  GgufMetadata metadata;
  std::vector<GgufTensorInfo> tensors;  // in file order
  uint64_t data_start = 0;              // file offset of the data section (aligned)

  const GgufTensorInfo* find_tensor(std::string_view name) const;  // linear; GgufFile indexes
};

// Parses and validates a GGUF file of `file_size` bytes whose first `available` bytes are at
// `bytes` (all of them for a mapped file; running out of them before the data section is an
// error). `label` names the file in errors. Tensor data is not read, only located.
GgufContents parse_gguf(const uint8_t* bytes, uint64_t available, uint64_t file_size,
                        const std::string& label);

// True when the first four bytes are "GGUF".
bool has_gguf_magic(const uint8_t* bytes, uint64_t available);
// True when the file at `path` is a regular file starting with "GGUF" (never throws).
bool is_gguf_file(const std::filesystem::path& path);

// A memory-mapped, validated GGUF file.
class GgufFile {
 public:
  explicit GgufFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_->path(); }
  uint64_t file_size() const { return file_->size(); }
  const GgufContents& contents() const { return contents_; }
  uint32_t version() const { return contents_.version; }
  uint32_t alignment() const { return contents_.alignment; }
  const GgufMetadata& metadata() const { return contents_.metadata; }
  const std::vector<GgufTensorInfo>& tensors() const { return contents_.tensors; }
  const GgufTensorInfo* find(std::string_view name) const;  // nullptr when absent
  // The tensor's num_bytes bytes, in the map.
  const uint8_t* data(const GgufTensorInfo& tensor) const {
    return file_->data() + contents_.data_start + tensor.offset;
  }
  const MappedFile& mapped() const { return *file_; }
  // Copies bytes [offset, offset + length) of the tensor's data into `out` (pread).
  void read(const GgufTensorInfo& tensor, uint64_t offset, uint64_t length, void* out) const {
    file_->read_at(contents_.data_start + tensor.offset + offset, length, out);
  }

 private:
  std::unique_ptr<MappedFile> file_;
  GgufContents contents_;
  std::unordered_map<std::string, size_t> by_name_;
};

}  // namespace expo
