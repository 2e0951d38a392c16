// Throughput of the matmul kernel: GB/s of weight bytes at batch 1 (decode), beside memcpy's
// bandwidth on the same machine, and GFLOP/s and tokens/s for larger batches (prefill,
// batched decode).
//
//   cmake --build build --target bench_matmul && build/bench_matmul [threads] [target] [q8]
//
// target forces a SIMD target (AVX3, AVX2, SSE4, ...; "" for the best) to see what other CPUs
// would get. q8 runs only the last table, Q8_0 beside BF16 on a 4096 x 4096 matrix, measured
// in alternation so that a noisy, shared machine slows both alike.
//
// "hot": the same matrix again and again (it stays in the last-level cache when it fits);
// "cold": a different copy each call, 512 MiB of them in all, so weights come from DRAM as
// in a real forward pass, where each matrix is read once per token.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/simd_targets.h"
#include "core/thread_pool.h"
#include "io/q8_0.h"
#include "model/matmul.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kColdBytes = size_t{512} << 20;
constexpr double kMinSeconds = 0.4;

// Runs fn(i) repeatedly for at least kMinSeconds (after one warm-up call), returns seconds
// per call.
template <typename Fn>
double time_per_call(Fn&& fn) {
  fn(0);
  size_t calls = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    fn(++calls);
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < kMinSeconds);
  return elapsed / calls;
}

// Splits [0, kColdBytes) over the pool and runs fn(piece, begin, end) on each piece; GB/s
// of the whole.
template <typename Fn>
double bandwidth_gbps(expo::ThreadPool& pool, Fn&& fn) {
  const size_t pieces = pool.size();
  const double seconds = time_per_call([&](size_t) {
    pool.parallel_for(pieces, [&](size_t i) {
      const size_t begin = kColdBytes / pieces * i;
      fn(i, begin, i + 1 == pieces ? kColdBytes : begin + kColdBytes / pieces);
    });
  });
  return kColdBytes / seconds / 1e9;
}

double memcpy_gbps(expo::ThreadPool& pool) {
  std::vector<char> src(kColdBytes, 1), dst(kColdBytes, 0);
  return bandwidth_gbps(pool, [&](size_t, size_t begin, size_t end) {
    std::memcpy(dst.data() + begin, src.data() + begin, end - begin);
  });
}

// Reading alone (a sum of 64-bit words), which is what a batch-1 matmul does with weights.
double read_gbps(expo::ThreadPool& pool) {
  std::vector<uint64_t> words(kColdBytes / 8, 1);
  std::vector<uint64_t> sums(pool.size());
  const double gbps = bandwidth_gbps(pool, [&](size_t piece, size_t begin, size_t end) {
    uint64_t sum = 0;
    for (size_t i = begin / 8; i < end / 8; ++i) sum += words[i];
    sums[piece] = sum;
  });
  if (sums[0] == 42) std::printf(" ");  // uses the sums, so the reads are not optimised away
  return gbps;
}

struct Matrices {
  std::vector<unsigned char> bytes;
  size_t count = 0;  // copies
  size_t matrix_bytes = 0;
  expo::WeightView view(size_t i, expo::DType dtype, size_t rows, size_t cols) const {
    return {bytes.data() + (i % count) * matrix_bytes, dtype, rows, cols};
  }
};

Matrices make_matrices(expo::DType dtype, size_t rows, size_t cols, size_t copies) {
  Matrices m;
  m.matrix_bytes = expo::dtype_bytes(dtype, rows * cols);
  m.count = copies;
  m.bytes.resize(m.matrix_bytes * copies);
  std::mt19937 rng(1);
  std::normal_distribution<double> normal(0.0, 0.05);
  if (dtype == expo::DType::Q8_0) {
    std::vector<double> values(rows * cols);
    for (double& v : values) v = normal(rng);
    expo::quantize_q8_0(values.data(), values.size(), m.bytes.data(), "bench weights");
  } else {
    for (size_t i = 0; i < rows * cols; ++i)
      expo::store_from_double(m.bytes.data(), dtype, i, normal(rng));
  }
  for (size_t c = 1; c < copies; ++c) {
    std::memcpy(m.bytes.data() + c * m.matrix_bytes, m.bytes.data(), m.matrix_bytes);
  }
  return m;
}

