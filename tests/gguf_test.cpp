// GGUF: the writer and the reader round-trip every metadata type and the tensor types expo
// encodes; Q8_0 against hand-computed blocks and its reference; every malformed file is refused
// with a message that names the file and the key or tensor; a plain-Python reader
// (tests/python/gguf_reference.py) reads what the writer writes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/fs.h"
#include "io/ggml_type.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/q8_0.h"
#include "test_util.h"

namespace expo {
namespace {

using testing::error_of;

// ---- helpers --------------------------------------------------------------------------------

// Little-endian bytes of a hand-made file.
struct Bytes {
  std::string s;
  Bytes& raw(std::string_view b) {
    s.append(b);
    return *this;
  }
  template <typename T>
  Bytes& put(T v) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    s.append(buf, sizeof(T));
    return *this;
  }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& str(std::string_view v) {
    u64(v.size());
    return raw(v);
  }
  Bytes& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    raw("GGUF");
    u32(version);
    u64(tensors);
    return u64(kvs);
  }
  Bytes& kv_u32(std::string_view key, uint32_t v) {
    str(key);
    u32(4);
    return u32(v);
  }
  Bytes& tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name);
    u32(static_cast<uint32_t>(dims.size()));
    for (auto d : dims) u64(d);
    u32(type);
    return u64(offset);
  }
  Bytes& pad(size_t alignment = 32) {
    s.append((alignment - s.size() % alignment) % alignment, '\0');
    return *this;
  }
  Bytes& zeros(size_t n) {
    s.append(n, '\0');
    return *this;
  }
};

GgufContents parse(const std::string& bytes, const std::string& label = "bad.gguf") {
  return parse_gguf(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), bytes.size(),
                    label);
}

std::string parse_error(const std::string& bytes) {
  return error_of([&] { parse(bytes); });
}

#define EXPECT_REFUSED(bytes, ...) EXPECT_ERROR(parse(bytes), "bad.gguf: ", __VA_ARGS__)

std::vector<uint8_t> encode(GgmlType type, const std::vector<double>& values) {
  const auto bytes = ggml_tensor_bytes(type, {values.size()});
  std::vector<uint8_t> out(*bytes);
  encode_from_double(type, values.data(), values.size(), out.data(), "test");
  return out;
}

