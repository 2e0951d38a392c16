// The ExPO kernel: the scalar reference, and the fast kernel written once and compiled by
// Highway's foreach_target.h for each CPU target (x86: AVX3 = AVX-512, AVX2, SSE4, SSSE3 and
// a portable fallback; Arm: NEON, see core/highway_config.h); extrapolate_fast checks its
// arguments and HWY_DYNAMIC_DISPATCH calls the best target this CPU supports
// (src/core/simd_targets.h).
//
// The fast kernel is plain loops over blocks that the compiler vectorizes with the target's
// instruction set: each element gets the same IEEE operations on every target (float64
// subtract, multiply, add, no FMA: the project is compiled with -ffp-contract=off), so every
// target gives the reference's bits.
//
// Nothing inside the target namespaces instantiates standard-library templates (bit casts are
// __builtin_bit_cast, limits are <float.h> macros): those regions are compiled with the
// target's instruction set, and an AVX-512 copy of a std:: template could be the one the
// linker keeps for the whole program (ODR). Errors (fail(...), a template) are thrown by the
// dispatcher, which checks the dtypes before any target code runs.
#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/highway_config.h"  // before Highway
#include "merge/extrapolate_kernel.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "merge/extrapolate_kernel.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace expo {
namespace extrapolate_simd {
namespace HWY_NAMESPACE {

constexpr size_t kBlock = 512;

// The definition, spelled out so that the compiler cannot reassociate or fuse it.
HWY_INLINE double ExpoFormula(double a, double s, double alpha) {
  const double delta = a - s;
  const double step = alpha * delta;
  return a + step;
}

HWY_INLINE bool IsNonFinite(double r) {
  return (__builtin_bit_cast(int64_t, r) & 0x7ff0000000000000ll) == 0x7ff0000000000000ll;
}

// n elements of a float dtype (checked by the dispatcher) from element `start`, as float64.
HWY_INLINE void DecodeBlock(const void* data, DType dtype, size_t start, size_t n,
                            double* HWY_RESTRICT out) {
  switch (dtype) {
    case DType::BF16: {
      const auto* p = static_cast<const uint16_t*>(data) + start;
      for (size_t i = 0; i < n; ++i)
        out[i] = static_cast<double>(__builtin_bit_cast(float, static_cast<uint32_t>(p[i]) << 16));
      break;
    }
    case DType::F16: {
      const auto* p = static_cast<const uint16_t*>(data) + start;
      // The F16 bits moved into a float's exponent and mantissa fields, scaled by 2^112, are
      // the magnitude exactly (subnormals included); exponent 31 (infinity, NaN) becomes
      // float64's all-ones exponent, mantissa kept; the sign bit is put back last. Selects
      // and bit operations only, no branches: the loop vectorizes (with branches it ran one
      // element at a time, mispredicting every other sign).
      for (size_t i = 0; i < n; ++i) {
        const uint32_t h = p[i];
        const double magnitude =
            static_cast<double>(__builtin_bit_cast(float, (h & 0x7fffu) << 13)) * 0x1p112;
        const uint64_t special = 0x7ff0000000000000ull | (static_cast<uint64_t>(h & 0x3ffu) << 42);
        const uint64_t bits =
            (h & 0x7c00u) == 0x7c00u ? special : __builtin_bit_cast(uint64_t, magnitude);
        out[i] = __builtin_bit_cast(double, bits | (static_cast<uint64_t>(h & 0x8000u) << 48));
      }
      break;
    }
    case DType::F32: {
      const auto* p = static_cast<const float*>(data) + start;
      for (size_t i = 0; i < n; ++i) out[i] = p[i];
      break;
    }
    default:  // F64
      memcpy(out, static_cast<const double*>(data) + start, n * sizeof(double));
      break;
  }
}

// Tensor data need not be aligned to its element size (a header whose length is not a multiple
// of 8 shifts every tensor); reading it through a typed pointer would then be undefined
// behaviour, so such a block is first copied to aligned scratch memory.
HWY_INLINE void DecodeBlockAny(const void* data, DType dtype, size_t start, size_t n,
                               double* HWY_RESTRICT out) {
  const size_t size = dtype_size(dtype);
  if (reinterpret_cast<uintptr_t>(data) % size == 0) return DecodeBlock(data, dtype, start, n, out);
  alignas(64) uint8_t scratch[kBlock * sizeof(double)];
  memcpy(scratch, static_cast<const uint8_t*>(data) + start * size, n * size);
  DecodeBlock(scratch, dtype, 0, n, out);
}

// Rounds float64 to a binary16-sized format (bf16: E=8, M=7; f16: E=5, M=10) for values whose
// result is a normal number, with the classic add-half-minus-one-plus-lowest-kept-bit trick
// on the float64 bits. Anything else (zero, subnormal results, overflow, NaN) is flagged and
// redone by the reference routine, so the result is always exactly the reference's.
// Signed 64-bit lanes throughout: AVX2 compares signed 64-bit integers only, and the
// flags are an integer OR-reduction, so the loop vectorizes.
template <int E, int M>
HWY_INLINE bool EncodeBlock16(const double* HWY_RESTRICT r, uint16_t* HWY_RESTRICT out, size_t n) {
  constexpr int kDrop = 52 - M;
  constexpr int64_t kBias = (int64_t{1} << (E - 1)) - 1;
  constexpr int64_t kRebias = 1023 - kBias;
  constexpr int64_t kMinExp = 1023 + 1 - kBias;  // smallest normal, as a float64 exponent
  constexpr int64_t kMaxExp = 1023 + kBias;      // largest finite
  constexpr int64_t kInf = ((int64_t{1} << E) - 1) << M;
  int64_t needs_fixup = 0;
  for (size_t i = 0; i < n; ++i) {
    const int64_t bits = __builtin_bit_cast(int64_t, r[i]);
    const int64_t magnitude = bits & 0x7fffffffffffffffll;
    const int64_t exponent = magnitude >> 52;
    const int64_t rounded =
        (magnitude + ((int64_t{1} << (kDrop - 1)) - 1) + ((magnitude >> kDrop) & 1)) >> kDrop;
    const int64_t result = rounded - (kRebias << M);
    const int64_t sign = (bits < 0) ? (int64_t{1} << (E + M)) : 0;
    out[i] = static_cast<uint16_t>(sign | result);
    needs_fixup |= static_cast<int64_t>(exponent < kMinExp) |
                   static_cast<int64_t>(exponent > kMaxExp) | static_cast<int64_t>(result >= kInf);
  }
  return needs_fixup != 0;
}

// Whether the fast path's result for r may differ from the reference: results outside the
// output format's normal range (zero, subnormal, overflow) and non-finite values.
HWY_INLINE bool NeedsReference(double r, DType out) {
  const int64_t exponent = (__builtin_bit_cast(int64_t, r) >> 52) & 0x7ff;
  switch (out) {
    case DType::BF16:
      return exponent < 1023 - 126 || exponent >= 1023 + 127;
    case DType::F16:
      return exponent < 1023 - 14 || exponent >= 1023 + 15;
    case DType::F32:
      return exponent == 0x7ff || __builtin_isinf(static_cast<float>(r));
    default:
      return exponent == 0x7ff;
  }
}

// extrapolate_fast once its dtypes are known to be float ones.
KernelStatus ExtrapolateFast(const KernelArgs& args) {
  alignas(64) double a[kBlock], s[kBlock], r[kBlock];
  for (size_t start = 0; start < args.count; start += kBlock) {
    const size_t n = args.count - start < kBlock ? args.count - start : kBlock;
    DecodeBlockAny(args.aligned, args.aligned_dtype, start, n, a);
    int64_t nonfinite = 0;  // integer OR-reduction: vectorizes
    if (args.sft) {
      DecodeBlockAny(args.sft, args.sft_dtype, start, n, s);
      for (size_t i = 0; i < n; ++i) {
        r[i] = ExpoFormula(a[i], s[i], args.alpha);
        nonfinite |= static_cast<int64_t>(IsNonFinite(r[i]));
      }
    } else {
      for (size_t i = 0; i < n; ++i) {
        r[i] = a[i];
        nonfinite |= static_cast<int64_t>(IsNonFinite(r[i]));
      }
    }
    bool needs_fixup = nonfinite != 0;
    switch (args.out_dtype) {
      case DType::BF16:
        needs_fixup |= EncodeBlock16<8, 7>(r, static_cast<uint16_t*>(args.out) + start, n);
        break;
      case DType::F16:
        needs_fixup |= EncodeBlock16<5, 10>(r, static_cast<uint16_t*>(args.out) + start, n);
        break;
      case DType::F32: {
        float* out = static_cast<float*>(args.out) + start;
        for (size_t i = 0; i < n; ++i) {
          out[i] = static_cast<float>(r[i]);
          needs_fixup |= !(__builtin_fabsf(out[i]) <= FLT_MAX);
        }
        break;
      }
      default:  // F64
        memcpy(static_cast<double*>(args.out) + start, r, n * sizeof(double));
        break;
    }
    if (needs_fixup) {
      // Rare: zeros, subnormal results, non-finite values or overflow. The reference decides,
      // element by element, for just the elements the fast path cannot vouch for.
      const size_t a_size = dtype_size(args.aligned_dtype), s_size = dtype_size(args.sft_dtype);
      const size_t out_size = dtype_size(args.out_dtype);
      for (size_t i = 0; i < n; ++i) {
        if (!NeedsReference(r[i], args.out_dtype)) continue;
        const size_t at = start + i;
        KernelArgs one = args;
        one.aligned = static_cast<const uint8_t*>(args.aligned) + at * a_size;
        if (args.sft) one.sft = static_cast<const uint8_t*>(args.sft) + at * s_size;
        one.out = static_cast<uint8_t*>(args.out) + at * out_size;
        one.count = 1;
        KernelStatus status = extrapolate_reference(one);
        if (!status.ok()) {
          status.index = at;
          return status;
        }
      }
    }
  }
  return {};
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace extrapolate_simd
}  // namespace expo
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cmath>

#include "core/error.h"

namespace expo {

namespace {
using Problem = KernelStatus::Problem;

// The definition, spelled out so that the compiler cannot reassociate or fuse it.
inline double expo_formula(double a, double s, double alpha) {
  const double delta = a - s;
  const double step = alpha * delta;
  return a + step;
}

bool is_float_dtype(DType dtype) {
  return dtype == DType::BF16 || dtype == DType::F16 || dtype == DType::F32 || dtype == DType::F64;
}
}  // namespace

KernelStatus extrapolate_reference(const KernelArgs& args) {
  for (size_t i = 0; i < args.count; ++i) {
    const double a = load_as_double(args.aligned, args.aligned_dtype, i);
    const double s = args.sft ? load_as_double(args.sft, args.sft_dtype, i) : a;
    if (!args.allow_nonfinite) {
      if (!std::isfinite(a)) return {Problem::kNonFiniteAligned, i};
      if (!std::isfinite(s)) return {Problem::kNonFiniteSft, i};
    }
    const double r = args.sft ? expo_formula(a, s, args.alpha) : a;
    const bool rounded_to_infinity = store_from_double(args.out, args.out_dtype, i, r);
    // Finite inputs must give a finite output: a result past the output dtype's range, or
    // past float64's own, is an overflow. Non-finite inputs (when allowed) carry through.
    if (std::isfinite(a) && std::isfinite(s) && (rounded_to_infinity || !std::isfinite(r)))
      return {Problem::kOverflow, i};
  }
  return {};
}

namespace extrapolate_simd {
HWY_EXPORT(ExtrapolateFast);
HWY_EXPORT(TargetName);

KernelStatus extrapolate_fast(const KernelArgs& args) {
  return HWY_DYNAMIC_DISPATCH(ExtrapolateFast)(args);
}
const char* target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }
}  // namespace extrapolate_simd

KernelStatus extrapolate_fast(const KernelArgs& args) {
  if (!is_float_dtype(args.aligned_dtype))
    fail("internal: extrapolation of non-float dtype ", dtype_name(args.aligned_dtype));
  if (args.sft && !is_float_dtype(args.sft_dtype))
    fail("internal: extrapolation of non-float dtype ", dtype_name(args.sft_dtype));
  if (!is_float_dtype(args.out_dtype))
    fail("internal: extrapolation into non-float dtype ", dtype_name(args.out_dtype));
  return extrapolate_simd::extrapolate_fast(args);
}

const char* extrapolate_fast_target_name() { return extrapolate_simd::target_name(); }

}  // namespace expo
#endif  // HWY_ONCE