// Q8_0 beside BF16, cold, on one 4096 x 4096 matrix (a 7B model's attention projection):
// each round times BF16 then Q8_0, and the best of the rounds is kept for each, so that
// another process slowing the machine for a while hits both.
void compare_q8_0_with_bf16(expo::ThreadPool& pool) {
  const size_t rows = 4096, cols = 4096;
  constexpr int kRounds = 5;
  const expo::DType dtypes[] = {expo::DType::BF16, expo::DType::Q8_0};
  Matrices m[2];
  for (int t = 0; t < 2; ++t) {
    const size_t bytes = expo::dtype_bytes(dtypes[t], rows * cols);
    m[t] = make_matrices(dtypes[t], rows, cols, std::max<size_t>(2, kColdBytes / bytes));
  }
  std::printf("\nQ8_0 beside BF16, %zu x %zu, cold, best of %d alternating rounds\n", rows, cols,
              kRounds);
  std::printf("%6s %12s %12s %14s %14s\n", "batch", "BF16 us", "Q8_0 us", "BF16 / Q8_0",
              "Q8_0 GB/s");
  for (size_t batch : {1, 16}) {
    std::vector<float> x(batch * cols, 0.5f), y(batch * rows);
    double best[2] = {1e30, 1e30};
    for (int round = 0; round < kRounds; ++round) {
      for (int t = 0; t < 2; ++t) {
        const double seconds = time_per_call([&](size_t i) {
          expo::matmul(m[t].view(i, dtypes[t], rows, cols), nullptr, x.data(), batch, y.data(),
                       pool);
        });
        best[t] = std::min(best[t], seconds);
      }
    }
    std::printf("%6zu %12.1f %12.1f %13.2fx %14.1f\n", batch, best[0] * 1e6, best[1] * 1e6,
                best[0] / best[1], m[1].matrix_bytes / best[1] / 1e9);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const size_t threads = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 2;
  expo::ThreadPool pool(threads);
  const std::string target = argc > 2 ? argv[2] : "";
  expo::simd_force_target_for_test(target);
  std::printf("matmul target %s, %zu threads\n", expo::matmul_target_name(), pool.size());
  if (argc > 3 && std::string(argv[3]) == "q8") {
    compare_q8_0_with_bf16(pool);
    std::printf("\ncommand: %s %zu '%s' q8\n", argv[0], pool.size(), target.c_str());
    return 0;
  }
  const double copied = memcpy_gbps(pool);
  std::printf("memcpy of 512 MiB: %.1f GB/s copied (%.1f GB/s read + written)\n", copied,
              2 * copied);
  std::printf("reading 512 MiB:   %.1f GB/s\n\n", read_gbps(pool));

  std::printf("batch 1: GB/s of weights read (hot = one matrix, cold = 512 MiB of copies)\n");
  std::printf("%-6s %13s %10s %10s %10s\n", "dtype", "rows x cols", "hot", "cold", "us cold");
  struct Shape {
    size_t rows, cols;
  };
  const Shape shapes[] = {{1024, 1024}, {4096, 1024}, {1024, 4096}, {32000, 1024}};
  const expo::DType dtypes[] = {expo::DType::BF16, expo::DType::F32, expo::DType::F16,
                                expo::DType::Q8_0};
  for (expo::DType dtype : dtypes) {
    for (const Shape s : shapes) {
      const size_t matrix_bytes = expo::dtype_bytes(dtype, s.rows * s.cols);
      const size_t copies = std::max<size_t>(2, kColdBytes / matrix_bytes);
      const Matrices m = make_matrices(dtype, s.rows, s.cols, copies);
      std::vector<float> x(s.cols, 0.5f), y(s.rows);
      const double hot = time_per_call([&](size_t) {
        expo::matmul(m.view(0, dtype, s.rows, s.cols), nullptr, x.data(), 1, y.data(), pool);
      });
      const double cold = time_per_call([&](size_t i) {
        expo::matmul(m.view(i, dtype, s.rows, s.cols), nullptr, x.data(), 1, y.data(), pool);
      });
      std::printf("%-6s %6zu x %-5zu %10.1f %10.1f %10.1f\n",
                  std::string(expo::dtype_name(dtype)).c_str(), s.rows, s.cols,
                  matrix_bytes / hot / 1e9, matrix_bytes / cold / 1e9, cold * 1e6);
    }
  }

  std::printf("\nBF16 4096 x 1024, cold: by batch size\n");
  std::printf("%6s %10s %12s %12s %14s\n", "batch", "GFLOP/s", "tokens/s", "vs batch 1",
              "us per call");
  const size_t rows = 4096, cols = 1024;
  const Matrices m = make_matrices(expo::DType::BF16, rows, cols, kColdBytes / (rows * cols * 2));
  double tokens_per_second_1 = 0;
  for (size_t batch : {1, 2, 3, 4, 8, 16, 32, 64, 128, 512}) {
    std::vector<float> x(batch * cols, 0.5f), y(batch * rows);
    const double seconds = time_per_call([&](size_t i) {
      expo::matmul(m.view(i, expo::DType::BF16, rows, cols), nullptr, x.data(), batch, y.data(),
                   pool);
    });
    const double tokens_per_second = batch / seconds;
    if (batch == 1) tokens_per_second_1 = tokens_per_second;
    std::printf("%6zu %10.1f %12.0f %11.1fx %14.1f\n", batch,
                2.0 * batch * rows * cols / seconds / 1e9, tokens_per_second,
                tokens_per_second / tokens_per_second_1, seconds * 1e6);
  }
  compare_q8_0_with_bf16(pool);
  std::printf("\ncommand: %s %zu %s\n", argv[0], pool.size(), target.c_str());
  return 0;
}
