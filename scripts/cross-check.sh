#!/usr/bin/env bash
# Compiles expo's sources for aarch64 with Debian's cross compiler
# (g++-aarch64-linux-gnu), to object files only: proves that the code builds on Arm, Highway's
# SIMD code for Arm (NEON; src/core/highway_config.h) included. Nothing is linked or run
# (there are no aarch64 libraries here to link with).
#
#   bash scripts/cross-check.sh            (CROSS_CXX: another compiler; JOBS: parallel jobs)
#   CROSS_LAYERS=all bash scripts/cross-check.sh   (every folder, not just the numeric core)
#
# By default the layers of the numeric core: src/core, src/io, src/merge and src/model (every
# SIMD kernel is there); test.sh runs that. CROSS_LAYERS names others ("core jinja text").
#
# Flags are the project's (C++20, -Wall -Wextra -ffp-contract=off, Release's -O3 -DNDEBUG).
# The cross compiler keeps its own target's C and C++ headers: the host's /usr/include (x86
# glibc) is never on its include path. Only the header-only libraries the sources need are
# linked into build-cross-aarch64/include, with expo/version.h generated as CMake would; the
# object files go to build-cross-aarch64/obj (ccache, when installed, makes reruns fast).
# Exits non-zero if any file fails to compile.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX="${CROSS_CXX:-aarch64-linux-gnu-g++}"
JOBS="${JOBS:-$(nproc)}"
if ! command -v "$CXX" >/dev/null; then
  echo "cross-check: $CXX not found (Debian: apt-get install g++-aarch64-linux-gnu)" >&2
  exit 1
fi

out=build-cross-aarch64
include="$out/include"
rm -rf "$out"
mkdir -p "$include/expo" "$out/obj"
# Header-only (or architecture-independent) library headers, one symlink each.
for h in hwy nlohmann CLI simdjson.h pcre2.h unicode; do
  if [ ! -e "/usr/include/$h" ]; then
    echo "cross-check: /usr/include/$h missing (scripts/install-deps.sh installs it)" >&2
    exit 1
  fi
  ln -s "/usr/include/$h" "$include/$h"
done
version=$(sed -n 's/^project(expo VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
sed "s/@PROJECT_VERSION@/$version/" src/core/version.h.in > "$include/expo/version.h"

# Every source, less the one that needs libcurl's headers (Debian installs them per
# architecture). cpp-httplib is header-only; it is compiled here without the OpenSSL, zlib and
# brotli options its pkg-config file adds on the host (their headers are per architecture too).
excluded=(src/http/openai_client.cpp)
sources=()
layers="${CROSS_LAYERS:-core io merge model}"
[ "$layers" = all ] && layers="core io merge model jinja text eval http pipeline serve demo cli"
for layer in $layers; do
  [ -d "src/$layer" ] || { echo "cross-check: no folder src/$layer" >&2; exit 1; }
done
for f in $(for layer in $layers; do echo src/"$layer"/*.cpp; done); do
  [[ " ${excluded[*]} " == *" $f "* ]] || sources+=("$f")
done

# One object file per source; prints "compiled FILE" or "FAILED FILE" with the compiler's output.
compile_one() {
  local src="$1" obj="$CROSS_OUT/obj/${1%.cpp}.o"
  mkdir -p "$(dirname "$obj")"
  if $CROSS_LAUNCHER "$CXX" -std=c++20 -O3 -DNDEBUG -Wall -Wextra -ffp-contract=off -Isrc \
      -isystem "$CROSS_OUT/include" -c "$src" -o "$obj" 2>"$obj.log"; then
    echo "  compiled $src"
  else
    echo "  FAILED   $src"
    status=1
  fi
  cat "$obj.log"
  return "${status:-0}"
}
export -f compile_one
export CXX CROSS_OUT="$out" CROSS_LAUNCHER=""
command -v ccache >/dev/null && CROSS_LAUNCHER=ccache

echo "cross-check: $("$CXX" --version | head -1), -std=c++20 -O3, ${#sources[@]} files" \
  "(left out, for libcurl's headers: ${excluded[*]})"
start=$(date +%s)
status=0
printf '%s\n' "${sources[@]}" | xargs -P "$JOBS" -n 1 bash -c 'compile_one "$0"' || status=$?
echo "cross-check: $(find "$out/obj" -name '*.o' | wc -l) of" \
  "${#sources[@]} object files for aarch64 in $(( $(date +%s) - start )) s"
if [ "$status" != 0 ]; then
  echo "cross-check: FAILED (aarch64 compile errors above)" >&2
  exit 1
fi
