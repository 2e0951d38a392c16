// The attention and normalisation vector kernels against plain loops.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/vector_ops.h"

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

TEST(VectorOps, DotMatchesReferenceOnOddSizesAndOffsets) {
  for (size_t n : {0, 1, 3, 15, 16, 17, 63, 64, 65, 128, 1000}) {
    const auto a = random_floats(n, 1 + n), b = random_floats(n, 2 + n);
    for (size_t offset : {0, 1}) {
      if (offset && !n) continue;
      const size_t m = n - offset;
      double scale = 0;
      for (size_t i = 0; i < m; ++i) scale += std::abs(double(a[i + offset]) * b[i]);
      EXPECT_NEAR(dot_f32(a.data() + offset, b.data(), m), dot_f32_reference(a.data() + offset, b.data(), m),
                  kRelativeTolerance * scale + 1e-7)
          << "n=" << m;
    }
  }
}

TEST(VectorOps, AxpyRmsNormAndSiluAreElementwiseExact) {
  const size_t n = 67;
  auto x = random_floats(n, 3), y = random_floats(n, 4), w = random_floats(n, 5);
  auto y2 = y;
  axpy_f32(y2.data() + 1, 0.75f, x.data(), n);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(y2[i + 1], y[i + 1] + 0.75f * x[i]);

  std::vector<float> out(n);
  rms_norm_f32(x.data(), w.data(), n, 1e-6, out.data());
  double ss = 0;
  for (size_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const double inv = 1.0 / std::sqrt(ss / n + 1e-6);
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(out[i], w[i] * x[i] * inv, 1e-5 * (1 + std::abs(out[i])));

  auto g = x;
  silu_mul_f32(g.data(), y.data(), n);
  for (size_t i = 0; i < n; ++i)
    EXPECT_NEAR(g[i], x[i] / (1 + std::exp(-double(x[i]))) * y[i], 1e-5 * (1 + std::abs(g[i])));
}

}  // namespace
}  // namespace expo
