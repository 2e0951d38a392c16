#!/usr/bin/env bash
# The GoogleTest suite built with clang under AddressSanitizer and UndefinedBehaviorSanitizer
# (in build-fuzz/, shared with the fuzzer), then the safetensors header fuzzer for
# FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEXPO_BUILD_FUZZERS=ON -DEXPO_BUILD_TESTS=ON -DEXPO_SANITIZE=ON >/dev/null
cmake --build build-fuzz --target expo_tests -j"$(nproc)" >/dev/null
echo "unit tests under ASan + UBSan"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 build-fuzz/tests/expo_tests --gtest_brief=1
bash fuzz/run.sh "${FUZZ_SECONDS:-60}"
