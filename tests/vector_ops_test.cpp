// The attention and normalisation vector kernels against plain loops; dot and axpy on every
// SIMD target this CPU supports, which must all give the same bits.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "model/vector_ops.h"
#include "simd_test_util.h"

namespace expo {
namespace {

// float32 sums of n products differ from a float64 sum by a few ulps of sum |a_i b_i|.
constexpr double kRelativeTolerance = 1e-5;

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n + 1);
  for (auto& x : v) x = normal(rng);
  return v;
}

// Runs fn once per SIMD target, with dot_f32 and axpy_f32 forced to it.
template <typename Fn>
void for_each_target(Fn&& fn) {
  testing::for_each_simd_target(vector_ops_target_name, [&](const std::string&) { fn(); });
}

TEST(VectorOps, DotMatchesReferenceOnOddSizesAndOffsets) {
  for_each_target([] {
    for (size_t n : {0, 1, 3, 15, 16, 17, 63, 64, 65, 128, 1000}) {
      const auto a = random_floats(n, 1 + n), b = random_floats(n, 2 + n);
      for (size_t offset : {0, 1}) {
        if (offset && !n) continue;
        const size_t m = n - offset;
        double scale = 0;
        for (size_t i = 0; i < m; ++i) scale += std::abs(double(a[i + offset]) * b[i]);
        EXPECT_NEAR(dot_f32(a.data() + offset, b.data(), m),
                    dot_f32_reference(a.data() + offset, b.data(), m),
                    kRelativeTolerance * scale + 1e-7)
            << "n=" << m;
      }
    }
  });
}

// dot_f32's definition, one float operation at a time: lane l = i mod 16 adds a[i] * b[i]
// (the product rounded, then the sum) in increasing i, then the lanes are added from 0 to 15.
float dot_by_definition(const float* a, const float* b, size_t n) {
  float lanes[16] = {};
  for (size_t i = 0; i < n; ++i) {
    const float product = a[i] * b[i];
    lanes[i % 16] += product;
  }
  float sum = 0.0f;
  for (float lane : lanes) sum += lane;
  return sum;
}

std::vector<uint32_t> bits_of(const std::vector<float>& v) {
  std::vector<uint32_t> bits(v.size());
  std::memcpy(bits.data(), v.data(), v.size() * sizeof(float));
  return bits;
}

// Batch invariance across machines: dot and axpy give the same bits on every SIMD target (and
// exactly the bits of their definitions), whatever the length and alignment.
TEST(VectorOps, DotAndAxpyGiveTheSameBitsOnEveryTarget) {
  std::vector<size_t> sizes;
  for (size_t n = 0; n <= 70; ++n) sizes.push_back(n);
  for (size_t n : {127, 128, 129, 1000, 4099}) sizes.push_back(n);
  // Per target: every dot result, then every axpy output, in one vector of floats.
  std::vector<std::vector<float>> results;
  std::vector<std::string> targets;
  testing::for_each_simd_target(vector_ops_target_name, [&](const std::string& target) {
    std::vector<float> out;
    for (size_t n : sizes) {
      const auto a = random_floats(n + 3, 10 + n), b = random_floats(n + 3, 20 + n);
      for (size_t offset : {0, 1, 3}) {
        const float* pa = a.data() + offset;
        const float* pb = b.data() + (3 - offset);
        const float dot = dot_f32(pa, pb, n);
        EXPECT_EQ(std::bit_cast<uint32_t>(dot),
                  std::bit_cast<uint32_t>(dot_by_definition(pa, pb, n)))
            << "n=" << n << " offset " << offset;
        out.push_back(dot);
        std::vector<float> y(b.begin(), b.end());
        axpy_f32(y.data() + offset, -0.3f, pa, n);
        for (size_t i = 0; i < n; ++i) {
          const float product = -0.3f * pa[i];
          ASSERT_EQ(std::bit_cast<uint32_t>(y[offset + i]),
                    std::bit_cast<uint32_t>(b[offset + i] + product));
        }
        out.insert(out.end(), y.begin(), y.end());
      }
    }
    results.push_back(out);
    targets.push_back(target);
  });
  ASSERT_FALSE(results.empty());
  for (size_t t = 1; t < results.size(); ++t) {
    EXPECT_EQ(bits_of(results[t]), bits_of(results[0]))
        << targets[t] << " differs from " << targets[0];
  }
}

TEST(VectorOps, AxpyRmsNormAndSiluAreElementwiseExact) {
  const size_t n = 67;
  auto x = random_floats(n, 3), y = random_floats(n, 4), w = random_floats(n, 5);
  for_each_target([&] {
    auto y2 = y;
    axpy_f32(y2.data() + 1, 0.75f, x.data(), n);
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(y2[i + 1], y[i + 1] + 0.75f * x[i]);
  });

  std::vector<float> out(n);
  rms_norm_f32(x.data(), w.data(), n, 1e-6, out.data());
  double ss = 0;
  for (size_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const double inv = 1.0 / std::sqrt(ss / n + 1e-6);
  for (size_t i = 0; i < n; ++i)
    EXPECT_NEAR(out[i], w[i] * x[i] * inv, 1e-5 * (1 + std::abs(out[i])));

  auto g = x;
  silu_mul_f32(g.data(), y.data(), n);
  for (size_t i = 0; i < n; ++i)
    EXPECT_NEAR(g[i], x[i] / (1 + std::exp(-double(x[i]))) * y[i], 1e-5 * (1 + std::abs(g[i])));
}

}  // namespace
}  // namespace expo
