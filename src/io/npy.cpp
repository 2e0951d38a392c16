#include "io/npy.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "io/mapped_file.h"

namespace expo {

static_assert(std::endian::native == std::endian::little, ".npy '<f4' data is read as is");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr size_t kAlign = 64;             // numpy's ARRAY_ALIGN
constexpr size_t kGrowthDigits = 21;      // numpy's GROWTH_AXIS_MAX_DIGITS (numpy >= 1.23)
constexpr uint64_t kMaxHeader = 1 << 20;  // numpy itself refuses headers over 10000 bytes

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// product(shape) * item_size, or nullopt on overflow.
std::optional<uint64_t> byte_count(const std::vector<uint64_t>& shape, uint64_t item_size) {
  uint64_t n = item_size;
  for (uint64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  return n;
}

// A strict reader of the header dict: Python literal syntax, but only what a .npy header can
// hold (strings, True/False, tuples of non-negative integers).
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& file) : s_(text), file_(file) {}

  struct Result {
    std::string descr;
    bool fortran_order = false;
    std::vector<uint64_t> shape;
  };

  Result parse() {
    Result r;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (!eat('}')) {
      const size_t key_at = pos_;
      const std::string key = string_literal();
      expect(':');
      auto once = [&](bool& have) {
        if (have) error(str("the key '", key, "' appears twice"), key_at);
        have = true;
      };
      if (key == "descr") {
        once(have_descr);
        r.descr = string_literal();
      } else if (key == "fortran_order") {
        once(have_order);
        r.fortran_order = boolean();
      } else if (key == "shape") {
        once(have_shape);
        r.shape = tuple();
      } else {
        error(str("unknown key '", key, "'"), key_at);
      }
      if (!eat(',')) {
        expect('}');
        break;
      }
    }
    skip_space();
    if (pos_ != s_.size()) error("something other than spaces follows the dict", pos_);
    if (!have_descr) error("the key 'descr' is missing", pos_);
    if (!have_order) error("the key 'fortran_order' is missing", pos_);
    if (!have_shape) error("the key 'shape' is missing", pos_);
    return r;
  }

 private:
  [[noreturn]] void error(const std::string& what, size_t at) const {
    std::string excerpt;
    for (char c : s_.substr(0, 160)) {
      if (c >= 0x20 && c < 0x7f) {
        excerpt += c;
      } else {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned>(static_cast<uint8_t>(c)));
        excerpt += hex;
      }
    }
    if (s_.size() > 160) excerpt += "...";
    fail(file_, ": malformed .npy header: ", what, " (at character ", at, " of \"", excerpt, "\")");
  }
  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) error(str("expected '", c, "'"), pos_);
  }
  std::string string_literal() {
    skip_space();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"'))
      error("expected a quoted string", pos_);
    const char quote = s_[pos_];
    const size_t begin = ++pos_;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' || s_[pos_] == '\n') error("unsupported character in a string", pos_);
      ++pos_;
    }
    if (pos_ >= s_.size()) error("unterminated string", begin - 1);
    return s_.substr(begin, pos_++ - begin);
  }
  bool word(const char* w) {
    const size_t n = std::strlen(w);
    if (s_.compare(pos_, n, w) != 0) return false;
    const size_t end = pos_ + n;
    if (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '_'))
      return false;
    pos_ = end;
    return true;
  }
  bool boolean() {
    skip_space();
    if (word("True")) return true;
    if (word("False")) return false;
    error("expected True or False", pos_);
  }
  uint64_t integer() {
    skip_space();
    const size_t begin = pos_;
    uint64_t v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      if (__builtin_mul_overflow(v, 10, &v) ||
          __builtin_add_overflow(v, static_cast<uint64_t>(s_[pos_] - '0'), &v))
        error("a dimension does not fit 64 bits", begin);
      ++pos_;
    }
    if (pos_ == begin) error("expected a non-negative integer dimension", begin);
    if (pos_ - begin > 1 && s_[begin] == '0') error("a dimension has a leading zero", begin);
    return v;
  }
  std::vector<uint64_t> tuple() {
    std::vector<uint64_t> dims;
    expect('(');
    if (eat(')')) return dims;
    for (;;) {
      dims.push_back(integer());
      if (eat(')')) {
        // Python reads "(5)" as the integer 5, not a tuple.
        if (dims.size() == 1) error("a 1-d shape needs a trailing comma, as in (5,)", pos_ - 1);
        return dims;
      }
      expect(',');
      if (eat(')')) return dims;
    }
  }

  const std::string& s_;
  const std::string& file_;
  size_t pos_ = 0;
};

uint64_t load_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