std::vector<double> random_values(size_t n, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

struct Written {
  std::vector<std::vector<uint8_t>> data;  // per tensor, in declaration order
};

// Writes `w` to `path` with the given tensor bytes.
void write_file(GgufWriter& w, const std::filesystem::path& path,
                const std::vector<std::vector<uint8_t>>& data) {
  OutputFile out(path);
  w.start(out);
  for (size_t i = 0; i < data.size(); ++i)
    w.write_tensor(w.tensors()[i].name, data[i].data(), data[i].size());
  w.finish();
  out.close();
}

// The header a writer produces plus zeroed tensor data: a valid file to mutate.
std::string file_bytes(GgufWriter& w) {
  std::string s = w.header_bytes();
  s.resize(w.file_size(), '\0');
  return s;
}

// ---- types ----------------------------------------------------------------------------------

TEST(GgmlTypes, BlockSizesAndNames) {
  EXPECT_EQ(ggml_type_traits(GgmlType::Q8_0).block_size, 32u);
  EXPECT_EQ(ggml_type_traits(GgmlType::Q8_0).type_size, 34u);
  EXPECT_EQ(ggml_type_traits(GgmlType::Q4_K).block_size, 256u);
  EXPECT_EQ(ggml_type_traits(GgmlType::Q4_K).type_size, 144u);
  EXPECT_EQ(ggml_type_traits(GgmlType::Q6_K).type_size, 210u);
  EXPECT_EQ(ggml_type_traits(GgmlType::IQ4_XS).type_size, 136u);
  EXPECT_EQ(ggml_type_traits(GgmlType::BF16).type_size, 2u);
  EXPECT_EQ(ggml_type_name(GgmlType::IQ2_XXS), "IQ2_XXS");
  EXPECT_EQ(parse_ggml_type("q4_k"), GgmlType::Q4_K);
  EXPECT_EQ(parse_ggml_type("Q4_2"), std::nullopt);
  EXPECT_EQ(find_ggml_type(31), nullptr);
  EXPECT_STREQ(removed_ggml_type_name(31), "Q4_0_4_4");
  EXPECT_EQ(all_ggml_types().size(), 35u);
  EXPECT_EQ(ggml_tensor_bytes(GgmlType::Q8_0, {64, 3}), 6u * 34);
  EXPECT_EQ(ggml_tensor_bytes(GgmlType::Q8_0, {33}), std::nullopt);
  EXPECT_EQ(ggml_tensor_bytes(GgmlType::F32, {uint64_t{1} << 62, 4}), std::nullopt);
}

// ---- Q8_0 -----------------------------------------------------------------------------------

TEST(Q8_0, HandComputedBlock) {
  // x_i = i / 2: amax 15.5, d = 15.5 / 127 = 0.1220472..., whose nearest F16 is
  // 2000 / 1024 * 2^-4 = 0.1220703125 (bits 0x2FD0); q_i = nearest(i / 2 / dh) = nearest(4.096 i).
  std::vector<double> x(32);
  for (int i = 0; i < 32; ++i) x[i] = i / 2.0;
  const auto block = encode(GgmlType::Q8_0, x);
  ASSERT_EQ(block.size(), 34u);
  EXPECT_EQ(block[0] | (block[1] << 8), 0x2FD0);
  const int expected[] = {0,  4,  8,  12, 16, 20, 25, 29, 33, 37,  41,  45,  49,  53,  57,  61,
                          66, 70, 74, 78, 82, 86, 90, 94, 98, 102, 106, 111, 115, 119, 123, 127};
  for (int i = 0; i < 32; ++i) EXPECT_EQ(static_cast<int8_t>(block[2 + i]), expected[i]) << i;
  std::vector<double> back(32);
  decode_to_double(GgmlType::Q8_0, block.data(), 32, back.data());
  EXPECT_EQ(back[10], 41 * 0.1220703125);
}

TEST(Q8_0, TiesAwayFromZeroAndTheExtremes) {
  // amax 127 makes dh exactly 1, so x is its own quotient.
  std::vector<double> x(32, 0.0);
  x[0] = 127;
  x[1] = 2.5;
  x[2] = -2.5;
  x[3] = 0.5;
  x[4] = -0.5;
  x[5] = 126.5;
  x[6] = std::nextafter(1.5, 0.0);
  x[7] = -std::nextafter(1.5, 0.0);
  x[8] = 1.5;
  x[9] = -127;
  const auto block = encode(GgmlType::Q8_0, x);
  EXPECT_EQ(block[0] | (block[1] << 8), 0x3C00);  // 1.0
  const int expected[] = {127, 3, -3, 1, -1, 127, 1, -1, 2, -127};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(static_cast<int8_t>(block[2 + i]), expected[i]) << i;
  for (int i = 10; i < 32; ++i) EXPECT_EQ(block[2 + i], 0);
}

TEST(Q8_0, ZeroBlocksAndTinyScales) {
  std::vector<double> x(64, 0.0);
  x[32] = 1e-30;  // the scale underflows F16 to zero: every q is 0
  const auto blocks = encode(GgmlType::Q8_0, x);
  for (auto b : blocks) EXPECT_EQ(b, 0);
}

TEST(Q8_0, RandomBlocksWithinHalfAStepAndMatchTheReference) {
  const double scales[] = {1e-3, 0.02, 1.0, 300.0, 60000.0};
  uint64_t seed = 1;
  for (double scale : scales) {
    auto x = random_values(32 * 257, seed++, scale);
    for (size_t b = 0; b < x.size() / 32; b += 7) x[b * 32 + (b % 32)] *= 4;  // outliers
    std::vector<uint8_t> fast(257 * 34), reference(257 * 34);
    quantize_q8_0(x.data(), x.size(), fast.data(), "t");
    quantize_q8_0_reference(x.data(), x.size(), reference.data(), "t");
    ASSERT_EQ(fast, reference) << "scale " << scale;
    std::vector<double> back(x.size());
    std::vector<float> back32(x.size());
    dequantize_q8_0(fast.data(), x.size(), back.data());
    dequantize_q8_0(fast.data(), x.size(), back32.data());
    for (size_t b = 0; b < x.size() / 32; ++b) {
      const double dh =
          f16_to_double(static_cast<uint16_t>(fast[b * 34] | (fast[b * 34 + 1] << 8)));
      double amax = 0;
      size_t at = 0;
      for (size_t i = 0; i < 32; ++i)
        if (std::fabs(x[b * 32 + i]) > amax) amax = std::fabs(x[b * 32 + i]), at = i;
      EXPECT_EQ(dh, f16_to_double(static_cast<uint16_t>(round_to_f16(amax / 127).bits)));
      EXPECT_EQ(std::abs(static_cast<int8_t>(fast[b * 34 + 2 + at])), 127);
      for (size_t i = 0; i < 32; ++i) {
        const size_t k = b * 32 + i;
        ASSERT_LE(std::fabs(back[k] - x[k]), dh / 2) << "block " << b << " element " << i;
        EXPECT_EQ(static_cast<double>(back32[k]), back[k]);
      }
    }
  }
}

TEST(Q8_0, MidpointsExactlyRoundAway) {
  // x = (k + 1/2) * dh for every k, both signs: always away from zero, in both kernels.
  std::vector<double> x(32 * 8);
  const double dh = f16_to_double(0x2FD0);
  for (size_t b = 0; b < 8; ++b) {
    x[b * 32] = 127 * dh;  // fixes the block's scale at dh
    for (size_t i = 1; i < 32; ++i) {
      const double k = static_cast<double>((b * 31 + i) % 127);
      x[b * 32 + i] = (i % 2 ? 1 : -1) * (k + 0.5) * dh;
    }
  }
  std::vector<uint8_t> fast(8 * 34), reference(8 * 34);
  quantize_q8_0(x.data(), x.size(), fast.data(), "t");
  quantize_q8_0_reference(x.data(), x.size(), reference.data(), "t");
  EXPECT_EQ(fast, reference);
  for (size_t b = 0; b < 8; ++b) {
    EXPECT_EQ(fast[b * 34] | (fast[b * 34 + 1] << 8), 0x2FD0);
    for (size_t i = 1; i < 32; ++i) {
      const int k = static_cast<int>((b * 31 + i) % 127);
      EXPECT_EQ(static_cast<int8_t>(fast[b * 34 + 2 + i]), (i % 2 ? 1 : -1) * (k + 1));
    }
  }
}

TEST(Q8_0, RefusesOverflowAndNonFiniteNamingTheElement) {
  std::vector<double> x(64, 1.0);
  x[40] = 9e6;  // 9e6 / 127 > 65504
  std::vector<uint8_t> out(68);
  EXPECT_ERROR(quantize_q8_0(x.data(), 64, out.data(), "tensor 'w'", 1000), "tensor 'w'",
               "element 1040", "overflows F16");
  EXPECT_ERROR(quantize_q8_0_reference(x.data(), 64, out.data(), "tensor 'w'"), "element 40");
  x[40] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_ERROR(quantize_q8_0(x.data(), 64, out.data(), "tensor 'w'"), "element 40", "finite");
  EXPECT_ERROR(quantize_q8_0(x.data(), 40, out.data(), "tensor 'w'"), "whole number");
  std::vector<double> big = {1e39};
  std::vector<uint8_t> f32(4);
  EXPECT_ERROR(encode_from_double(GgmlType::F32, big.data(), 1, f32.data(), "tensor 'v'", 7),
               "tensor 'v'", "element 7", "overflows F32");
}

// ---- writer -> reader -----------------------------------------------------------------------

GgufWriter every_type_writer() {
  GgufWriter w;
  w.add_metadata("general.architecture", "llama");
  w.add_metadata("t.u8", uint8_t{200});
  w.add_metadata("t.i8", int8_t{-100});
  w.add_metadata("t.u16", uint16_t{60000});
  w.add_metadata("t.i16", int16_t{-30000});
  w.add_metadata("t.u32", uint32_t{4000000000u});
  w.add_metadata("t.i32", int32_t{-2000000000});
  w.add_metadata("t.f32", 0.1f);
  w.add_metadata("t.bool", true);
  w.add_metadata("t.string", std::string("h\xC3\xA9llo\n\"q\""));
  w.add_metadata("t.u64", uint64_t{1} << 60);
  w.add_metadata("t.i64", int64_t{-(int64_t{1} << 60)});
  w.add_metadata("t.f64", 0.1);
  w.add_metadata("t.bytes", std::string("\xff\xfe", 2));  // strings are bytes
  w.add_metadata("a.u8", std::vector<uint8_t>{1, 2, 255});
  w.add_metadata("a.i8", std::vector<int8_t>{-1, 2});
  w.add_metadata("a.u16", std::vector<uint16_t>{7});
  w.add_metadata("a.i16", std::vector<int16_t>{-7, 8});
  w.add_metadata("a.u32", std::vector<uint32_t>{1, 2, 3});
  w.add_metadata("a.i32", std::vector<int32_t>{-1, 0, 1});
  w.add_metadata("a.f32", std::vector<float>{0.5f, -1.25f});
  w.add_metadata("a.bool", std::vector<bool>{true, false, true});
  w.add_metadata("a.string", std::vector<std::string>{"a", "", "\xE2\x82\xAC"});
  w.add_metadata("a.u64", std::vector<uint64_t>{uint64_t{1} << 63});
  w.add_metadata("a.i64", std::vector<int64_t>{-5});
  w.add_metadata("a.f64", std::vector<double>{1e300, -0.0});
  w.add_metadata("a.empty", std::vector<std::string>{});
  return w;
}

TEST(Gguf, WriterReaderRoundTripOfEveryTypeAndTensor) {
  testing::TempDir dir;
  GgufWriter w = every_type_writer();
  const auto v_f32 = random_values(5 * 3, 1), v_f16 = random_values(7, 2),
             v_bf16 = random_values(2 * 3 * 5, 3), v_q8 = random_values(3 * 64, 4),
             v_f64 = random_values(1, 5);
  w.add_tensor("w.f32", GgmlType::F32, {5, 3});
  w.add_tensor("w.f16", GgmlType::F16, {7});
  w.add_tensor("w.bf16", GgmlType::BF16, {2, 3, 5});
  w.add_tensor("w.q8_0", GgmlType::Q8_0, {3, 64});
  w.add_tensor("w.f64", GgmlType::F64, {1, 1, 1, 1});
  const std::vector<std::vector<uint8_t>> data = {
      encode(GgmlType::F32, v_f32), encode(GgmlType::F16, v_f16), encode(GgmlType::BF16, v_bf16),
      encode(GgmlType::Q8_0, v_q8), encode(GgmlType::F64, v_f64)};
  write_file(w, dir / "m.gguf", data);
  EXPECT_EQ(std::filesystem::file_size(dir / "m.gguf"), w.file_size());

  GgufFile file(dir / "m.gguf");
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.contents().data_start % 32, 0u);
  // Every key, in order, with its type; general.alignment appended last.
  const auto& expected = w.metadata().entries();
  const auto& got = file.metadata().entries();
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].key, expected[i].key);
    EXPECT_TRUE(got[i].value == expected[i].value) << got[i].key;
  }
  EXPECT_EQ(got.back().key, "general.alignment");
  const auto& md = file.metadata();
  EXPECT_EQ(md.get_u32("t.u32"), 4000000000u);
  EXPECT_EQ(md.get_string("general.architecture"), "llama");
  EXPECT_EQ(md.get_string_array("a.string")[2], "\xE2\x82\xAC");
  EXPECT_EQ(md.get_f32_array("a.f32")[1], -1.25f);
  EXPECT_EQ(md.get_i32_array("a.i32")[0], -1);
  EXPECT_EQ(md.get_as<std::vector<bool>>("a.bool"), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(md.get_f64("t.f64"), 0.1);
  EXPECT_EQ(md.get_count("t.u8"), 200u);
  EXPECT_EQ(md.get_count("t.u64"), uint64_t{1} << 60);
  EXPECT_EQ(md.find_u32("nope"), std::nullopt);
  EXPECT_EQ(md.find_string("general.architecture"), "llama");
  EXPECT_EQ(md.get("a.string").type_name(), "array[string]");
  EXPECT_EQ(md.get("a.string").to_display(), "[3 strings: \"a\", \"\", \"\xE2\x82\xAC\"]");
  EXPECT_EQ(md.get("t.bytes").to_display(), "\"\\xff\\xfe\"");

  ASSERT_EQ(file.tensors().size(), 5u);
  const std::vector<std::vector<double>> values = {v_f32, v_f16, v_bf16, v_q8, v_f64};
  for (size_t i = 0; i < 5; ++i) {
    const GgufTensorInfo& t = file.tensors()[i];
    EXPECT_EQ(t.offset % 32, 0u);
    ASSERT_EQ(t.num_bytes, data[i].size());
    EXPECT_EQ(std::memcmp(file.data(t), data[i].data(), t.num_bytes), 0) << t.name;
    std::vector<double> back(t.num_elements());
    decode_to_double(t.type, file.data(t), back.size(), back.data());
    for (size_t k = 0; k < back.size(); ++k)
      EXPECT_NEAR(back[k], values[i][k], 0.02 * std::fabs(values[i][k]) + 0.03) << t.name;
  }
  const GgufTensorInfo* bf = file.find("w.bf16");
  ASSERT_NE(bf, nullptr);
  EXPECT_EQ(bf->dims, (std::vector<uint64_t>{5, 3, 2}));
  EXPECT_EQ(bf->shape(), (std::vector<uint64_t>{2, 3, 5}));
  EXPECT_EQ(bf->dims_string(), "[5, 3, 2]");
  EXPECT_EQ(bf->type, GgmlType::BF16);
  EXPECT_EQ(file.find("w.q8_0")->num_bytes, 6u * 34);
  EXPECT_EQ(file.find("missing"), nullptr);
}

