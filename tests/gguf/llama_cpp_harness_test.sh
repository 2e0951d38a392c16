#!/usr/bin/env bash
# The real llama.cpp harness (tests/gguf/llama_cpp_ref.mjs, node-llama-cpp from
# scripts/install-npm-deps.sh) on the tiny llama GGUF of make_tiny_gguf.py: llama.cpp agrees with
# the float64 numpy reference (tokens, greedy tokens, logits; llama_cpp_agreement.py), refuses a
# truncated file with its own message, and the decode benchmark reports its figures. Skipped
# without node or the npm packages (a failure in CI, CI=true).
# Usage: llama_cpp_harness_test.sh PATH/TO/expo
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../cli/lib.sh" "${1:-build/expo}"
ref="$here/llama_cpp_ref.mjs"

if ! command -v node >/dev/null 2>&1 || [ ! -f "$here/node_modules/node-llama-cpp/package.json" ]; then
  skipped "llama.cpp harness: node or tests/gguf/node_modules missing (run bash scripts/install-npm-deps.sh)"
  finish
fi

check "llama.cpp agrees with the numpy reference" $py "$here/llama_cpp_agreement.py" --json "$work/figures.json"
sed 's/^/  /' "$work/last.out"

$py "$here/make_tiny_gguf.py" "$work/tiny.gguf"
head -c 100000 "$work/tiny.gguf" >"$work/truncated.gguf"
echo '["hello"]' >"$work/texts.json"
expect_error "a truncated GGUF: exit 1 with llama.cpp's message" "not within the file bounds" \
  node "$ref" --model "$work/truncated.gguf" --tokenize "$work/texts.json"
expect_error "a missing model file" "failed to load" node "$ref" --model "$work/none.gguf" --tokenize "$work/texts.json"
expect_error "no mode" "usage" node "$ref" --model "$work/tiny.gguf"

check "decode benchmark" node "$ref" --model "$work/tiny.gguf" --bench-decode 16 --prompt-tokens 32 --runs 2
check "decode benchmark figures" $py -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["decode_tokens_per_s"] > 0 and d["prefill_tokens_per_s"] > 0, d
assert len(d["decode_runs"]) == 2 and d["build"]["build_type"] == "prebuilt", d
assert d["build"]["gpu"] is False and d["llama_log"] == [], d
' "$work/last.out"
finish
