// The fast extrapolation kernel must agree bit for bit with the scalar reference, on every
// SIMD target this CPU supports (each forced in turn: tests/simd_test_util.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "merge/extrapolate_kernel.h"
#include "simd_test_util.h"

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

// Runs fn once per SIMD target, with extrapolate_fast forced to it.
template <typename Fn>
void for_each_target(Fn&& fn) {
  testing::for_each_simd_target(extrapolate_fast_target_name, [&](const std::string&) { fn(); });
}

TEST_P(KernelAgreement, FastEqualsReference) {
  const Case c = GetParam();
  const double alphas[] = {0.3, 0.1, 2.5, 25.0, 0.0, -0.5, 1.0};
  for_each_target([&] {
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
  });
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
  volatile double d = a - s;
  volatile double t = alpha * d;
  volatile double r = a + t;
  for_each_target([&] {
    double out = 0;
    KernelArgs args{&a, DType::F64, &s, DType::F64, &out, DType::F64, 1, alpha, false};
    ASSERT_TRUE(extrapolate_fast(args).ok());
    EXPECT_EQ(std::memcmp(&out, const_cast<double*>(&r), 8), 0);
  });
}

TEST(Kernel, ReportsOverflowAndNonFinite) {
  for_each_target([] {
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
  });
}

TEST(Kernel, CopyModeConvertsExactly) {
  for_each_target([] {
    const float values[] = {-0.0f, 1.5f, 1e-40f, 3.0e38f};
    uint16_t out[4];
    KernelArgs args{values, DType::F32, nullptr, DType::F32, out, DType::BF16, 4, 0.0, false};
    ASSERT_TRUE(extrapolate_fast(args).ok());
    EXPECT_EQ(out[0], 0x8000);  // the sign of zero is kept in a copy
    EXPECT_EQ(out[1], 0x3fc0);
    EXPECT_EQ(out[2], round_to_bf16(1e-40f).bits);
    EXPECT_EQ(out[3], round_to_bf16(3.0e38f).bits);
  });
}

// The dtypes are checked before any SIMD code runs, with the library's one error type.
TEST(Kernel, RejectsNonFloatDtypes) {
  const int32_t in[2] = {1, 2};
  float f[2] = {1, 2}, out[2];
  KernelArgs args{in, DType::I32, f, DType::F32, out, DType::F32, 2, 0.5, false};
  EXPECT_THROW(extrapolate_fast(args), Error);
  args = {f, DType::F32, in, DType::I32, out, DType::F32, 2, 0.5, false};
  EXPECT_THROW(extrapolate_fast(args), Error);
  args.sft = nullptr;  // no SFT side: its dtype is not used
  EXPECT_TRUE(extrapolate_fast(args).ok());
  args = {f, DType::F32, f, DType::F32, out, DType::U8, 2, 0.5, false};
  EXPECT_THROW(extrapolate_fast(args), Error);
}

constexpr DType kFloatDtypes[] = {DType::BF16, DType::F16, DType::F32, DType::F64};

// Values of every kind: normal, zero of both signs, subnormal in the narrow formats, tiny,
// and with `nonfinite`, NaN and both infinities; with `huge`, values whose result overflows
// the narrow formats (and float64 itself at alpha 1e300).
std::vector<uint8_t> special_values(DType dtype, size_t n, uint64_t seed, bool nonfinite,
                                    bool huge) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.05);
  std::vector<uint8_t> bytes(n * dtype_size(dtype));
  for (size_t i = 0; i < n; ++i) {
    double v = normal(rng);
    switch (rng() % 16) {
      case 0:
        v = 0.0;
        break;
      case 1:
        v = -0.0;
        break;
      case 2:
        v = std::ldexp(1.0 + (rng() % 1000) / 1000.0, -int(rng() % 160));
        break;
      case 3:
        if (nonfinite) v = std::numeric_limits<double>::quiet_NaN();
        break;
      case 4:
        if (nonfinite) v = (rng() & 1 ? 1 : -1) * std::numeric_limits<double>::infinity();
        break;
      case 5:
        if (huge) v = (rng() & 1 ? 1 : -1) * std::ldexp(1.5, 10 + int(rng() % 120));
        break;
      default:
        break;
    }
    store_from_double(bytes.data(), dtype, i, v);
  }
  return bytes;
}