TEST(Gguf, AlignmentSetByTheCaller) {
  testing::TempDir dir;
  GgufWriter w;
  w.add_metadata("general.alignment", uint32_t{64});
  w.add_metadata("general.architecture", "llama");
  w.add_tensor("a", GgmlType::F32, {3});
  w.add_tensor("b", GgmlType::F16, {5});
  write_file(w, dir / "a.gguf",
             {encode(GgmlType::F32, {1, 2, 3}), encode(GgmlType::F16, {1, 2, 3, 4, 5})});
  GgufFile file(dir / "a.gguf");
  EXPECT_EQ(file.alignment(), 64u);
  EXPECT_EQ(file.metadata().entries().front().key, "general.alignment");
  EXPECT_EQ(file.contents().data_start % 64, 0u);
  EXPECT_EQ(file.find("b")->offset, 64u);
  EXPECT_EQ(std::filesystem::file_size(dir / "a.gguf"), file.contents().data_start + 128);
}

TEST(Gguf, NoTensors) {
  GgufWriter w;
  w.add_metadata("tokenizer.ggml.model", "gpt2");
  const auto c = parse(file_bytes(w), "vocab.gguf");
  EXPECT_TRUE(c.tensors.empty());
  EXPECT_EQ(c.metadata.get_string("tokenizer.ggml.model"), "gpt2");
}

