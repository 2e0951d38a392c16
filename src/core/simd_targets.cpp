#include "core/simd_targets.h"

#include "core/highway_config.h"  // before Highway
// clang-format off
#include <hwy/targets.h>
// clang-format on

#include <cstdint>

#include "core/error.h"

namespace expo {

namespace {

// Highway's target bits: one bit per target, smaller bits for better targets. HWY_TARGETS is
// the set foreach_target.h compiles; it depends on the compiler and its flags only, so it is
// the same here as in the kernel files.
std::vector<int64_t> target_bits(int64_t targets) {
  std::vector<int64_t> bits;
  for (; targets != 0; targets &= targets - 1) bits.push_back(targets & -targets);
  return bits;
}

std::vector<std::string> names_of(int64_t targets) {
  std::vector<std::string> names;
  for (int64_t bit : target_bits(targets)) names.emplace_back(hwy::TargetName(bit));
  return names;
}

int64_t bit_of(const std::string& name, int64_t among, const char* what) {
  for (int64_t bit : target_bits(among)) {
    if (name == hwy::TargetName(bit)) return bit;
  }
  std::string list;
  for (const std::string& n : names_of(among)) list += (list.empty() ? "" : ", ") + n;
  fail("SIMD target ", name, " is not ", what, " (", list, ")");
}

// The targets the CPU supports, less the disabled ones. hwy::SupportedTargets() detects the
// CPU afresh and, on the way, points the dispatch at every target the CPU has, disabled ones
// included (it leaves the final choice to its caller, normally the first
// HWY_DYNAMIC_DISPATCH); so the dispatch is pointed at the result here, as that first call
// would do, or a target disabled just before would still run.
int64_t supported_targets() {
  const int64_t targets = hwy::SupportedTargets();
  hwy::GetChosenTarget().Update(targets);
  return targets;
}

}  // namespace

std::vector<std::string> simd_compiled_targets() { return names_of(HWY_TARGETS); }

std::vector<std::string> simd_available_targets() {
  return names_of(supported_targets() & HWY_TARGETS);
}

void simd_force_target_for_test(const std::string& name) {
  hwy::SetSupportedTargetsForTest(0);  // back to what the CPU supports, before looking it up
  const int64_t available = supported_targets() & HWY_TARGETS;
  if (name.empty()) return;
  // Only a target the CPU has: Highway would dispatch to any target it is told about.
  hwy::SetSupportedTargetsForTest(bit_of(name, available, "available on this CPU"));
}

void simd_disable_targets_for_test(const std::vector<std::string>& names) {
  int64_t disabled = 0;
  for (const std::string& name : names) disabled |= bit_of(name, HWY_TARGETS, "compiled in");
  hwy::DisableTargets(disabled);
}

}  // namespace expo
