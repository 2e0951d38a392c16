// .npy files: numpy's exact bytes, round trips, and a reader that refuses malformed files with
// messages naming the file.
#include "io/npy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_util.h"

namespace expo {
namespace {

using testing::TempDir;

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// What numpy 1.24 writes before the data: magic, version 1.0, length 118 (0x76), the dict,
// numpy's spare room and padding, '\n'; 128 bytes in all. Copied from
//   np.save(f, np.zeros(shape, np.float32))
std::string numpy_header(const std::string& dict, size_t spaces) {
  return std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict + std::string(spaces, ' ') + "\n";
}

// A header in any version with the given dict text, padded to 64 bytes as numpy would.
std::string header_with(const std::string& dict, int major = 1) {
  const size_t prefix = major == 1 ? 10 : 12;
  std::string text = dict;
  while ((prefix + text.size() + 1) % 64 != 0) text += ' ';
  text += '\n';
  std::string out = std::string("\x93NUMPY", 6) + char(major) + '\0';
  const uint32_t length = static_cast<uint32_t>(text.size());
  for (size_t i = 0; i < prefix - 8; ++i) out += static_cast<char>((length >> (8 * i)) & 0xFF);
  return out + text;
}

const std::string kDict23 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

// Reading `bytes` fails with a message that names the file and contains `what`.
void expect_rejected(const TempDir& dir, const std::string& bytes, const std::string& what) {
  const auto path = dir / "bad.npy";
  write_bytes(path, bytes);
  try {
    read_npy_f32(path);
    ADD_FAILURE() << "accepted a file that should fail with: " << what;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

TEST(NpyHeader, MatchesNumpyByteForByte) {
  EXPECT_EQ(npy_header_f32({2, 3}), numpy_header(kDict23, 58));
  EXPECT_EQ(npy_header_f32({5}),
            numpy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 60));
  EXPECT_EQ(npy_header_f32({}),
            numpy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 62));
  for (const auto& shape : std::vector<std::vector<uint64_t>>{
           {}, {1}, {0, 4}, {1, 2, 3, 4}, {123456789012, 7}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}) {
    const std::string h = npy_header_f32(shape);
    EXPECT_EQ(h.size() % 64, 0u);
    EXPECT_EQ(h.back(), '\n');
    EXPECT_EQ(static_cast<size_t>(static_cast<uint8_t>(h[8]) | (static_cast<uint8_t>(h[9]) << 8)),
              h.size() - 10);
  }
}

TEST(NpyWrite, WritesNumpysFileAtomically) {
  TempDir dir;
  const std::vector<float> data = {0, 1, 2, 3, 4, 5};
  const auto path = dir / "x.npy";
  write_npy_f32(path, {2, 3}, data.data());
  // np.save(f, np.arange(6, dtype='<f4').reshape(2, 3))
  EXPECT_EQ(read_bytes(path), numpy_header(kDict23, 58) + bytes_of(data));
  // Replaces an existing file, leaves no temporary file behind.
  const std::vector<float> other = {9, 8, 7};
  write_npy_f32(path, {3}, other.data());
  EXPECT_EQ(read_npy_f32(path).data, other);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++files;
    EXPECT_EQ(e.path().filename(), "x.npy");
  }
  EXPECT_EQ(files, 1u);
}

TEST(NpyWrite, FailsNamingThePathAndLeavesNothing) {
  TempDir dir;
  const float x = 1;
  const auto path = dir / "missing-folder" / "x.npy";
  try {
    write_npy_f32(path, {1}, &x);
    ADD_FAILURE() << "wrote into a missing folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "missing-folder").string()), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(write_npy_f32(dir / "y.npy", {2, 2}, nullptr), Error);
  EXPECT_THROW(write_npy_f32(dir / "z.npy", {1ull << 40, 1ull << 40}, &x), Error);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(NpyRoundTrip, ShapesAndValues) {
  TempDir dir;
  const std::vector<std::vector<uint64_t>> shapes = {{}, {1}, {7}, {3, 5}, {0, 4}, {2, 3, 4}};
  for (const auto& shape : shapes) {
    uint64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> data(n);
    for (uint64_t i = 0; i < n; ++i) data[i] = static_cast<float>(i) * -0.37f + 1e-3f;
    const auto path = dir / "a.npy";
    write_npy_f32(path, shape, data.data());
    const NpyArray back = read_npy_f32(path);
    EXPECT_EQ(back.shape, shape);
    EXPECT_EQ(back.data, data);
  }
  // Special values survive bit for bit.
  const std::vector<float> odd = {INFINITY, -0.0f, 1e-45f, 3.4028235e38f};
  write_npy_f32(dir / "b.npy", {2, 2}, odd.data());
  const auto back = read_npy_f32(dir / "b.npy").data;
  EXPECT_EQ(std::memcmp(back.data(), odd.data(), sizeof(float) * 4), 0);
}

TEST(NpyRead, ReadsWhatNumpyWrites) {
  TempDir dir;
  // np.save(f, np.array([1.5, -2.25, 3.0], dtype='<f8')): float64, rounded to float32.
  const std::vector<double> f8 = {1.5, -2.25, 3.0};
  write_bytes(
      dir / "f8.npy",
      numpy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 60) + bytes_of(f8));
  NpyArray a = read_npy_f32(dir / "f8.npy");
  EXPECT_EQ(a.shape, (std::vector<uint64_t>{3}));
  EXPECT_EQ(a.data, (std::vector<float>{1.5f, -2.25f, 3.0f}));
  // np.lib.format.write_array(f, np.array([1.5, -2.25, 3], '<f4'), version=(2, 0))
  const std::vector<float> f4 = {1.5f, -2.25f, 3.0f};
  write_bytes(dir / "v2.npy", std::string("\x93NUMPY\x02\x00\x74\x00\x00\x00", 12) +
                                  "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }" +
                                  std::string(58, ' ') + "\n" + bytes_of(f4));
  EXPECT_EQ(read_npy_f32(dir / "v2.npy").data, f4);
  // Older numpy (no spare room, 16-byte alignment), double quotes, other key order, no
  // trailing comma: all valid Python literals a .npy reader meets.
  std::string old = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  while ((10 + old.size() + 1) % 16) old += ' ';
  write_bytes(dir / "old.npy", std::string("\x93NUMPY\x01\x00", 8) + char(old.size() + 1) + '\0' +
                                   old + "\n" + bytes_of(f4));
  EXPECT_EQ(read_npy_f32(dir / "old.npy").data, f4);
  write_bytes(
      dir / "odd.npy",
      header_with("{\"shape\":(3 ,),\"fortran_order\":False,\"descr\":\"<f4\"}") + bytes_of(f4));
  EXPECT_EQ(read_npy_f32(dir / "odd.npy").data, f4);
}

TEST(NpyRead, RejectsMalformedFilesNamingThem) {
  TempDir dir;
  const std::vector<float> six = {0, 1, 2, 3, 4, 5};
  const std::string good = header_with(kDict23) + bytes_of(six);
  {
    const auto path = dir / "good.npy";
    write_bytes(path, good);
    EXPECT_EQ(read_npy_f32(path).data, six);
  }
  // Truncated: empty, inside the prefix, inside the header, inside the data.
  expect_rejected(dir, "", "truncated");
  expect_rejected(dir, good.substr(0, 9), "truncated");
  expect_rejected(dir, good.substr(0, 40), "truncated");
  expect_rejected(dir, good.substr(0, good.size() - 1), "truncated");
  expect_rejected(dir, good.substr(0, 128), "truncated");
  // Magic and version.
  expect_rejected(dir, "\x92" + good.substr(1), "bad magic");
  expect_rejected(dir, "PK\x03\x04" + good.substr(4), "bad magic");
  std::string v4 = good;
  v4[6] = 4;
  expect_rejected(dir, v4, "unsupported .npy format version 4.0");
  // Header length beyond the file.
  std::string long_header = good;
  long_header[8] = '\xff';
  long_header[9] = '\x7f';
  expect_rejected(dir, long_header, "header says it is 32767 bytes");
  // Layout and dtype.
  expect_rejected(
      dir,
      header_with("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }") + bytes_of(six),
      "fortran_order is True");
  expect_rejected(
      dir,
      header_with("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }") + bytes_of(six),
      "dtype '<i4' is not supported");
  expect_rejected(
      dir,
      header_with("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }") + bytes_of(six),
      "dtype '>f4'");
  // Shape against data.
  expect_rejected(dir, good + "xxxx", "4 bytes too many");
  expect_rejected(
      dir,
      header_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }") + bytes_of(six),
      "needs 32 bytes of data but only 24");
  expect_rejected(
      dir,
      header_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }") + bytes_of(six),
      "needs 48 bytes");
  expect_rejected(dir,
                  header_with("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, "
                              "4294967296), }") +
                      bytes_of(six),
                  "more elements than fit 64 bits");
  expect_rejected(dir,
                  header_with("{'descr': '<f4', 'fortran_order': False, 'shape': "
                              "(99999999999999999999999,), }"),
                  "does not fit 64 bits");
  // The dict, strictly.
  const std::vector<std::pair<std::string, std::string>> bad_dicts = {
      {"{'descr': '<f4', 'shape': (2, 3), }", "'fortran_order' is missing"},
      {"{'descr': '<f4', 'fortran_order': False, }", "'shape' is missing"},
      {"{'fortran_order': False, 'shape': (2, 3), }", "'descr' is missing"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
       "appears twice"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1, }", "unknown key 'x'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", "trailing comma"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", "non-negative integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3.0), }", "expected ','"},
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (2, 3), }", "True or False"},
      {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2, 3), }", "True or False"},
      {"{'descr': <f4, 'fortran_order': False, 'shape': (2, 3), }", "quoted string"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } x", "other than spaces"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", "expected a quoted string"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3) ", "expected '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (02, 3), }", "leading zero"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3), }", "expected '}'"},
      {"{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3), }", "expected ':'"},
      {"['descr', '<f4']", "expected '{'"},
  };
  for (const auto& [dict, what] : bad_dicts)
    expect_rejected(dir, header_with(dict) + bytes_of(six), what);
  // Not a regular file / missing.
  EXPECT_THROW(read_npy_f32(dir / "nope.npy"), Error);
  EXPECT_THROW(read_npy_f32(dir.path()), Error);
}

}  // namespace
}  // namespace expo
