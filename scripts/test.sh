#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install dependencies, build, run every test
# (GoogleTest suite, numpy reference test, command-line tests via ctest), then fuzz the
# safetensors header parser under ASan/UBSan for FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure -j2)
bash fuzz/run.sh "${FUZZ_SECONDS:-60}"
