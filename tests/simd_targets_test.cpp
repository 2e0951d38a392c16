// The SIMD dispatch (src/core/simd_targets.h): every kernel runs a target that is compiled in
// and that this CPU supports, forcing and disabling targets reach all three kernels, and on
// x86 the CPU really has the instructions of every target the dispatch may pick.
#include "core/simd_targets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "merge/extrapolate_kernel.h"
#include "model/matmul.h"
#include "model/vector_ops.h"
#include "simd_test_util.h"

namespace expo {
namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

void expect_every_kernel_runs(const std::string& target) {
  EXPECT_EQ(target, extrapolate_fast_target_name());
  EXPECT_EQ(target, vector_ops_target_name());
  EXPECT_EQ(target, matmul_target_name());
}

TEST(SimdTargets, AvailableAreCompiledInBestFirst) {
  const std::vector<std::string> compiled = simd_compiled_targets();
  const std::vector<std::string> available = simd_available_targets();
  ASSERT_FALSE(available.empty());
  // The available targets are the compiled ones the CPU supports, in the same order.
  size_t at = 0;
  for (const std::string& name : available) {
    while (at < compiled.size() && compiled[at] != name) ++at;
    ASSERT_LT(at, compiled.size()) << name << " is available but not compiled in, or out of order";
  }
  // A portable fallback is always there, and always last.
  EXPECT_TRUE(compiled.back() == "SCALAR" || compiled.back() == "EMU128") << compiled.back();
  EXPECT_EQ(compiled.back(), available.back());
#if defined(__x86_64__)
  // Several paths really are compiled in, including the AVX-512 one of the reported crash.
  EXPECT_TRUE(contains(compiled, "AVX3"));
  EXPECT_TRUE(contains(compiled, "AVX2"));
  EXPECT_TRUE(contains(compiled, "SSE4"));
#endif
}

// Without a forced target every kernel runs the best available one: compiled in, supported by
// this CPU (hwy::SupportedTargets) and not disabled by EXPO_TEST_SIMD_DISABLE.
TEST(SimdTargets, AutomaticChoiceIsTheBestSupported) {
  const std::vector<std::string> available = simd_available_targets();
  ASSERT_FALSE(available.empty());
  expect_every_kernel_runs(available.front());
  for (const std::string& disabled : testing::simd_targets_disabled_by_main()) {
    EXPECT_FALSE(contains(available, disabled)) << disabled << " was disabled";
  }
}

#if defined(__x86_64__)
// Checked with the compiler's own CPUID reading (__builtin_cpu_supports), independently of
// Highway's: no target is offered on a CPU without its instructions.
TEST(SimdTargets, CpuHasEveryAvailableTarget) {
  __builtin_cpu_init();
  for (const std::string& name : simd_available_targets()) {
    SCOPED_TRACE(name);
    if (name == "AVX3") {
      EXPECT_TRUE(__builtin_cpu_supports("avx512f"));
      EXPECT_TRUE(__builtin_cpu_supports("avx512vl"));
      EXPECT_TRUE(__builtin_cpu_supports("avx512dq"));
      EXPECT_TRUE(__builtin_cpu_supports("avx512bw"));
    }
    if (name == "AVX3" || name == "AVX2") {
      EXPECT_TRUE(__builtin_cpu_supports("avx2"));
      EXPECT_TRUE(__builtin_cpu_supports("fma"));
      EXPECT_TRUE(__builtin_cpu_supports("bmi2"));
    }
    if (name == "AVX3" || name == "AVX2" || name == "SSE4") {
      EXPECT_TRUE(__builtin_cpu_supports("sse4.2"));
    }
    if (name != "SCALAR" && name != "EMU128") {
      EXPECT_TRUE(__builtin_cpu_supports("ssse3"));
    }
  }
  // And the converse for the widest one: an AVX-512 CPU gets the AVX-512 path.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      !contains(testing::simd_targets_disabled_by_main(), "AVX3")) {
    EXPECT_EQ(simd_available_targets().front(), "AVX3");
  }
}
#endif

TEST(SimdTargets, ForcingReachesEveryKernel) {
  testing::for_each_simd_target(extrapolate_fast_target_name, [](const std::string& target) {
    expect_every_kernel_runs(target);
  });
  expect_every_kernel_runs(simd_available_targets().front());  // restored
}

TEST(SimdTargets, OnlyAvailableTargetsCanBeForced) {
  EXPECT_THROW(simd_force_target_for_test("NO_SUCH_TARGET"), Error);
  const std::vector<std::string> available = simd_available_targets();
  for (const std::string& name : simd_compiled_targets()) {
    if (contains(available, name)) continue;
    EXPECT_THROW(simd_force_target_for_test(name), Error) << name << " is not on this CPU";
  }
  simd_force_target_for_test("");
  expect_every_kernel_runs(available.front());
  EXPECT_THROW(simd_disable_targets_for_test({"NO_SUCH_TARGET"}), Error);
}

// Disabling the best target (as EXPO_TEST_SIMD_DISABLE=best does for the whole suite) makes
// every kernel run the next one, as on a CPU without it.
TEST(SimdTargets, DisablingTheBestTargetFallsBackToTheNext) {
  const std::vector<std::string> before = simd_available_targets();
  if (before.size() < 2) GTEST_SKIP() << "only " << before.front() << " is available";
  std::vector<std::string> disabled = testing::simd_targets_disabled_by_main();
  disabled.push_back(before.front());
  simd_disable_targets_for_test(disabled);
  // Listing the targets first, then dispatching: listing must not undo the disabling.
  EXPECT_EQ(simd_available_targets(), std::vector<std::string>(before.begin() + 1, before.end()));
  expect_every_kernel_runs(before[1]);
  EXPECT_THROW(simd_force_target_for_test(before.front()), Error);
  expect_every_kernel_runs(before[1]);
  simd_disable_targets_for_test(testing::simd_targets_disabled_by_main());  // as it was
  expect_every_kernel_runs(before.front());
  EXPECT_EQ(simd_available_targets(), before);
  expect_every_kernel_runs(before.front());
}

}  // namespace
}  // namespace expo
