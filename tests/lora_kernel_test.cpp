// The fast LoRA kernels (merge/lora_kernel.h) must agree bit for bit with the obvious
// element-by-element reference, on every SIMD target of the ExPO kernel they round through, for
// one adapter, a pair (--base), transposed updates and scaled factors; and their problems must
// be the same ones at the same elements.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "merge/lora_kernel.h"
#include "simd_test_util.h"

namespace expo {
namespace {

std::vector<uint8_t> random_values(DType dtype, size_t n, uint64_t seed, double sd) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, sd);
  std::vector<uint8_t> bytes(n * dtype_size(dtype));
  for (size_t i = 0; i < n; ++i) store_from_double(bytes.data(), dtype, i, normal(rng));
  return bytes;
}

LoraUpdate random_update(uint64_t rows, uint64_t cols, uint64_t rank, double scale, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.05);
  std::vector<double> left(rows * rank), right(rank * cols);
  for (auto& v : left) v = static_cast<float>(normal(rng));  // values a BF16/F32 factor holds
  for (auto& v : right) v = normal(rng);
  return LoraUpdate(std::move(left), std::move(right), rows, cols, rank, scale);
}

template <typename Fn>
void for_each_target(Fn&& fn) {
  testing::for_each_simd_target(extrapolate_fast_target_name, [&](const std::string&) { fn(); });
}

struct Outputs {
  std::vector<uint8_t> fast, reference;
  KernelStatus fast_status, reference_status;
};

Outputs run_both(LoraRun run) {
  Outputs o;
  o.fast.assign(run.count * dtype_size(run.out_dtype), 0xAB);
  o.reference.assign(run.count * dtype_size(run.out_dtype), 0xCD);
  run.out = o.fast.data();
  o.fast_status = lora_fast(run);
  run.out = o.reference.data();
  o.reference_status = lora_reference(run);
  return o;
}

TEST(LoraKernel, OneAdapterAgreesWithReferenceForEveryDtype) {
  const uint64_t rows = 37, cols = 301, rank = 7;  // rows straddle runs; cols not a multiple of 8
  const LoraUpdate u = random_update(rows, cols, rank, 16.0 / 7, 1);
  for (DType w_dtype : {DType::BF16, DType::F16, DType::F32, DType::F64})
    for (DType out : {DType::BF16, DType::F16, DType::F32, DType::F64}) {
      const auto w = random_values(w_dtype, rows * cols, 2, 0.02);
      for_each_target([&] {
        // Runs that start and end mid-row, and the whole tensor.
        for (auto [start, count] : {std::pair<uint64_t, uint64_t>{0, rows * cols},
                                    {5, 1000},
                                    {cols - 1, 2},
                                    {rows * cols - 9000, 9000}}) {
          LoraRun run;
          run.w1 = w.data() + start * dtype_size(w_dtype);
          run.w1_dtype = w_dtype;
          run.u1 = &u;
          run.w0 = run.w1;
          run.w0_dtype = w_dtype;
          run.u0 = nullptr;
          run.start = start;
          run.count = count;
          run.alpha = 2.5;
          run.out_dtype = out;
          const Outputs o = run_both(run);
          EXPECT_TRUE(o.fast_status.ok());
          EXPECT_TRUE(o.reference_status.ok());
          EXPECT_EQ(o.fast, o.reference)
              << dtype_name(w_dtype) << " -> " << dtype_name(out) << " start " << start;
        }
      });
    }
}

TEST(LoraKernel, ReferenceIsTheDefinition) {
  // One element by hand: out = W + ((1 + alpha) * s) * p, p summed in ascending k.
  const LoraUpdate u({0.5, -0.25, 2.0}, {0.125, 3.0, -1.0}, 1, 1, 3, 2.0);
  const double p = (0.5 * 0.125 + -0.25 * 3.0) + 2.0 * -1.0;
  EXPECT_EQ(u.product_reference(0, 0), p);
  double out = 0;
  const double w = 0.75;
  LoraRun run;
  run.w1 = &w;
  run.w1_dtype = DType::F64;
  run.u1 = &u;
  run.w0 = &w;
  run.w0_dtype = DType::F64;
  run.u0 = nullptr;
  run.count = 1;
  run.alpha = 0.5;
  run.out = &out;
  run.out_dtype = DType::F64;
  ASSERT_TRUE(lora_reference(run).ok());
  EXPECT_EQ(out, w + ((1 + 0.5) * 2.0) * p);
  double fast = 0;
  run.out = &fast;
  ASSERT_TRUE(lora_fast(run).ok());
  EXPECT_EQ(fast, out);
}

