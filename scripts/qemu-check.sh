#!/usr/bin/env bash
# The SIMD tests (extrapolation kernel, dot/axpy, matmul, the dispatch itself), built with
# clang and run on an emulated x86-64 CPU that has AVX2 but not AVX-512: qemu-x86_64 -cpu
# Haswell (Debian's qemu-user; QEMU 7.2's TCG emulates AVX2, not AVX-512, so any AVX-512
# instruction is SIGILL there, as on the AVX2-only CPUs where a clang build of expo once
# crashed). Every target the emulated CPU has is forced in turn (tests/simd_test_util.h).
#
#   bash scripts/qemu-check.sh          (scripts/sanitize.sh runs it when qemu-user is installed)
#
# The ASan/UBSan build cannot be used: under qemu-user its shadow-memory reservation takes all
# the machine's memory. So the few files these tests need are compiled here, without
# sanitizers, with the project's flags, into build-qemu/ (ccache, when installed, makes reruns
# fast). Exits non-zero on a compile error, a failed test, or a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX="${QEMU_CHECK_CXX:-clang++}"
for tool in "$CXX" qemu-x86_64; do
  if ! command -v "$tool" >/dev/null; then
    echo "qemu-check: $tool not found (Debian: clang, qemu-user)" >&2
    exit 1
  fi
done
if [ "$(uname -m)" != x86_64 ]; then
  echo "qemu-check: for x86-64 hosts only" >&2
  exit 1
fi

out=build-qemu
mkdir -p "$out"
sources=(src/core/dtype.cpp src/core/thread_pool.cpp src/core/simd_targets.cpp src/io/q8_0.cpp
         src/merge/extrapolate_kernel.cpp src/model/matmul.cpp src/model/matmul_simd.cpp
         src/model/vector_ops.cpp tests/kernel_test.cpp tests/vector_ops_test.cpp
         tests/matmul_test.cpp tests/simd_targets_test.cpp tests/test_main.cpp)
launcher=""
command -v ccache >/dev/null && launcher=ccache
start=$(date +%s)
objects=()
for src in "${sources[@]}"; do objects+=("$out/${src//\//_}.o"); done
printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -I{} sh -c '
  obj="$0/$(echo "$1" | tr / _).o"
  $2 "$3" -std=c++20 -O2 -DNDEBUG -Wall -Wextra -ffp-contract=off -Isrc -c "$1" -o "$obj"' \
  "$out" {} "$launcher" "$CXX"
"$CXX" "${objects[@]}" -lgtest -lhwy -pthread -o "$out/simd_tests"
echo "qemu-check: $("$CXX" --version | head -1): SIMD tests built in $(( $(date +%s) - start )) s"

start=$(date +%s)
log="$out/qemu.log"
status=0
EXPO_TEST_SIMD_DISABLE=none qemu-x86_64 -cpu Haswell "$out/simd_tests" --gtest_brief=1 \
  > "$log" 2>&1 || status=$?
grep -v "TCG doesn't support requested feature" "$log" || true
echo "qemu-check: qemu-x86_64 -cpu Haswell ran them in $(( $(date +%s) - start )) s"
if [ "$status" != 0 ]; then
  echo "qemu-check: FAILED (exit status $status)" >&2
  exit 1
fi
# The point is AVX2 code on a CPU without AVX-512: make sure that is what ran.
available=$(sed -n 's/^EXPO_TEST_SIMD_DISABLE=none: .*available: //p' "$log")
case ",$available," in
  *,AVX3,*) echo "qemu-check: the emulated CPU offers AVX-512 ($available): nothing proven" >&2
            exit 1 ;;
  ,AVX2,*) ;;
  *) echo "qemu-check: AVX2 is not the emulated CPU's best target ($available)" >&2
     exit 1 ;;
esac
