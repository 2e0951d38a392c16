#!/usr/bin/env bash
# Configures and builds expo (Release) into build/; the binary is build/expo. Uses ccache when
# it is installed, so a rebuild (or a build of a fresh clone on a machine that built expo
# before) compiles only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"  # hits across clones in other folders
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >/dev/null
cmake --build build -j"$(nproc)"
