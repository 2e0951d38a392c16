#!/usr/bin/env bash
# The GoogleTest suite built with clang under AddressSanitizer and UndefinedBehaviorSanitizer
# (in build-fuzz/, shared with the fuzzers), then the eight libFuzzer targets of fuzz/run.sh for
# FUZZ_SECONDS in all (default 72).
#
# The suite runs with the widest SIMD target this CPU supports disabled
# (EXPO_TEST_SIMD_DISABLE=best, tests/test_main.cpp): on an AVX-512 machine the kernels then
# run their AVX2 code, as on the AVX2-only CPUs where a clang build once died of SIGILL in
# AVX-512 code. The SIMD tests then run again with every target (each forced in turn), and,
# when qemu-user is installed on x86-64, on an emulated CPU without AVX-512
# (scripts/qemu-check.sh: qemu-x86_64 -cpu Haswell, where no AVX-512 instruction can run).
set -euo pipefail
cd "$(dirname "$0")/.."
# Only the test binary is built (the fuzzers build their own targets in fuzz/run.sh), with line
# tables only for debug information (enough for sanitizer stack traces, and much faster to
# compile than -g), through ccache when it is installed.
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -gline-tables-only -DNDEBUG" "${launcher[@]}" \
  -DEXPO_BUILD_FUZZERS=ON -DEXPO_BUILD_TESTS=ON -DEXPO_SANITIZE=ON >/dev/null
cmake --build build-fuzz --target expo_tests -j"$(nproc)" >/dev/null
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
simd_tests='*Kernel*:VectorOps*:Matmul*:SimdTargets*'
echo "unit tests under ASan + UBSan, widest SIMD target disabled"
EXPO_TEST_SIMD_DISABLE=best build-fuzz/tests/expo_tests --gtest_brief=1
echo "SIMD tests under ASan + UBSan, every SIMD target"
build-fuzz/tests/expo_tests --gtest_brief=1 --gtest_filter="$simd_tests"
if [ "$(uname -m)" = x86_64 ] && command -v qemu-x86_64 >/dev/null; then
  echo "SIMD tests (clang, no sanitizers) on an emulated AVX2 CPU without AVX-512"
  bash scripts/qemu-check.sh
else
  echo "skipping scripts/qemu-check.sh (SIMD tests on an emulated AVX2 CPU): qemu-x86_64 not installed (Debian: qemu-user)"
fi
bash fuzz/run.sh "${FUZZ_SECONDS:-72}"
