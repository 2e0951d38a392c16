#pragma once
// Matrix products of float32 activations with weights kept in their file dtype.
//
//     y[b * n + r] = sum_k x[b * k_in + k] * W[r * k_in + k]   (+ bias[r] when bias != null)
//
// W is row-major [rows = n, cols = k_in] (the layout of a torch nn.Linear weight in a
// safetensors file), in F32, BF16, F16 or Q8_0. x is float32 [batch, k_in], y float32
// [batch, n].
//
// Q8_0 (io/q8_0.h, from GGUF files): each row is cols / 32 blocks of 34 bytes (an F16 scale d,
// then 32 int8 q), row r starting at byte r * cols / 32 * 34; cols must be a multiple of 32.
// Weight k of a block is exactly q[k] * d, which float32 holds exactly, and the kernels
// multiply by that value: the fast kernel's result is bit for bit its result on the same
// weights stored as F32, with the same accumulation order (below). Activations are not
// quantized.
// A batch of 1 is a matrix-vector product (decode); larger batches are prefill and batched
// decode, where each weight row is loaded once and used for several activation rows.
//
// Two implementations with one contract: a slow, obvious reference that converts each weight
// element and accumulates in float64, and a fast SIMD kernel (run-time dispatch) split over an
// explicit thread pool. Tests compare them on random shapes.
//
// Batch invariance (required by the engine): the fast kernel computes every y[b, r] with the
// same sequence of float operations whatever the batch size, the row's position b in the
// batch, the thread count or the tiling, so a prompt's logits, and so its sampled tokens, do
// not depend on which other prompts share its batch. (The k dimension is never split across
// threads, and the batch-1 and batched paths accumulate in the same lane order.) That order,
// for every dtype: L float32 lanes (L = the target's vector width: 16 AVX3, 8 AVX2, 4 SSE4,
// SSSE3 and NEON, 1 SCALAR), lane l adding x[k] * w[k] for k = l, l + L, ... in increasing k,
// each with one fused multiply-add (a multiply then an add on targets without FMA), w[k]
// widened to float32 exactly first (for Q8_0, q[k] and d widened and multiplied, exact); then
// the target's fixed tree summing the lanes, then + bias.
//
// x and y must not overlap. Any alignment is accepted (W may even start at an odd byte).
#include <cstddef>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace expo {

struct WeightView {
  const void* data = nullptr;  // rows * cols elements of dtype (Q8_0: in blocks, see above)
  DType dtype = DType::F32;    // F32, BF16, F16 or Q8_0
  size_t rows = 0;             // output features
  size_t cols = 0;             // input features
};

// bias: float32 [rows] or null.
void matmul_reference(const WeightView& w, const float* bias, const float* x, size_t batch,
                      float* y);
void matmul(const WeightView& w, const float* bias, const float* x, size_t batch, float* y,
            ThreadPool& pool);

// Converts `count` elements of `dtype` (F32, BF16, F16, Q8_0) starting at element `first` to
// float32, exactly. Used for embedding lookups. For Q8_0, `first` and `count` must be
// multiples of 32 (whole blocks; a row of a Q8_0 matrix is).
void convert_row_to_f32(const void* data, DType dtype, size_t first, size_t count, float* out);

// The name of the SIMD target the fast kernel uses on this CPU (for benchmarks and logs):
// Highway's names, "AVX3" (AVX-512), "AVX2", "SSE4", "SSSE3", "SCALAR" (one lane,
// portable C++, for CPUs without SSSE3). src/core/simd_targets.h lists the targets and, for
// tests and benchmarks, forces one.
const char* matmul_target_name();

}  // namespace expo
