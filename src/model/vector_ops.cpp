// dot_f32 and axpy_f32 are written once and compiled by Highway's foreach_target.h for each
// CPU target; HWY_DYNAMIC_DISPATCH calls the best one this CPU supports
// (src/core/simd_targets.h). They use GCC/clang vector extensions of a fixed 16 float lanes,
// which each target lowers to its own registers (one AVX-512 register, two AVX2, four SSE or
// NEON, or 16 scalars): every lane gets the same separately rounded multiply and add
// (-ffp-contract=off), so every target gives the same bits, which the engine's batch
// invariance relies on. Nothing inside the target namespaces instantiates standard-library
// templates (see matmul_simd.cpp).
#include <stddef.h>
#include <string.h>

#include "core/highway_config.h"  // before Highway
#include "model/vector_ops.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "model/vector_ops.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace expo {
namespace vector_ops_simd {
namespace HWY_NAMESPACE {

typedef float V16 __attribute__((vector_size(64)));

// 16 accumulator lanes, lane l adding a[k] * b[k] for k = l, l + 16, ... in increasing k
// (the tail too), then the lanes summed from 0 to 15.
float DotF32(const float* a, const float* b, size_t n) {
  V16 acc = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    V16 x, y;
    memcpy(&x, a + i, sizeof x);
    memcpy(&y, b + i, sizeof y);
    acc += x * y;
  }
  float lanes[16];
  memcpy(lanes, &acc, sizeof lanes);
  for (; i < n; ++i) lanes[i % 16] += a[i] * b[i];
  float sum = 0.0f;
  for (float l : lanes) sum += l;
  return sum;
}

void AxpyF32(float* y, float alpha, const float* x, size_t n) {
  size_t i = 0;
  const V16 a = alpha - V16{};
  for (; i + 16 <= n; i += 16) {
    V16 xv, yv;
    memcpy(&xv, x + i, sizeof xv);
    memcpy(&yv, y + i, sizeof yv);
    yv += a * xv;
    memcpy(y + i, &yv, sizeof yv);
  }
  for (; i < n; ++i) y[i] += alpha * x[i];
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace vector_ops_simd
}  // namespace expo
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cmath>
#include <numbers>

namespace expo {

namespace vector_ops_simd {
HWY_EXPORT(DotF32);
HWY_EXPORT(AxpyF32);
HWY_EXPORT(TargetName);

float dot(const float* a, const float* b, size_t n) {
  return HWY_DYNAMIC_DISPATCH(DotF32)(a, b, n);
}
void axpy(float* y, float alpha, const float* x, size_t n) {
  HWY_DYNAMIC_DISPATCH(AxpyF32)(y, alpha, x, n);
}
const char* target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }
}  // namespace vector_ops_simd

float dot_f32(const float* a, const float* b, size_t n) { return vector_ops_simd::dot(a, b, n); }

void axpy_f32(float* y, float alpha, const float* x, size_t n) {
  vector_ops_simd::axpy(y, alpha, x, n);
}

const char* vector_ops_target_name() { return vector_ops_simd::target_name(); }

void rms_norm_f32(const float* x, const float* weight, size_t n, double eps, float* out) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
  for (size_t i = 0; i < n; ++i) out[i] = weight[i] * (x[i] * scale);
}

void silu_mul_f32(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void gelu_tanh_mul_f32(float* gate, const float* up, size_t n) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  for (size_t i = 0; i < n; ++i) {
    const double x = gate[i];
    gate[i] =
        static_cast<float>(0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)))) * up[i];
  }
}

void gelu_mul_f32(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double x = gate[i];
    gate[i] = static_cast<float>(0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2))) * up[i];
  }
}

void softcap_f32(float* x, size_t n, double cap) {
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(cap * std::tanh(x[i] / cap));
}

float dot_f32_reference(const float* a, const float* b, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(sum);
}

}  // namespace expo
#endif  // HWY_ONCE
