#pragma once
// Internal to matmul.cpp: the SIMD kernels, compiled once per CPU target by Highway in
// matmul_simd.cpp and chosen at run time (HWY_DYNAMIC_DISPATCH) for the CPU we run on.
// matmul.cpp splits the work over the thread pool and calls matmul_block for each piece.
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace expo::matmul_detail {

struct MatmulProblem {
  const void* w = nullptr;   // rows * cols elements of dtype, row-major, any alignment
  DType dtype = DType::F32;  // F32, BF16, F16 or Q8_0 (cols a multiple of 32)
  size_t rows = 0;
  size_t cols = 0;
  const float* bias = nullptr;  // [rows] or null
  const float* x = nullptr;     // [batch, cols]
  float* y = nullptr;           // [batch, rows]
};

// The register tile of the chosen target: `rows` weight rows times `batch` activation rows.
struct TileShape {
  size_t rows;
  size_t batch;
};

// Computes y[b, r] for r in [r0, r1) and b in [b0, b1). Every y[b, r] gets the same float
// operations whatever the block bounds (see matmul.h, batch invariance).
void matmul_block(const MatmulProblem& p, size_t r0, size_t r1, size_t b0, size_t b1);
TileShape matmul_tile_shape();
// Exact widening of F32/BF16/F16 elements, or count / 32 Q8_0 blocks, to float32.
void convert_to_f32(const void* data, DType dtype, size_t count, float* out);
// The target the dispatch chose (src/core/simd_targets.h lists, forces and disables them).
const char* simd_target_name();

}  // namespace expo::matmul_detail
