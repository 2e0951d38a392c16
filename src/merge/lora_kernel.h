#pragma once
// The LoRA arithmetic on one run of elements of an adapted tensor, in IEEE float64, rounded
// once into the output dtype (round to nearest, ties to even):
//
//   p      = sum_k L[i][k] * R[k][j]       ascending k, starting from the first product, each
//                                          product and sum separately rounded (no FMA)
//   one adapter:   out = W + c * p         c = (1 + alpha) * s
//   a pair (--base): t1 = W1 + s1 * p1      (W1 alone when theta1 does not adapt it)
//                    t0 = W0 + s0 * p0      (likewise)
//                    out = t1 + alpha * (t1 - t0)
//   a scaled factor: out = (1 + alpha) * B  (lora_B of --output-adapter)
//
// L and R are the factors in float64: L = B [rows, r] and R = A [r, cols], or for a transposed
// update (an embedding, fan_in_fan_out) L = A^T and R = B^T.
//
// Two implementations with one contract, as for the ExPO kernel (merge/extrapolate_kernel.h):
// a slow, obvious reference, one element at a time through the generic rounding routine, and
// a fast one (rows of products vectorized over columns, rounding by the SIMD ExPO kernel).
// tests/lora_kernel_test.cpp checks that they agree bit for bit.
#include <cstdint>
#include <span>
#include <vector>

#include "core/dtype.h"
#include "io/peft_adapter.h"
#include "merge/extrapolate_kernel.h"

namespace expo {

// One module's update s * L R, its factors read once into float64.
class LoraUpdate {
 public:
  LoraUpdate(std::vector<double> left, std::vector<double> right, uint64_t rows, uint64_t cols,
             uint64_t rank, double scale);
  // Reads the module's A and B (pread). A NaN or Inf in them is an error naming the tensor and
  // the element, unless `allow_nonfinite`.
  static LoraUpdate read(const LoraModule& module, bool allow_nonfinite);

  uint64_t rows() const { return rows_; }
  uint64_t cols() const { return cols_; }
  uint64_t rank() const { return rank_; }
  double scale() const { return scale_; }

  // p of the flat elements [start, start + count) of the target (row-major [rows, cols]).
  void product(uint64_t start, uint64_t count, double* p) const;
  // p of one element, the obvious loop.
  double product_reference(uint64_t row, uint64_t col) const;

 private:
  std::vector<double> left_, right_;  // [rows, rank], [rank, cols]
  uint64_t rows_, cols_, rank_;
  double scale_;
};

// A run of `count` elements of a kLora entry, from flat element `start` of the tensor.
struct LoraRun {
  const void* w1;  // theta1's base values (the SFT or base tensor, or a full tensor), count
  DType w1_dtype;
  const LoraUpdate* u1;  // may be null in a pair
  const void* w0;        // a pair's theta0 base values (may equal w1)
  DType w0_dtype;
  const LoraUpdate* u0;  // may be null
  bool pair = false;
  uint64_t start = 0, count = 0;
  double alpha = 0;
  void* out;
  DType out_dtype;
  bool allow_nonfinite = false;
};

// Problems as the ExPO kernel reports them: kNonFiniteAligned for W1 (or W of one adapter),
// kNonFiniteSft for W0, kOverflow for a finite result past the output dtype's range.
KernelStatus lora_reference(const LoraRun& run);
KernelStatus lora_fast(const LoraRun& run);

// out = round((1 + alpha) * b) for `count` elements.
struct ScaleRun {
  const void* b;
  DType b_dtype;
  uint64_t count = 0;
  double alpha = 0;
  void* out;
  DType out_dtype;
  bool allow_nonfinite = false;
};
KernelStatus scale_reference(const ScaleRun& run);
KernelStatus scale_fast(const ScaleRun& run);

}  // namespace expo
