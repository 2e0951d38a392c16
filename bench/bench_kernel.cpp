// Throughput of the extrapolation kernel alone (extrapolate_fast), on one thread, for the
// dtype combinations checkpoints use: "hot" runs over 32 Ki elements again and again (the
// inputs and output stay in L1/L2: the arithmetic's speed), "cold" over 64 MiB per input
// (memory bandwidth, as in a real pass).
//
//   cmake --build build --target bench_kernel && build/bench_kernel [target]
//
// target forces a SIMD target (AVX3, AVX2, SSE4, ...; src/core/simd_targets.h) to see what
// other CPUs would get. Figures are G elements per second and GB/s of inputs read plus output
// written, per second of the thread's CPU time (not wall time: less disturbed by other work on
// a shared machine); each is the best of 5 timings of at least 0.2 s.
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/simd_targets.h"
#include "merge/extrapolate_kernel.h"

namespace {

using expo::DType;

std::vector<uint8_t> random_tensor(DType dtype, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.02);
  std::vector<uint8_t> bytes(n * expo::dtype_size(dtype));
  for (size_t i = 0; i < n; ++i) expo::store_from_double(bytes.data(), dtype, i, normal(rng));
  return bytes;
}

double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Best of 5: CPU seconds per call of extrapolate_fast over n elements.
double seconds_per_call(const expo::KernelArgs& args) {
  size_t calls = 1;
  double best = 1e300;
  for (int round = 0; round < 5; ++round) {
    for (;;) {
      const double t0 = thread_cpu_seconds();
      for (size_t c = 0; c < calls; ++c) {
        if (!expo::extrapolate_fast(args).ok()) {
          std::fprintf(stderr, "unexpected kernel status\n");
          std::exit(1);
        }
      }
      const double s = thread_cpu_seconds() - t0;
      if (s >= 0.2) {
        best = std::min(best, s / static_cast<double>(calls));
        break;
      }
      calls *= 2;
    }
  }
  return best;
}

struct Case {
  DType a, s, out;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string target = argc > 1 ? argv[1] : "";
  expo::simd_force_target_for_test(target);
  std::printf("extrapolate_fast target %s, 1 thread\n", expo::extrapolate_fast_target_name());
  std::printf("%-20s %22s %22s\n", "aligned sft -> out", "hot: Gelem/s  GB/s",
              "cold: Gelem/s  GB/s");
  const Case cases[] = {
      {DType::BF16, DType::BF16, DType::BF16}, {DType::F16, DType::F16, DType::F16},
      {DType::F32, DType::F32, DType::F32},    {DType::BF16, DType::BF16, DType::F32},
      {DType::F32, DType::BF16, DType::BF16},  {DType::F64, DType::F64, DType::F64}};
  for (const Case& c : cases) {
    std::printf("%-4s %-4s -> %-7s", std::string(expo::dtype_name(c.a)).c_str(),
                std::string(expo::dtype_name(c.s)).c_str(),
                std::string(expo::dtype_name(c.out)).c_str());
    const size_t bytes_per_element =
        expo::dtype_size(c.a) + expo::dtype_size(c.s) + expo::dtype_size(c.out);
    for (size_t n : {size_t{32} << 10, (size_t{64} << 20) / expo::dtype_size(c.a)}) {
      const auto a = random_tensor(c.a, n, 1), s = random_tensor(c.s, n, 2);
      std::vector<uint8_t> out(n * expo::dtype_size(c.out));
      const expo::KernelArgs args{a.data(), c.a, s.data(), c.s, out.data(), c.out, n, 0.3, false};
      const double sec = seconds_per_call(args);
      std::printf(" %14.2f %7.1f", n / sec / 1e9, n * bytes_per_element / sec / 1e9);
      std::fflush(stdout);
    }
    std::printf("\n");
  }
  return 0;
}
