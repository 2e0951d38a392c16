#pragma once
// Small float32 vector kernels used by attention and normalisation. dot_f32 and axpy_f32 are
// compiled by Highway once per CPU target and dispatched at run time to the best one this CPU
// supports (src/core/simd_targets.h); they give the same bits on every target. A plain loop
// is the reference in tests.
#include <cstddef>

namespace expo {

// sum_i a[i] * b[i]; accumulates in 16 lanes, then adds the lanes in a fixed order.
float dot_f32(const float* a, const float* b, size_t n);
// y[i] += alpha * x[i]
void axpy_f32(float* y, float alpha, const float* x, size_t n);
// out[i] = x[i] * weight[i] / sqrt(mean(x^2) + eps), the sum of squares taken in float64.
void rms_norm_f32(const float* x, const float* weight, size_t n, double eps, float* out);
// gate[i] = silu(gate[i]) * up[i]
void silu_mul_f32(float* gate, const float* up, size_t n);
// gate[i] = gelu(gate[i]) * up[i], with GELU's tanh approximation (gelu_pytorch_tanh, gelu_new)
void gelu_tanh_mul_f32(float* gate, const float* up, size_t n);
// gate[i] = gelu(gate[i]) * up[i], with the exact erf GELU (gelu)
void gelu_mul_f32(float* gate, const float* up, size_t n);
// x[i] = cap * tanh(x[i] / cap): Gemma's soft-capping of attention scores and logits
void softcap_f32(float* x, size_t n, double cap);

float dot_f32_reference(const float* a, const float* b, size_t n);

// The SIMD target dot_f32 and axpy_f32 run on this CPU (Highway's name: "AVX3", "AVX2", ...).
const char* vector_ops_target_name();

}  // namespace expo
