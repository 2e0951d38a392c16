#include "model/matmul.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "io/q8_0.h"
#include "model/matmul_simd.h"

namespace expo {
namespace {

using matmul_detail::MatmulProblem;
using matmul_detail::TileShape;

// A block's activation rows are reused by every weight row of the block, so they should stay
// in L2 (1 MiB on the CPUs we target; a quarter leaves room for the weights streaming past).
constexpr size_t kActivationBlockBytes = 256 * 1024;
// Pieces per thread, for balance when threads run at different speeds (another process, a
// slower core); each piece costs one atomic increment in the pool.
constexpr size_t kTasksPerThread = 8;
// The smallest piece worth a task, in multiply-adds: 64K is 128 KiB of BF16 weights at batch
// 1, a few microseconds of streaming, against well under one to hand a task out.
constexpr size_t kMinTaskMacs = size_t{1} << 16;
// Below this many multiply-adds the caller's thread does everything: waking the pool's
// workers costs some 10 microseconds, about what one thread needs to read 0.5 MiB of
// weights, so smaller products (a 0.5B model's k and v projections) are faster alone.
constexpr size_t kMinParallelMacs = size_t{1} << 19;

size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }
size_t round_up(size_t a, size_t multiple) { return ceil_div(a, multiple) * multiple; }

void check_weight_dtype(DType dtype, const char* what) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16 && dtype != DType::Q8_0) {
    fail(what, ": weights must be F32, BF16, F16 or Q8_0, not ", dtype_name(dtype));
  }
}

void check_weights(const WeightView& w, const char* what) {
  check_weight_dtype(w.dtype, what);
  if (w.dtype == DType::Q8_0 && w.cols % kQ8_0BlockValues != 0) {
    fail(what, ": Q8_0 weights of ", w.rows, " x ", w.cols, " (rows x cols): cols must be a ",
         "multiple of ", kQ8_0BlockValues, ", the Q8_0 block size (each row is whole blocks)");
  }
  if (!w.data && w.rows != 0 && w.cols != 0) fail(what, ": null weight data");
  size_t elements = 0;
  if (__builtin_mul_overflow(w.rows, w.cols, &elements)) {
    fail(what, ": ", w.rows, " x ", w.cols, " weights overflow size_t");
  }
}

// Weight `index` (= r * cols + k) as a double, exactly. Q8_0 rows are whole blocks, so element
// index sits in block index / 32 of the whole matrix, whatever its row.
double weight_as_double(const unsigned char* bytes, DType dtype, size_t index) {
  if (dtype == DType::F32) {
    float v;
    std::memcpy(&v, bytes + index * 4, 4);
    return v;
  }
  if (dtype == DType::Q8_0) {
    const unsigned char* block = bytes + index / kQ8_0BlockValues * kQ8_0BlockBytes;
    const uint16_t d = static_cast<uint16_t>(block[0] | (block[1] << 8));  // little-endian
    const auto q = static_cast<int8_t>(block[2 + index % kQ8_0BlockValues]);
    return q * f16_to_double(d);
  }
  uint16_t bits;
  std::memcpy(&bits, bytes + index * 2, 2);
  return dtype == DType::BF16 ? bf16_to_double(bits) : f16_to_double(bits);
}

}  // namespace

void matmul_reference(const WeightView& w, const float* bias, const float* x, size_t batch,
                      float* y) {
  check_weights(w, "matmul_reference");
  const auto* bytes = static_cast<const unsigned char*>(w.data);
  for (size_t b = 0; b < batch; ++b) {
    for (size_t r = 0; r < w.rows; ++r) {
      double sum = 0.0;
      for (size_t k = 0; k < w.cols; ++k) {
        sum += static_cast<double>(x[b * w.cols + k]) *
               weight_as_double(bytes, w.dtype, r * w.cols + k);
      }
      if (bias) sum += bias[r];
      y[b * w.rows + r] = static_cast<float>(sum);
    }
  }
}

void matmul(const WeightView& w, const float* bias, const float* x, size_t batch, float* y,
            ThreadPool& pool) {
  check_weights(w, "matmul");
  if (w.rows == 0 || batch == 0) return;
  const MatmulProblem problem{w.data, w.dtype, w.rows, w.cols, bias, x, y};
  const TileShape tile = matmul_detail::matmul_tile_shape();

  // Activation blocks: as many rows as fit kActivationBlockBytes (at least one tile), split
  // evenly so that the last block is not a sliver.
  const size_t x_row_bytes = std::max<size_t>(w.cols, 1) * sizeof(float);
  const size_t fit = std::max(tile.batch, kActivationBlockBytes / x_row_bytes);
  const size_t batch_blocks = ceil_div(batch, fit);
  const size_t batch_block = std::min(batch, round_up(ceil_div(batch, batch_blocks), tile.batch));

  // Weight-row blocks: enough pieces for every thread to get several, none below
  // kMinTaskMacs, each a whole number of register tiles.
  size_t macs = 0;
  const bool huge = __builtin_mul_overflow(w.rows * std::max<size_t>(w.cols, 1), batch, &macs);
  const size_t threads = huge || macs >= kMinParallelMacs ? pool.size() : 1;
  const size_t wanted = threads == 1 ? 1 : ceil_div(threads * kTasksPerThread, batch_blocks);
  const size_t macs_per_row = std::max<size_t>(w.cols, 1) * batch_block;
  const size_t min_rows = ceil_div(kMinTaskMacs, macs_per_row);
  const size_t block_rows = round_up(std::max(ceil_div(w.rows, wanted), min_rows), tile.rows);
  const size_t row_blocks = ceil_div(w.rows, block_rows);

  const size_t tasks = row_blocks * batch_blocks;
  const auto run = [&](size_t task) {
    const size_t r0 = (task % row_blocks) * block_rows;
    const size_t b0 = (task / row_blocks) * batch_block;
    matmul_detail::matmul_block(problem, r0, std::min(w.rows, r0 + block_rows), b0,
                                std::min(batch, b0 + batch_block));
  };
  if (threads == 1) {
    for (size_t task = 0; task < tasks; ++task) run(task);
  } else {
    pool.parallel_for(tasks, run);
  }
}

void convert_row_to_f32(const void* data, DType dtype, size_t first, size_t count, float* out) {
  check_weight_dtype(dtype, "convert_row_to_f32");
  if (dtype == DType::Q8_0 && (first % kQ8_0BlockValues != 0 || count % kQ8_0BlockValues != 0)) {
    fail("convert_row_to_f32: Q8_0 elements ", first, " .. ", first + count,
         " are not whole blocks: first and count must be multiples of ", kQ8_0BlockValues);
  }
  if (count == 0) return;
  const auto* bytes = static_cast<const unsigned char*>(data) + dtype_bytes(dtype, first);
  matmul_detail::convert_to_f32(bytes, dtype, count, out);
}

const char* matmul_target_name() { return matmul_detail::simd_target_name(); }

}  // namespace expo
