#pragma once
// Helpers shared by the tests: temporary folders and small safetensors models built in memory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/fs.h"
#include "demo/random_model.h"
#include "io/safetensors_writer.h"

namespace expo::testing {

// A fresh folder under the system temp dir, removed when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "expo-test-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline TensorData tensor_from_doubles(const std::string& name, DType dtype,
                                      std::vector<uint64_t> shape,
                                      const std::vector<double>& values) {
  TensorData t{{name, dtype, std::move(shape)}, {}};
  t.bytes.resize(t.layout.num_bytes());
  if (!is_arithmetic_float(dtype)) {  // integers: each value as a little-endian integer
    const size_t size = dtype_size(dtype);
    for (size_t i = 0; i < values.size(); ++i) {
      const auto v = static_cast<int64_t>(values[i]);
      std::memcpy(t.bytes.data() + i * size, &v, size);
    }
    return t;
  }
  for (size_t i = 0; i < values.size(); ++i) store_from_double(t.bytes.data(), dtype, i, values[i]);
  return t;
}

inline TensorData random_tensor(const std::string& name, DType dtype, std::vector<uint64_t> shape,
                                uint64_t seed, double scale = 0.02) {
  uint64_t n = 1;
  for (auto d : shape) n *= d;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> values(n);
  for (auto& v : values) v = normal(rng);
  return tensor_from_doubles(name, dtype, std::move(shape), values);
}

inline void write_model(const std::filesystem::path& dir, const std::vector<TensorData>& tensors,
                        const std::string& config_json = "") {
  std::filesystem::create_directories(dir);
  write_safetensors_file((dir / "model.safetensors").string(), tensors, {{"format", "pt"}});
  if (!config_json.empty()) write_text_file(dir / "config.json", config_json);
}

inline RandomLlamaSpec tiny_llama(int layers, int hidden, int intermediate, int heads, int kv_heads,
                                  int vocab) {
  RandomLlamaSpec spec;
  spec.layers = layers;
  spec.hidden = hidden;
  spec.intermediate = intermediate;
  spec.heads = heads;
  spec.kv_heads = kv_heads;
  spec.vocab = vocab;
  return spec;
}

// Runs `fn` and returns the expo::Error message it throws (fails the test if none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an expo::Error";
  return "";
}

// Expects `part` in `text`; `text` is evaluated once (it is often a call that throws).
// A test whose input is missing (the npm packages of scripts/install-npm-deps.sh) skips, except
// in CI (CI=true), where every test must run: there the same message is a failure.
inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}
#define SKIP_UNLESS_CI(message)                                       \
  do {                                                                \
    if (::expo::testing::running_in_ci()) {                           \
      FAIL() << message << " (CI=true: a skipped test is a failure)"; \
    } else {                                                          \
      GTEST_SKIP() << message;                                        \
    }                                                                 \
  } while (0)

#define EXPECT_CONTAINS(text, part)                               \
  do {                                                            \
    const std::string text_once_ = (text);                        \
    EXPECT_NE(text_once_.find(part), std::string::npos)           \
        << "expected \"" << (part) << "\" in:\n  " << text_once_; \
  } while (0)

// Expects `statement` to throw an expo::Error whose message holds every one of the strings.
#define EXPECT_ERROR(statement, ...)                                                 \
  do {                                                                               \
    const std::string message_ = ::expo::testing::error_of([&] { statement; });      \
    for (const std::string& part_ : std::initializer_list<std::string>{__VA_ARGS__}) \
      EXPECT_NE(message_.find(part_), std::string::npos)                             \
          << "missing \"" << part_ << "\" in: " << message_;                         \
  } while (0)

}  // namespace expo::testing
