#pragma once
// Running a test once per SIMD target (src/core/simd_targets.h): every target compiled into
// the binary that this CPU supports is forced in turn, so that each compiled path is checked
// against its reference, and the kernel's own dispatch must report the forced target (proof
// that the path under test is the one that ran). Targets the CPU lacks are never forced, so
// a path is only ever run where the CPU has its instructions.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/simd_targets.h"

namespace expo::testing {

// The targets tests/test_main.cpp disabled for the whole run (EXPO_TEST_SIMD_DISABLE), so
// that a test that disables targets itself can put them back.
const std::vector<std::string>& simd_targets_disabled_by_main();

// fn(target) once per available target, with the dispatch forced to it; dispatched_target is
// the kernel's own report of the target it runs (e.g. extrapolate_fast_target_name). The
// automatic choice is restored afterwards.
template <typename Fn>
void for_each_simd_target(const char* (*dispatched_target)(), Fn&& fn) {
  const std::vector<std::string> targets = simd_available_targets();
  ASSERT_FALSE(targets.empty());
  struct Restore {
    ~Restore() { simd_force_target_for_test(""); }
  } restore;
  for (const std::string& target : targets) {
    SCOPED_TRACE("SIMD target " + target);
    simd_force_target_for_test(target);
    ASSERT_EQ(target, dispatched_target()) << "the kernel did not run the forced target";
    fn(target);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace expo::testing