TEST(LoraKernel, PairAgreesWithReference) {
  const uint64_t rows = 19, cols = 130;
  const LoraUpdate u1 = random_update(rows, cols, 8, 2.0, 3);
  const LoraUpdate u0 = random_update(rows, cols, 4, 1.5, 4);
  const auto w1 = random_values(DType::BF16, rows * cols, 5, 0.02);
  const auto w0 = random_values(DType::F32, rows * cols, 6, 0.02);
  for_each_target([&] {
    for (int form = 0; form < 4; ++form) {
      LoraRun run;
      run.pair = true;
      run.w1 = w1.data();
      run.w1_dtype = DType::BF16;
      run.u1 = form & 1 ? &u1 : nullptr;
      run.w0 = form == 3 ? w1.data() : w0.data();  // the same base tensor, or a full tensor
      run.w0_dtype = form == 3 ? DType::BF16 : DType::F32;
      run.u0 = form & 2 ? &u0 : nullptr;
      run.count = rows * cols;
      run.alpha = -0.75;
      run.out_dtype = DType::BF16;
      const Outputs o = run_both(run);
      EXPECT_TRUE(o.fast_status.ok() && o.reference_status.ok());
      EXPECT_EQ(o.fast, o.reference) << "form " << form;
    }
  });
}

TEST(LoraKernel, ScaleAgreesWithReference) {
  const auto b = random_values(DType::BF16, 5000, 7, 0.01);
  for_each_target([&] {
    for (DType out : {DType::BF16, DType::F32}) {
      ScaleRun run;
      run.b = b.data();
      run.b_dtype = DType::BF16;
      run.count = 5000;
      run.alpha = 7.0;
      run.out_dtype = out;
      std::vector<uint8_t> fast(5000 * dtype_size(out)), reference(fast.size());
      run.out = fast.data();
      ASSERT_TRUE(scale_fast(run).ok());
      run.out = reference.data();
      ASSERT_TRUE(scale_reference(run).ok());
      EXPECT_EQ(fast, reference);
      EXPECT_EQ(load_as_double(fast.data(), out, 17), load_as_double(reference.data(), out, 17));
    }
  });
}

TEST(LoraKernel, ProblemsAreReportedAtTheSameElement) {
  const uint64_t rows = 4, cols = 600;
  const LoraUpdate u = random_update(rows, cols, 2, 1.0, 8);
  auto w = random_values(DType::BF16, rows * cols, 9, 0.02);
  // A NaN in W at element 1234.
  store_from_double(w.data(), DType::BF16, 1234, std::numeric_limits<double>::quiet_NaN());
  LoraRun run;
  run.w1 = w.data();
  run.w1_dtype = DType::BF16;
  run.u1 = &u;
  run.w0 = run.w1;
  run.w0_dtype = DType::BF16;
  run.u0 = nullptr;
  run.count = rows * cols;
  run.alpha = 1;
  run.out_dtype = DType::BF16;
  Outputs o = run_both(run);
  EXPECT_EQ(o.fast_status.problem, KernelStatus::Problem::kNonFiniteAligned);
  EXPECT_EQ(o.fast_status.index, 1234u);
  EXPECT_EQ(o.reference_status.problem, o.fast_status.problem);
  EXPECT_EQ(o.reference_status.index, o.fast_status.index);
  // Carried through when allowed.
  run.allow_nonfinite = true;
  o = run_both(run);
  EXPECT_TRUE(o.fast_status.ok() && o.reference_status.ok());
  EXPECT_EQ(o.fast, o.reference);
  EXPECT_TRUE(std::isnan(load_as_double(o.fast.data(), DType::BF16, 1234)));

  // An overflow of F16 at element 77: a large update.
  std::vector<double> left(rows * 1, 1.0), right(1 * cols, 0.0);
  right[77] = 60000.0;
  const LoraUpdate big(left, right, rows, cols, 1, 1.0);
  auto w16 = random_values(DType::F16, rows * cols, 10, 0.02);
  run.w1 = run.w0 = w16.data();
  run.w1_dtype = run.w0_dtype = DType::F16;
  run.u1 = &big;
  run.out_dtype = DType::F16;
  run.allow_nonfinite = false;
  o = run_both(run);
  EXPECT_EQ(o.fast_status.problem, KernelStatus::Problem::kOverflow);
  EXPECT_EQ(o.fast_status.index, 77u);
  EXPECT_EQ(o.reference_status.problem, KernelStatus::Problem::kOverflow);
  EXPECT_EQ(o.reference_status.index, 77u);
}

}  // namespace
}  // namespace expo