TEST(Gguf, ReadsAllGgmlTypesIncludingKQuants) {
  GgufWriter w;
  for (const auto& t : all_ggml_types())
    w.add_tensor("t." + std::string(t.name), t.type, {2, t.block_size * 2});
  const auto c = parse(file_bytes(w), "all.gguf");
  ASSERT_EQ(c.tensors.size(), all_ggml_types().size());
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    EXPECT_EQ(c.tensors[i].type, all_ggml_types()[i].type);
    EXPECT_EQ(c.tensors[i].num_bytes, 4u * all_ggml_types()[i].type_size);
  }
}

TEST(Gguf, MetadataGetterErrorsNameFileKeyAndTypes) {
  GgufWriter w = every_type_writer();
  const auto c = parse(file_bytes(w), "m.gguf");
  EXPECT_ERROR(c.metadata.get_u32("t.u64"),
               "m.gguf: metadata key t.u64 is uint64, expected uint32");
  EXPECT_ERROR(c.metadata.get_string_array("a.f32"),
               "m.gguf: metadata key a.f32 is array[float32], expected array[string]");
  EXPECT_ERROR(c.metadata.get_string("nope"), "m.gguf: metadata key nope is missing");
  EXPECT_ERROR(c.metadata.find_u32("t.string"), "metadata key t.string is string, expected uint32");
  EXPECT_ERROR(c.metadata.get_count("t.i8"), "m.gguf: metadata key t.i8", "expected a count");
  EXPECT_ERROR(c.metadata.get_count("t.f32"), "metadata key t.f32 is float32");
}

