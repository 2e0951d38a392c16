#!/usr/bin/env bash
# Builds the safetensors header fuzzer with clang, AddressSanitizer and UndefinedBehaviorSanitizer,
# and runs it for SECONDS (default 60) on a copy of the seed corpus in fuzz/corpus/.
# Usage: bash fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -gline-tables-only -DNDEBUG" "${launcher[@]}" \
  -DEXPO_BUILD_FUZZERS=ON -DEXPO_SANITIZE=ON >/dev/null
cmake --build build-fuzz --target safetensors_header_fuzz -j"$(nproc)" >/dev/null
rm -rf fuzz/corpus-run && mkdir -p fuzz/corpus-run && cp fuzz/corpus/* fuzz/corpus-run/
echo "fuzzing the safetensors header parser for ${seconds}s (ASan + UBSan)"
status=0
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  build-fuzz/fuzz/safetensors_header_fuzz -max_total_time="$seconds" -max_len=4096 \
  -print_final_stats=1 fuzz/corpus-run >build-fuzz/fuzz.log 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  tail -n 60 build-fuzz/fuzz.log
  echo "fuzz: FAILED (exit $status); the crashing input is in ./crash-* and build-fuzz/fuzz.log"
  exit "$status"
fi
grep -E '^(Done|stat::number_of_executed_units)' build-fuzz/fuzz.log || true
echo "fuzz: no crash, no sanitizer report"
