#pragma once
// Matrix products of float32 activations with weights kept in their file dtype.
//
//     y[b * n + r] = sum_k x[b * k_in + k] * W[r * k_in + k]   (+ bias[r] when bias != null)
//
// W is row-major [rows = n, cols = k_in] (the layout of a torch nn.Linear weight in a
// safetensors file), in F32, BF16 or F16. x is float32 [batch, k_in], y float32 [batch, n].
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
// threads, and the batch-1 and batched paths accumulate in the same lane order.)
//
// x and y must not overlap. Any alignment is accepted (W may even start at an odd byte).
#include <cstddef>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace expo {

struct WeightView {
  const void* data = nullptr;  // rows * cols elements of dtype
  DType dtype = DType::F32;    // F32, BF16 or F16
  size_t rows = 0;             // output features
  size_t cols = 0;             // input features
};

// bias: float32 [rows] or null.
void matmul_reference(const WeightView& w, const float* bias, const float* x, size_t batch,
                      float* y);
void matmul(const WeightView& w, const float* bias, const float* x, size_t batch, float* y,
            ThreadPool& pool);

// Converts `count` elements of `dtype` (F32, BF16, F16) starting at element `first` to float32.
// Used for embedding lookups.
void convert_row_to_f32(const void* data, DType dtype, size_t first, size_t count, float* out);

// The name of the SIMD target the fast kernel uses on this CPU (for benchmarks and logs):
// Highway's names, "AVX3" (AVX-512), "AVX2", "SSE4", "SSSE3", "SCALAR" (one lane,
// portable C++, for CPUs without SSSE3). src/core/simd_targets.h lists the targets and, for
// tests and benchmarks, forces one.
const char* matmul_target_name();

}  // namespace expo