TEST(Gguf, WriterRefusals) {
  GgufWriter w;
  EXPECT_ERROR(w.add_metadata("", uint8_t{1}), "metadata key is empty");
  EXPECT_ERROR(w.add_metadata(std::string("\xff"), uint8_t{1}), "not valid UTF-8");
  EXPECT_ERROR(w.add_metadata("general.alignment", uint32_t{48}), "general.alignment",
               "not a power of two");
  EXPECT_ERROR(w.add_metadata("general.alignment", uint64_t{64}), "is uint64, expected uint32");
  w.add_metadata("k", uint8_t{1});
  EXPECT_ERROR(w.add_metadata("k", uint8_t{1}), "metadata key k is added twice");
  EXPECT_ERROR(w.add_tensor("q", GgmlType::Q8_0, {4, 33}), "tensor q", "rows of 33",
               "Q8_0 blocks of 32");
  EXPECT_ERROR(w.add_tensor("z", GgmlType::F32, {4, 0}), "tensor z", "zero dimension");
  EXPECT_ERROR(w.add_tensor("five", GgmlType::F32, {1, 1, 1, 1, 1}), "tensor five", "5 dimensions");
  EXPECT_ERROR(w.add_tensor("none", GgmlType::F32, {}), "tensor none", "0 dimensions");
  EXPECT_ERROR(w.add_tensor(std::string(64, 'n'), GgmlType::F32, {1}), "64 bytes");
  w.add_tensor(std::string(63, 'n'), GgmlType::F32, {1});
  w.add_tensor("a", GgmlType::F32, {2});
  w.add_tensor("b", GgmlType::F32, {2});
  EXPECT_ERROR(w.add_tensor("a", GgmlType::F32, {2}), "tensor a is declared twice");

  testing::TempDir dir;
  OutputFile out(dir / "w.gguf");
  w.start(out);
  EXPECT_ERROR(w.add_metadata("late", uint8_t{1}), "after the header");
  const float two[2] = {1, 2};
  const float one = 1;
  w.write_tensor(std::string(63, 'n'), &one, 4);
  EXPECT_ERROR(w.write_tensor("b", two, 8), "w.gguf: tensor b written where tensor a comes next");
  w.begin_tensor("a");
  w.write(two, 4);
  EXPECT_ERROR(w.write(two, 8), "w.gguf: tensor a is given 12 bytes or more", "make it 8");
  EXPECT_ERROR(w.end_tensor(), "tensor a was given 4 bytes");
  w.write(two + 1, 4);
  w.end_tensor();
  EXPECT_ERROR(w.finish(), "1 of 3 tensors were not written", "the next is b");
  w.write_tensor("b", two, 8);
  w.finish();
  out.close();
  GgufFile back(dir / "w.gguf");
  EXPECT_EQ(std::memcmp(back.data(*back.find("a")), two, 8), 0);
}

