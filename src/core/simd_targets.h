#pragma once
// Which SIMD code runs. The fast kernels (the extrapolation kernel, src/merge/
// extrapolate_kernel.cpp; dot and axpy, src/model/vector_ops.cpp; matmul, src/model/
// matmul_simd.cpp) are each compiled once per CPU target by Highway (foreach_target.h), and
// every call goes to the best target that is both compiled in and supported by the CPU we run
// on (HWY_DYNAMIC_DISPATCH). The choice is Highway's and process-wide: one switch for all the
// kernels. This file lists the targets and, for tests and benchmarks, forces or disables them;
// each kernel file says which target its dispatch chose (extrapolate_fast_target_name(),
// vector_ops_target_name(), matmul_target_name()).
//
// Names are Highway's: on x86 "AVX3" (AVX-512 F/BW/DQ/VL), "AVX2" (with FMA, F16C, BMI2),
// "SSE4", "SSSE3", and the portable fallback "EMU128" or "SCALAR" (plain C++, for CPUs without
// any of those; which of the two depends on the compiler); on Arm "NEON" (SVE is left out:
// core/highway_config.h).
#include <string>
#include <vector>

namespace expo {

// The targets compiled into this binary, best first, whether or not this CPU has them.
std::vector<std::string> simd_compiled_targets();

// The targets the dispatch may use: compiled in, supported by this CPU (hwy::SupportedTargets,
// from CPUID on x86) and not disabled, best first (while a target is forced, just that one).
// Without a forced target, every kernel runs the first.
std::vector<std::string> simd_available_targets();

// For tests and benchmarks: every kernel runs `name`, which must be one of
// simd_available_targets() (an Error otherwise), until another is forced; "" restores the
// automatic choice. Call it while no kernel is running.
void simd_force_target_for_test(const std::string& name);

// For tests: the dispatch never uses the named targets (compiled-in names; an Error
// otherwise), as on a CPU without them. Each call replaces the previous list ({} enables
// every target again). Disabling every available target leaves the baseline one, which must
// always run. Call it while no kernel is running.
void simd_disable_targets_for_test(const std::vector<std::string>& names);

}  // namespace expo
