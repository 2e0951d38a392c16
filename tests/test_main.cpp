// The unit tests' main: GoogleTest's, plus one switch for the SIMD dispatch.
//
//   EXPO_TEST_SIMD_DISABLE=best build/tests/expo_tests     (or =AVX3, =AVX3,AVX2, ..., =none)
//
// runs the whole suite with those SIMD targets disabled, as on a CPU without them: "best" is
// the widest target this CPU supports (AVX3 on an AVX-512 machine, which then runs AVX2, as
// on an AVX2-only CPU); "none" disables nothing. Either way the targets left are printed.
// scripts/sanitize.sh runs the ASan/UBSan suite that way. The per-target tests
// (tests/simd_test_util.h) then cover the remaining targets only.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "core/simd_targets.h"
#include "simd_test_util.h"

namespace expo::testing {
namespace {
std::vector<std::string> disabled_by_main;
}

const std::vector<std::string>& simd_targets_disabled_by_main() { return disabled_by_main; }

}  // namespace expo::testing

namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ",") + name;
  return out;
}

// The names in a comma-separated list, "best" replaced by the widest available target.
std::vector<std::string> targets_to_disable(const std::string& list) {
  std::vector<std::string> names;
  std::istringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    if (name == "best") name = expo::simd_available_targets().front();
    if (name == "none") continue;
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (const char* list = std::getenv("EXPO_TEST_SIMD_DISABLE"); list && *list) {
    try {
      expo::testing::disabled_by_main = targets_to_disable(list);
      expo::simd_disable_targets_for_test(expo::testing::disabled_by_main);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "EXPO_TEST_SIMD_DISABLE=%s: %s\n", list, e.what());
      return 2;
    }
    std::fprintf(stderr, "EXPO_TEST_SIMD_DISABLE=%s: SIMD targets disabled: %s; available: %s\n",
                 list, joined(expo::testing::disabled_by_main).c_str(),
                 joined(expo::simd_available_targets()).c_str());
  }
  return RUN_ALL_TESTS();
}