// ---- malformed files ------------------------------------------------------------------------

TEST(GgufMalformed, TruncatedAnywhere) {
  GgufWriter w = every_type_writer();
  w.add_tensor("x", GgmlType::Q8_0, {2, 32});
  w.add_tensor("y", GgmlType::F32, {3});
  const std::string full = file_bytes(w);
  const GgufContents ok = parse(full);
  const uint64_t needed = ok.data_start + ok.tensors.back().offset + ok.tensors.back().num_bytes;
  for (uint64_t n = 0; n < needed; ++n) {
    const std::string message = parse_error(full.substr(0, n));
    ASSERT_EQ(message.rfind("bad.gguf: ", 0), 0u) << n << ": " << message;
    ASSERT_NE(message.find("truncated"), std::string::npos) << n << ": " << message;
  }
  EXPECT_EQ(parse(full.substr(0, needed)).tensors.size(), 2u);  // the last padding is optional
  // A reader that was given only a prefix of the file says so.
  EXPECT_ERROR(
      parse_gguf(reinterpret_cast<const uint8_t*>(full.data()), 40, full.size(), "part.gguf"),
      "part.gguf: truncated header", "only the first 40 bytes were available");
}

TEST(GgufMalformed, MagicVersionAndEndianness) {
  EXPECT_REFUSED(Bytes().raw("GGUX").u32(3).u64(0).u64(0).s, "not a GGUF file", "\"GGUX\"");
  EXPECT_REFUSED(Bytes().raw("GGU").s, "truncated");
  EXPECT_REFUSED(Bytes().raw("GGUF").u32(__builtin_bswap32(3)).u64(0).u64(0).s,
                 "big-endian GGUF is not supported");
  EXPECT_REFUSED(Bytes().raw("FUGG").u32(3).u64(0).u64(0).s, "big-endian GGUF is not supported");
  EXPECT_REFUSED(Bytes().header(0, 0, 1).s, "GGUF version 1 is not supported");
  EXPECT_REFUSED(Bytes().header(0, 0, 4).s, "GGUF version 4 is not supported");
  EXPECT_REFUSED(Bytes().header(0, 0, 0).s, "GGUF version 0 is not supported");
  EXPECT_EQ(parse(Bytes().header(0, 0, 2).s).version, 2u);
}

TEST(GgufMalformed, HugeCounts) {
  EXPECT_REFUSED(Bytes().header(uint64_t{1} << 60, 0).zeros(64).s,
                 "claims 1152921504606846976 tensors");
  EXPECT_REFUSED(Bytes().header(0, ~uint64_t{0}).zeros(64).s, "metadata keys",
                 "truncated or corrupt");
  EXPECT_REFUSED(Bytes().header(3, 0).zeros(64).s, "claims 3 tensors");
}

