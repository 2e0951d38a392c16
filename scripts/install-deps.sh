#!/usr/bin/env bash
# Installs what expo needs to build and test on Debian 12, from Debian's archive only.
# Skips apt entirely when everything is already there.
set -euo pipefail
packages=(
  build-essential cmake g++ pkg-config
  nlohmann-json3-dev libcli11-dev libgtest-dev   # JSON, command line, tests
  libhwy-dev                                     # Highway: SIMD kernels with run-time dispatch
  libpcre2-dev libicu-dev libsimdjson-dev        # tokenizers: regexes (JIT), NFC/NFKC, tokenizer.json
  libcurl4-openssl-dev libcpp-httplib-dev        # OpenAI-compatible client; expo serve
  python3 python3-numpy                          # independent numeric reference for tests/bench
  clang libclang-rt-14-dev                       # libFuzzer + sanitizers for fuzz/run.sh
  clang-format                                   # the format check (scripts/check-format.sh)
  g++-aarch64-linux-gnu                          # scripts/cross-check.sh (aarch64 compile)
  qemu-user                                      # sanitize.sh: SIMD tests on an AVX2-only CPU
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
