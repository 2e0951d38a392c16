// Rounding float64 into BF16/F16/F32 must be exactly round-to-nearest-even, done once.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"

namespace expo {
namespace {

// An independent reference for 16-bit formats: find the two neighbouring values around v by
// searching the sorted table of all finite values of the format, and compare v with their
// midpoint, which is exactly representable in float64 (at most 11 significant bits).
struct NeighbourTable {
  std::vector<std::pair<double, uint16_t>> finite;  // sorted by value, -0 dropped
  double limit;  // max + half an ulp: from here on, values round to infinity
  uint16_t inf;  // +infinity's bits
  uint16_t max;  // the largest finite value's bits
  NeighbourTable(double (*decode)(uint16_t), int mant_bits, int max_exponent, uint16_t inf_bits)
      : limit(std::ldexp(2.0 - std::ldexp(1.0, -(mant_bits + 1)), max_exponent)),
        inf(inf_bits),
        max(static_cast<uint16_t>(inf_bits - 1)) {
    for (uint32_t b = 0; b < 0x10000; ++b) {
      const uint16_t bits = static_cast<uint16_t>(b);
      const double v = decode(bits);
      if (!std::isfinite(v) || bits == 0x8000) continue;
      finite.push_back({v, bits});
    }
    std::sort(finite.begin(), finite.end());
  }
  // Returns bits, or nullopt-like 0xffff sentinel with overflow flag.
  uint16_t round(double v, bool* overflow) const {
    *overflow = false;
    if (std::fabs(v) >= limit) {
      *overflow = true;
      return v > 0 ? inf : static_cast<uint16_t>(inf | 0x8000);
    }
    if (std::fabs(v) > finite.back().first)
      return v > 0 ? max : static_cast<uint16_t>(max | 0x8000);
    auto it = std::lower_bound(finite.begin(), finite.end(), std::make_pair(v, uint16_t{0}));
    if (it != finite.end() && it->first == v) {
      if (v == 0) return std::signbit(v) ? 0x8000 : 0x0000;
      return it->second;
    }
    const auto& upper = *it;
    const auto& lower = *(it - 1);
    const double mid = (lower.first + upper.first) / 2;  // exact
    uint16_t bits;
    if (v < mid)
      bits = lower.second;
    else if (v > mid)
      bits = upper.second;
    else
      bits = (lower.second & 1) ? upper.second : lower.second;
    // Zero results keep the sign of v.
    if ((bits & 0x7fff) == 0) bits = std::signbit(v) ? 0x8000 : 0x0000;
    return bits;
  }
};

std::vector<double> hard_values(uint64_t seed, size_t n) {
  std::mt19937_64 rng(seed);
  std::vector<double> values = {0.0,
                                -0.0,
                                1.0,
                                -1.0,
                                1e-45,
                                -1e-45,
                                5e-324,
                                1e-300,
                                std::numeric_limits<double>::max() / 2,
                                3.3895313892515355e38,
                                3.4e38,
                                65504.0,
                                65519.99,
                                65520.0,
                                6.1e-5,
                                5.96e-8,
                                2.98e-8};
  std::uniform_int_distribution<int> exponent(-150, 130);
  std::uniform_real_distribution<double> mantissa(1.0, 2.0);
  for (size_t i = 0; i < n; ++i) {
    double v = std::ldexp(mantissa(rng), exponent(rng));
    if (rng() & 1) v = -v;
    values.push_back(v);
  }
  // Exact midpoints between neighbouring BF16 and F16 values: the ties.
  for (size_t i = 0; i < n / 4; ++i) {
    const uint16_t b = static_cast<uint16_t>(rng() & 0x7f7e);
    values.push_back((bf16_to_double(b) + bf16_to_double(b + 1)) / 2);
    const uint16_t h = static_cast<uint16_t>(rng() % 0x7bff);
    values.push_back(-(f16_to_double(h) + f16_to_double(h + 1)) / 2);
  }
  return values;
}

TEST(DType, ParsesSafetensorsNames) {
  EXPECT_EQ(parse_dtype("BF16"), DType::BF16);
  EXPECT_EQ(parse_dtype("F64"), DType::F64);
  EXPECT_EQ(parse_dtype("bf16"), std::nullopt);
  EXPECT_EQ(parse_dtype("F128"), std::nullopt);
  EXPECT_EQ(parse_user_float_dtype("bf16"), DType::BF16);
  EXPECT_EQ(parse_user_float_dtype("F32"), DType::F32);
  EXPECT_EQ(parse_user_float_dtype("int8"), std::nullopt);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_TRUE(is_arithmetic_float(DType::F16));
  EXPECT_FALSE(is_arithmetic_float(DType::F8_E4M3));
}

void expect_matches_table(const NeighbourTable& table, Rounded (*round)(double), uint64_t seed) {
  for (double v : hard_values(seed, 200000)) {
    bool overflow;
    const uint16_t expected = table.round(v, &overflow);
    const Rounded got = round(v);
    ASSERT_EQ(got.bits, expected) << "value " << v;
    ASSERT_EQ(got.overflow, overflow) << "value " << v;
  }
}

TEST(DType, Bf16RoundingMatchesNeighbourSearch) {
  expect_matches_table(NeighbourTable(bf16_to_double, 7, 127, 0x7f80), round_to_bf16, 1);
}

TEST(DType, F16RoundingMatchesNeighbourSearch) {
  expect_matches_table(NeighbourTable(f16_to_double, 10, 15, 0x7c00), round_to_f16, 4);
}

#if defined(__FLT16_MAX__)  // GCC on x86-64 has _Float16; clang 14 does not
TEST(DType, F16RoundingMatchesCompilerConversion) {
  // GCC converts double to _Float16 with one correct rounding (libgcc's __truncdfhf2).
  for (double v : hard_values(2, 200000)) {
    const _Float16 h = static_cast<_Float16>(v);
    const uint16_t expected = std::bit_cast<uint16_t>(h);
    const Rounded got = round_to_f16(v);
    ASSERT_EQ(got.bits, expected) << "value " << v;
    ASSERT_EQ(got.overflow, std::isinf(static_cast<double>(h))) << "value " << v;
  }
}
#endif

TEST(DType, F32GenericRoundingMatchesHardware) {
  for (double v : hard_values(3, 200000)) {
    const Rounded generic = round_double_reference(v, 8, 23);
    const Rounded hardware = round_to_f32(v);
    ASSERT_EQ(generic.bits, hardware.bits) << "value " << v;
    ASSERT_EQ(generic.overflow, hardware.overflow) << "value " << v;
  }
}

TEST(DType, SpecialValues) {
  EXPECT_EQ(round_to_bf16(0.0).bits, 0x0000u);
  EXPECT_EQ(round_to_bf16(-0.0).bits, 0x8000u);
  EXPECT_EQ(round_to_bf16(std::numeric_limits<double>::infinity()).bits, 0x7f80u);
  EXPECT_FALSE(round_to_bf16(std::numeric_limits<double>::infinity()).overflow);
  EXPECT_EQ(round_to_bf16(std::nan("")).bits & 0x7fc0u, 0x7fc0u);
  EXPECT_TRUE(round_to_bf16(1e39).overflow);
  EXPECT_EQ(round_to_f16(65519.0).bits, 0x7bffu);               // just below the tie to infinity
  EXPECT_TRUE(round_to_f16(65520.0).overflow);                  // the tie goes to even: infinity
  EXPECT_EQ(round_to_f16(std::ldexp(1.0, -25)).bits, 0x0000u);  // half the smallest: even
  EXPECT_EQ(round_to_f16(std::ldexp(1.5, -25)).bits, 0x0001u);
  EXPECT_EQ(round_to_bf16(std::ldexp(1.0, -134)).bits, 0x0000u);
  EXPECT_EQ(round_to_bf16(std::ldexp(1.0, -133)).bits, 0x0001u);
  // 1 + 2^-8 is the tie between 1 and 1 + 2^-7 in BF16; even is 1. Through float32 first
  // it would stay a tie too, but 1 + 2^-8 + 2^-30 must round up, which float32 would lose.
  EXPECT_EQ(round_to_bf16(1.0 + std::ldexp(1.0, -8)).bits, 0x3f80u);
  EXPECT_EQ(round_to_bf16(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30)).bits, 0x3f81u);
}

TEST(DType, Decoders) {
  EXPECT_EQ(bf16_to_double(0x3f80), 1.0);
  EXPECT_EQ(f16_to_double(0x3c00), 1.0);
  EXPECT_EQ(f16_to_double(0x0001), std::ldexp(1.0, -24));
  EXPECT_EQ(f16_to_double(0x7bff), 65504.0);
  EXPECT_TRUE(std::isinf(f16_to_double(0xfc00)));
  EXPECT_TRUE(std::isnan(f16_to_double(0x7e00)));
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const double v = f16_to_double(static_cast<uint16_t>(b));
    if (std::isnan(v)) continue;
    ASSERT_EQ(round_to_f16(v).bits, b) << b;  // every F16 value round-trips
  }
}

}  // namespace
}  // namespace expo