TEST(GgufMalformed, Metadata) {
  // A string length past the end.
  EXPECT_REFUSED(Bytes().header(0, 1).u64(1000).raw("k").zeros(20).s, "metadata key #0",
                 "1000 bytes long", "past the end");
  EXPECT_REFUSED(Bytes().header(0, 1).str("name").u32(8).u64(~uint64_t{0}).zeros(8).s,
                 "metadata key name's value", "more than the 1073741824 bytes allowed");
  EXPECT_REFUSED(Bytes().header(0, 1).str("name").u32(8).u64(100).raw("abc").zeros(8).s,
                 "metadata key name's value", "past the end");
  // Arrays.
  EXPECT_REFUSED(Bytes().header(0, 1).str("arr").u32(9).u32(9).u64(1).zeros(16).s,
                 "metadata key arr is an array of arrays");
  EXPECT_REFUSED(Bytes().header(0, 1).str("arr").u32(9).u32(4).u64(uint64_t{1} << 29).zeros(16).s,
                 "metadata key arr is an array of 536870912 uint32 values",
                 "more than the 16 bytes left");
  EXPECT_REFUSED(Bytes().header(0, 1).str("arr").u32(9).u32(8).u64(3).str("a").s,
                 "metadata key arr is an array of 3 strings");
  EXPECT_REFUSED(Bytes().header(0, 1).str("arr").u32(9).u32(5).u64(uint64_t{1} << 31).zeros(16).s,
                 "metadata key arr", "more than the 1073741824 allowed");
  EXPECT_REFUSED(Bytes().header(0, 1).str("arr").u32(9).u32(13).u64(0).zeros(16).s,
                 "metadata key arr is an array of unknown value type 13");
  // Keys and values.
  EXPECT_REFUSED(Bytes().header(0, 1).str("k").u32(13).zeros(16).s,
                 "metadata key k has unknown value type 13");
  EXPECT_REFUSED(Bytes().header(0, 2).kv_u32("dup", 1).kv_u32("dup", 2).s,
                 "metadata key dup appears twice");
  EXPECT_REFUSED(Bytes().header(0, 1).kv_u32("", 1).zeros(8).s, "metadata key #0 is empty");
  EXPECT_REFUSED(Bytes().header(0, 1).kv_u32("bad\xc3", 1).zeros(8).s, "metadata key #0",
                 "not valid UTF-8");
  EXPECT_REFUSED(Bytes().header(0, 1).str("flag").u32(7).put<uint8_t>(2).zeros(16).s,
                 "metadata key flag's value is a bool stored as 2");
  // general.alignment.
  EXPECT_REFUSED(Bytes().header(0, 1).kv_u32("general.alignment", 48).zeros(16).s,
                 "general.alignment is 48, not a power of two");
  EXPECT_REFUSED(Bytes().header(0, 1).kv_u32("general.alignment", 0).zeros(16).s,
                 "general.alignment is 0, not a power of two");
  EXPECT_REFUSED(Bytes().header(0, 1).str("general.alignment").u32(10).u64(32).zeros(16).s,
                 "general.alignment is uint64, expected uint32");
}

// One tensor "t" (F32 [8]) or a variant of it, after one alignment key.
std::string one_tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type,
                       uint64_t offset, size_t data = 64) {
  return Bytes()
      .header(1, 1)
      .kv_u32("general.alignment", 32)
      .tensor(name, dims, type, offset)
      .pad()
      .zeros(data)
      .s;
}

TEST(GgufMalformed, TensorInfos) {
  EXPECT_EQ(parse(one_tensor("t", {8}, 0, 0)).tensors.at(0).num_bytes, 32u);
  EXPECT_REFUSED(one_tensor("t", {8, 1, 1, 1, 1}, 0, 0), "tensor t has 5 dimensions");
  EXPECT_REFUSED(one_tensor("t", {}, 0, 0), "tensor t has 0 dimensions");
  EXPECT_REFUSED(one_tensor("t", {8, 0}, 0, 0), "tensor t has dimension 1 = 0");
  EXPECT_REFUSED(one_tensor("t", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0), "tensor t",
                 "overflow");
  EXPECT_REFUSED(one_tensor("t", {8}, 99, 0), "tensor t has unknown ggml type 99");
  EXPECT_REFUSED(one_tensor("t", {32}, 31, 0), "tensor t has ggml type 31 (Q4_0_4_4)", "removed");
  EXPECT_REFUSED(one_tensor("t", {48, 2}, 8, 0), "tensor t of type Q8_0 has rows of 48 values",
                 "blocks of 32");
  EXPECT_REFUSED(one_tensor("t", {8}, 0, 8),
                 "tensor t has offset 8, not a multiple of the alignment 32");
  EXPECT_REFUSED(one_tensor("t", {8}, 0, 64), "tensor t (32 bytes at offset 64) runs past the end");
  EXPECT_REFUSED(one_tensor("t", {8}, 0, 0, 31), "tensor t", "runs past the end", "truncated");
  EXPECT_REFUSED(one_tensor("", {8}, 0, 0), "tensor #0 has an empty name");
  EXPECT_REFUSED(one_tensor(std::string(64, 'x'), {8}, 0, 0), "tensor xxxx", "64 bytes",
                 "more than ggml's 63");
  EXPECT_EQ(parse(one_tensor(std::string(63, 'x'), {8}, 0, 0)).tensors.size(), 1u);
  EXPECT_REFUSED(one_tensor("a\xff", {8}, 0, 0), "tensor name #0", "not valid UTF-8");
  EXPECT_REFUSED(Bytes().header(1, 0).tensor("t", {8}, 0, 0).s,
                 "the data section would start at byte 64, past the end of the file");
  // Two tensors: a duplicate name, an overlap.
  EXPECT_REFUSED(
      Bytes().header(2, 0).tensor("t", {8}, 0, 0).tensor("t", {8}, 0, 32).pad().zeros(64).s,
      "tensor t appears twice");
  EXPECT_REFUSED(
      Bytes().header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).pad().zeros(96).s,
      "tensor b (bytes 32 to 64) overlaps tensor a (bytes 0 to 64)");
  // Gaps and any order are fine.
  const auto c =
      parse(Bytes().header(2, 0).tensor("a", {8}, 0, 64).tensor("b", {8}, 0, 0).pad().zeros(96).s);
  EXPECT_EQ(c.tensors[0].offset, 64u);
}