std::string npy_header_f32(const std::vector<uint64_t>& shape) {
  // numpy's _write_array_header and _wrap_header.
  std::string dict =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  if (!shape.empty()) dict.append(kGrowthDigits - std::to_string(shape[0]).size(), ' ');
  const size_t text = dict.size() + 1;  // with the final '\n'
  size_t prefix = kMagicSize + 2 + 2;
  size_t pad = kAlign - (prefix + text) % kAlign;
  int major = 1;
  if (text + pad > 0xFFFF) {  // only with thousands of dimensions: version 2.0's 4-byte length
    major = 2;
    prefix = kMagicSize + 2 + 4;
    pad = kAlign - (prefix + text) % kAlign;
  }
  const uint64_t length = text + pad;
  std::string out(kMagic, kMagicSize);
  out += static_cast<char>(major);
  out += '\0';
  for (size_t i = 0; i < prefix - kMagicSize - 2; ++i)
    out += static_cast<char>((length >> (8 * i)) & 0xFF);
  out += dict;
  out.append(pad, ' ');
  out += '\n';
  return out;
}

void write_npy_f32(const std::filesystem::path& path, const std::vector<uint64_t>& shape,
                   const float* data) {
  const auto bytes = byte_count(shape, sizeof(float));
  if (!bytes) fail(path.string(), ": the shape ", shape_text(shape), " has too many elements");
  if (*bytes > 0 && data == nullptr)
    fail(path.string(), ": no data given for shape ", shape_text(shape));
  const std::string header = npy_header_f32(shape);

  // A temporary name in the same folder (same file system: the rename is atomic). OutputFile
  // creates with O_EXCL, so a name that is somehow taken fails instead of clobbering.
  std::random_device entropy;
  const uint64_t tag = (static_cast<uint64_t>(entropy()) << 32) ^ entropy();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(tag));
  const std::filesystem::path tmp =
      path.parent_path() / ("." + path.filename().string() + ".expo-tmp-" + hex);
  try {
    OutputFile out(tmp);
    out.write(header.data(), header.size());
    if (*bytes > 0) out.write(data, *bytes);
    out.close();
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) fail(path.string(), ": cannot move the finished file into place: ", ec.message());
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

NpyArray read_npy_f32(const std::filesystem::path& path) {
  const std::string name = path.string();
  const MappedFile file(path);
  const uint64_t size = file.size();
  const uint8_t* p = file.data();

  if (size < kMagicSize + 4)
    fail(name, ": not a .npy file: truncated (", size, " bytes, shorter than any header)");
  if (std::memcmp(p, kMagic, kMagicSize) != 0)
    fail(name, ": not a .npy file: bad magic (the file does not start with \\x93NUMPY)");
  const int major = p[6], minor = p[7];
  size_t length_bytes = 0;
  if (major == 1 && minor == 0) {
    length_bytes = 2;
  } else if ((major == 2 || major == 3) && minor == 0) {
    length_bytes = 4;
  } else {
    fail(name, ": unsupported .npy format version ", major, ".", minor,
         " (supported: 1.0, 2.0, 3.0)");
  }
  const uint64_t prefix = kMagicSize + 2 + length_bytes;
  if (size < prefix) fail(name, ": truncated inside the .npy header's length field");
  const uint64_t header_length = load_le(p + kMagicSize + 2, length_bytes);
  if (header_length > size - prefix)
    fail(name, ": truncated: the .npy header says it is ", header_length, " bytes but only ",
         size - prefix, " follow");
  if (header_length > kMaxHeader)
    fail(name, ": the .npy header is ", header_length, " bytes; refusing more than ", kMaxHeader);

  const std::string text(reinterpret_cast<const char*>(p + prefix), header_length);
  const auto header = HeaderParser(text, name).parse();

  uint64_t item_size = 0;
  if (header.descr == "<f4") {
    item_size = 4;
  } else if (header.descr == "<f8") {
    item_size = 8;
  } else {
    fail(name, ": dtype '", header.descr,
         "' is not supported; expected '<f4' (little-endian float32) or '<f8'");
  }
  if (header.fortran_order)
    fail(name,
         ": fortran_order is True; only C-order arrays are supported "
         "(save np.ascontiguousarray(x))");
  const auto bytes = byte_count(header.shape, item_size);
  if (!bytes)
    fail(name, ": the shape ", shape_text(header.shape), " has more elements than fit 64 bits");
  const uint64_t data_offset = prefix + header_length;
  const uint64_t present = size - data_offset;
  if (present < *bytes)
    fail(name, ": truncated: shape ", shape_text(header.shape), " of '", header.descr, "' needs ",
         *bytes, " bytes of data but only ", present, " follow the header");
  if (present > *bytes)
    fail(name, ": shape ", shape_text(header.shape), " of '", header.descr, "' needs ", *bytes,
         " bytes of data but ", present, " follow the header (", present - *bytes,
         " bytes too many)");

  NpyArray out;
  out.shape = header.shape;
  const uint64_t count = *bytes / item_size;
  out.data.resize(count);
  if (item_size == 4) {
    if (count > 0) file.read_at(data_offset, *bytes, out.data.data());
  } else {
    // float64 -> float32, one bounded chunk at a time.
    std::vector<double> chunk(std::min<uint64_t>(count, 1 << 16));
    for (uint64_t done = 0; done < count;) {
      const uint64_t n = std::min<uint64_t>(chunk.size(), count - done);
      file.read_at(data_offset + done * 8, n * 8, chunk.data());
      for (uint64_t i = 0; i < n; ++i) out.data[done + i] = static_cast<float>(chunk[i]);
      done += n;
    }
  }
  return out;
}

}  // namespace expo
