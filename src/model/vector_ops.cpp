#include "model/vector_ops.h"

#include <cmath>
#include <cstring>

namespace expo {

namespace {
typedef float v16f __attribute__((vector_size(64)));

#define EXPO_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
}  // namespace

EXPO_CLONES float dot_f32(const float* a, const float* b, size_t n) {
  v16f acc = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    v16f x, y;
    std::memcpy(&x, a + i, sizeof x);
    std::memcpy(&y, b + i, sizeof y);
    acc += x * y;
  }
  float lanes[16];
  std::memcpy(lanes, &acc, sizeof lanes);
  for (; i < n; ++i) lanes[i % 16] += a[i] * b[i];
  float sum = 0.0f;
  for (float l : lanes) sum += l;
  return sum;
}

EXPO_CLONES void axpy_f32(float* y, float alpha, const float* x, size_t n) {
  size_t i = 0;
  const v16f a = alpha - v16f{};
  for (; i + 16 <= n; i += 16) {
    v16f xv, yv;
    std::memcpy(&xv, x + i, sizeof xv);
    std::memcpy(&yv, y + i, sizeof yv);
    yv += a * xv;
    std::memcpy(y + i, &yv, sizeof yv);
  }
  for (; i < n; ++i) y[i] += alpha * x[i];
}

void rms_norm_f32(const float* x, const float* weight, size_t n, double eps, float* out) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
  for (size_t i = 0; i < n; ++i) out[i] = weight[i] * (x[i] * scale);
}

void silu_mul_f32(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

float dot_f32_reference(const float* a, const float* b, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(sum);
}

}  // namespace expo