TEST(GgufMalformed, FilesOnDisk) {
  testing::TempDir dir;
  write_text_file(dir / "empty.gguf", "");
  EXPECT_ERROR(GgufFile(dir / "empty.gguf"), "empty.gguf: truncated");
  EXPECT_FALSE(is_gguf_file(dir / "empty.gguf"));
  EXPECT_FALSE(is_gguf_file(dir / "missing.gguf"));
  EXPECT_FALSE(is_gguf_file(dir.path()));
  write_text_file(dir / "x.bin", Bytes().header(0, 0).s);
  EXPECT_TRUE(is_gguf_file(dir / "x.bin"));
  EXPECT_EQ(GgufFile(dir / "x.bin").metadata().size(), 0u);
}

// ---- an independent reader ------------------------------------------------------------------

TEST(Gguf, PlainPythonReaderAgrees) {
  if (::access("/usr/bin/python3", X_OK) != 0) SKIP_UNLESS_CI("no /usr/bin/python3");
  testing::TempDir dir;
  GgufWriter w;
  w.add_metadata("general.architecture", "llama");
  w.add_metadata("llama.context_length", uint32_t{4096});
  w.add_metadata("tokenizer.ggml.tokens", std::vector<std::string>{"<s>", "h\xC3\xA9"});
  w.add_metadata("llama.rope.freq_base", 500000.0f);
  const auto a = random_values(3 * 5, 11), b = random_values(64 * 2, 12, 3.0),
             c = random_values(7, 13);
  w.add_tensor("a", GgmlType::BF16, {3, 5});
  w.add_tensor("b", GgmlType::Q8_0, {2, 64});
  w.add_tensor("c", GgmlType::F16, {7});
  const std::vector<std::vector<uint8_t>> data = {
      encode(GgmlType::BF16, a), encode(GgmlType::Q8_0, b), encode(GgmlType::F16, c)};
  write_file(w, dir / "x.gguf", data);
  const std::string command = "/usr/bin/python3 " EXPO_GOLDEN_DIR
                              "/../python/gguf_reference.py read " +
                              (dir / "x.gguf").string() + " > " + (dir / "x.json").string();
  ASSERT_EQ(std::system(command.c_str()), 0);
  const auto j = nlohmann::json::parse(read_text_file(dir / "x.json"));
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["metadata"]["llama.context_length"][0], "uint32");
  EXPECT_EQ(j["metadata"]["llama.context_length"][1], 4096);
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"][1][1], "h\xC3\xA9");
  EXPECT_EQ(j["metadata"]["general.alignment"][1], 32);
  GgufFile file(dir / "x.gguf");
  ASSERT_EQ(j["tensors"].size(), 3u);
  EXPECT_EQ(j["data_start"], file.contents().data_start);
  for (size_t i = 0; i < 3; ++i) {
    const auto& jt = j["tensors"][i];
    const GgufTensorInfo& t = file.tensors()[i];
    EXPECT_EQ(jt["name"], t.name);
    EXPECT_EQ(jt["type"], std::string(ggml_type_name(t.type)));
    EXPECT_EQ(jt["shape"].get<std::vector<uint64_t>>(), t.shape());
    EXPECT_EQ(jt["offset"], t.offset);
    std::vector<double> ours(t.num_elements());
    decode_to_double(t.type, file.data(t), ours.size(), ours.data());
    ASSERT_EQ(jt["values"].size(), ours.size());
    for (size_t k = 0; k < ours.size(); ++k)
      EXPECT_EQ(jt["values"][k].get<double>(), ours[k]) << t.name << " " << k;
  }
}

}  // namespace
}  // namespace expo
