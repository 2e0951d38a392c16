#pragma once
// The ExPO arithmetic on one run of elements:
//     out[i] = round(a[i] + alpha * (a[i] - s[i]))
// evaluated in IEEE float64 as three separately rounded operations (subtract, multiply, add;
// no fused multiply-add), then rounded once, to nearest with ties to even, into the output
// dtype. a = aligned (theta1), s = SFT (theta0).
//
// Two implementations with one contract: a slow, obvious reference that handles one element
// at a time through the generic rounding routine, and a blocked fast kernel, compiled by
// Highway once per CPU target and dispatched at run time to the best one this CPU supports
// (src/core/simd_targets.h). Tests check that they agree bit for bit, on every target.
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace expo {

struct KernelStatus {
  enum class Problem { kNone, kNonFiniteAligned, kNonFiniteSft, kOverflow };
  Problem problem = Problem::kNone;
  size_t index = 0;  // first element with the problem, relative to the run
  bool ok() const { return problem == Problem::kNone; }
};

struct KernelArgs {
  const void* aligned;
  DType aligned_dtype;
  const void* sft;  // null: no SFT side, out[i] = round(a[i]) (a copy into another dtype)
  DType sft_dtype;
  void* out;
  DType out_dtype;
  size_t count;
  double alpha;
  bool allow_nonfinite;  // NaN/Inf inputs are carried through instead of reported
};

KernelStatus extrapolate_reference(const KernelArgs& args);
// The dtypes must be BF16, F16, F32 or F64 (an Error otherwise).
KernelStatus extrapolate_fast(const KernelArgs& args);
// The SIMD target extrapolate_fast runs on this CPU (Highway's name: "AVX3", "AVX2", ...).
const char* extrapolate_fast_target_name();

}  // namespace expo
