// The fast extrapolation kernel must agree bit for bit with the scalar reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "merge/extrapolate_kernel.h"

namespace expo {
namespace {

std::vector<uint8_t> make_values(DType dtype, size_t n, uint64_t seed, bool specials) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.05);
  std::uniform_int_distribution<int> exponent(-140, 10);
  std::vector<uint8_t> bytes(n * dtype_size(dtype));
  for (size_t i = 0; i < n; ++i) {
    double v = normal(rng);
    if (specials) {
      switch (rng() % 8) {
        case 0:
          v = 0.0;
          break;
        case 1:
          v = -0.0;
          break;
        case 2:
          v = std::ldexp(1.0 + (rng() % 1000) / 1000.0, exponent(rng));
          break;
        case 3:
          v = (rng() & 1 ? 1 : -1) * std::ldexp(1.0, -(int)(rng() % 30));
          break;
        default:
          break;
      }
    }
    store_from_double(bytes.data(), dtype, i, v);
  }
  return bytes;
}

struct Case {
  DType a, s, out;
};

class KernelAgreement : public ::testing::TestWithParam<Case> {};

TEST_P(KernelAgreement, FastEqualsReference) {
  const Case c = GetParam();
  const double alphas[] = {0.3, 0.1, 2.5, 25.0, 0.0, -0.5, 1.0};
  for (size_t n : {size_t{1}, size_t{7}, size_t{511}, size_t{512}, size_t{513}, size_t{4099}}) {
    for (bool specials : {false, true}) {
      const auto a = make_values(c.a, n, n * 31 + specials, specials);
      const auto s = make_values(c.s, n, n * 17 + 5 + specials, specials);
      for (double alpha : alphas) {
        std::vector<uint8_t> fast(n * dtype_size(c.out), 0xAA), ref(n * dtype_size(c.out), 0x55);
        KernelArgs args{a.data(), c.a, s.data(), c.s, fast.data(), c.out, n, alpha, false};
        const KernelStatus fs = extrapolate_fast(args);
        args.out = ref.data();
        const KernelStatus rs = extrapolate_reference(args);
        ASSERT_EQ(static_cast<int>(fs.problem), static_cast<int>(rs.problem));
        ASSERT_EQ(fs.index, rs.index);
        if (rs.ok()) {
          ASSERT_EQ(fast, ref) << "n=" << n << " alpha=" << alpha;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, KernelAgreement,
                         ::testing::Values(Case{DType::BF16, DType::BF16, DType::BF16},
                                           Case{DType::F16, DType::F16, DType::F16},
                                           Case{DType::F32, DType::F32, DType::F32},
                                           Case{DType::F64, DType::F64, DType::F64},
                                           Case{DType::BF16, DType::F32, DType::BF16},
                                           Case{DType::F32, DType::BF16, DType::F16},
                                           Case{DType::BF16, DType::BF16, DType::F32},
                                           Case{DType::F16, DType::BF16, DType::F64},
                                           Case{DType::F64, DType::F32, DType::BF16}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(dtype_name(info.param.a)) + "_" +
                                  std::string(dtype_name(info.param.s)) + "_to_" +
                                  std::string(dtype_name(info.param.out));
                         });

TEST(Kernel, DefinitionOrderWithoutFma) {
  // a + alpha * (a - s) in float64, three roundings; output f64 shows the raw value.
  const double a = 0.1, s = 0.7, alpha = 0.3;
  double out = 0;
  KernelArgs args{&a, DType::F64, &s, DType::F64, &out, DType::F64, 1, alpha, false};
  ASSERT_TRUE(extrapolate_fast(args).ok());
  volatile double d = a - s;
  volatile double t = alpha * d;
  volatile double r = a + t;
  EXPECT_EQ(std::memcmp(&out, const_cast<double*>(&r), 8), 0);
}

TEST(Kernel, ReportsOverflowAndNonFinite) {
  const uint16_t big = 0x7bff;  // 65504, the largest finite F16
  const uint16_t zero = 0;
  uint16_t out = 0;
  KernelArgs args{&big, DType::F16, &zero, DType::F16, &out, DType::F16, 1, 0.5, false};
  EXPECT_EQ(extrapolate_fast(args).problem, KernelStatus::Problem::kOverflow);
  EXPECT_EQ(extrapolate_reference(args).problem, KernelStatus::Problem::kOverflow);
  args.out_dtype = DType::F32;
  float out32 = 0;
  args.out = &out32;
  EXPECT_TRUE(extrapolate_fast(args).ok());  // a wider dtype holds it

  const uint16_t inf = 0x7f80;
  args = {&inf, DType::BF16, &zero, DType::BF16, &out, DType::BF16, 1, 0.5, false};
  EXPECT_EQ(extrapolate_fast(args).problem, KernelStatus::Problem::kNonFiniteAligned);
  args = {&zero, DType::BF16, &inf, DType::BF16, &out, DType::BF16, 1, 0.5, false};
  EXPECT_EQ(extrapolate_fast(args).problem, KernelStatus::Problem::kNonFiniteSft);
  args.allow_nonfinite = true;
  EXPECT_TRUE(extrapolate_fast(args).ok());
  EXPECT_EQ(out, 0xff80);  // 0 + 0.5 * (0 - inf) = -inf
}

TEST(Kernel, CopyModeConvertsExactly) {
  const float values[] = {-0.0f, 1.5f, 1e-40f, 3.0e38f};
  uint16_t out[4];
  KernelArgs args{values, DType::F32, nullptr, DType::F32, out, DType::BF16, 4, 0.0, false};
  ASSERT_TRUE(extrapolate_fast(args).ok());
  EXPECT_EQ(out[0], 0x8000);  // the sign of zero is kept in a copy
  EXPECT_EQ(out[1], 0x3fc0);
  EXPECT_EQ(out[2], round_to_bf16(1e-40f).bits);
  EXPECT_EQ(out[3], round_to_bf16(3.0e38f).bits);
}

}  // namespace
}  // namespace expo

namespace expo {
namespace {

TEST(Kernel, UnalignedInputsGiveTheSameBits) {
  const size_t n = 1500;
  const auto a = make_values(DType::F32, n, 11, true);
  const auto s = make_values(DType::BF16, n, 12, true);
  std::vector<uint8_t> a_shifted(a.size() + 1), s_shifted(s.size() + 1);
  std::memcpy(a_shifted.data() + 1, a.data(), a.size());
  std::memcpy(s_shifted.data() + 1, s.data(), s.size());
  std::vector<uint16_t> aligned_out(n), shifted_out(n);
  KernelArgs args{a.data(),   DType::F32, s.data(), DType::BF16, aligned_out.data(),
                  DType::F16, n,          0.3,      false};
  ASSERT_TRUE(extrapolate_fast(args).ok());
  args.aligned = a_shifted.data() + 1;
  args.sft = s_shifted.data() + 1;
  args.out = shifted_out.data();
  ASSERT_TRUE(extrapolate_fast(args).ok());
  EXPECT_EQ(aligned_out, shifted_out);
}

}  // namespace
}  // namespace expo