// Every combination of float dtypes in and out (and copies, without an SFT side), with zeros,
// subnormals, NaN and infinities carried through, and overflow reported at the same element.
TEST(Kernel, EveryDtypeCombinationAndSpecialValue) {
  const size_t n = 1100;  // three blocks, the last one partial
  for_each_target([&] {
    for (DType ad : kFloatDtypes) {
      for (DType sd : kFloatDtypes) {
        for (DType od : kFloatDtypes) {
          for (int kind = 0; kind < 3; ++kind) {
            const bool nonfinite = kind >= 1, huge = kind == 2;
            const auto a = special_values(ad, n, 7 + kind + 3 * uint64_t(ad), nonfinite, huge);
            const auto s = special_values(sd, n, 1000 + kind + 5 * uint64_t(sd), nonfinite, huge);
            for (bool copy : {false, true}) {
              if (copy && sd != ad) continue;  // the SFT dtype plays no part in a copy
              for (double alpha : {0.3, -1.5, 1e300}) {
                SCOPED_TRACE(::testing::Message()
                             << dtype_name(ad) << " " << dtype_name(sd) << " -> " << dtype_name(od)
                             << " kind " << kind << (copy ? " copy" : "") << " alpha " << alpha);
                std::vector<uint8_t> fast(n * dtype_size(od), 0xAA), ref(n * dtype_size(od), 0x55);
                KernelArgs args{a.data(), ad,          copy ? nullptr : s.data(),
                                sd,       fast.data(), od,
                                n,        alpha,       nonfinite};
                const KernelStatus fs = extrapolate_fast(args);
                args.out = ref.data();
                const KernelStatus rs = extrapolate_reference(args);
                ASSERT_EQ(static_cast<int>(fs.problem), static_cast<int>(rs.problem));
                ASSERT_EQ(fs.index, rs.index);
                if (rs.ok()) {
                  ASSERT_EQ(fast, ref);
                }
                if (!huge && (copy || alpha != 1e300)) {
                  // Nothing can overflow here: proves that the comparisons above were not
                  // all of error statuses.
                  ASSERT_TRUE(rs.ok()) << static_cast<int>(rs.problem) << " at " << rs.index;
                }
              }
            }
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace expo

namespace expo {
namespace {

TEST(Kernel, UnalignedInputsGiveTheSameBits) {
  const size_t n = 1500;
  for (DType ad : kFloatDtypes) {
    for (DType sd : kFloatDtypes) {
      SCOPED_TRACE(::testing::Message() << dtype_name(ad) << " " << dtype_name(sd));
      const auto a = make_values(ad, n, 11, true);
      const auto s = make_values(sd, n, 12, true);
      std::vector<uint8_t> a_shifted(a.size() + 1), s_shifted(s.size() + 1);
      std::memcpy(a_shifted.data() + 1, a.data(), a.size());
      std::memcpy(s_shifted.data() + 1, s.data(), s.size());
      std::vector<uint16_t> ref_out(n);
      KernelArgs args{a.data(), ad, s.data(), sd, ref_out.data(), DType::F16, n, 0.3, false};
      ASSERT_TRUE(extrapolate_reference(args).ok());
      for_each_target([&] {
        std::vector<uint16_t> aligned_out(n), shifted_out(n);
        KernelArgs fast_args = args;
        fast_args.out = aligned_out.data();
        ASSERT_TRUE(extrapolate_fast(fast_args).ok());
        fast_args.aligned = a_shifted.data() + 1;
        fast_args.sft = s_shifted.data() + 1;
        fast_args.out = shifted_out.data();
        ASSERT_TRUE(extrapolate_fast(fast_args).ok());
        EXPECT_EQ(aligned_out, ref_out);
        EXPECT_EQ(shifted_out, ref_out);
      });
    }
  }
}

}  // namespace
}  // namespace expo
