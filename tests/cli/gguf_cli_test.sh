#!/usr/bin/env bash
# expo inspect on GGUF files as a user meets them: a fixture written by plain Python
# (tests/python/gguf_reference.py, independent of expo's writer) listed as text and JSON, found
# by its magic whatever its name, and corrupt files refused with exit 1 and the file named.
# Usage: bash tests/cli/gguf_cli_test.sh path/to/expo
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh" "${1:-build/expo}"
cd "$work"
$py "$here/../python/gguf_reference.py" write model.gguf

check "inspect lists metadata" bash -c "'$expo' inspect model.gguf | grep -qE '^tokenizer.ggml.tokens +array\[string\] +\[20 strings: \"tok0\", \"tok1\", .*, \.\.\.\]$'"
check "inspect quotes strings" bash -c "'$expo' inspect model.gguf | grep -qF '\"tiny \\\"fixture\\\"\"'"
check "inspect lists tensors" bash -c "'$expo' inspect model.gguf | grep -qE '^token_embd.weight +F16 +\[64, 3\] +\[3, 64\] +0 +384$'"
check "inspect lists K-quants" bash -c "'$expo' inspect model.gguf | grep -qE '^blk.0.ffn_down.weight +Q4_K +\[256, 1\] +\[1, 256\] +736 +144$'"
check "inspect totals" bash -c "'$expo' inspect model.gguf | grep -qx 'parameters: 576' && '$expo' inspect model.gguf | grep -qx 'format: GGUF version 3, alignment 32, data at byte 800'"
check "inspect --json" $py -c "
import json, subprocess, sys
j = json.loads(subprocess.run([sys.argv[1], 'inspect', 'model.gguf', '--json'], check=True,
                              capture_output=True, text=True).stdout)
assert j['format'] == 'gguf' and j['version'] == 3 and j['architecture'] == 'llama', j
md = {e['key']: e for e in j['metadata']}
assert md['tokenizer.ggml.tokens']['length'] == 20, md
assert md['llama.block_count'] == {'key': 'llama.block_count', 'type': 'uint32', 'value': 2}
assert [t['name'] for t in j['tensors']] == ['token_embd.weight', 'output_norm.weight',
                                              'blk.0.attn_q.weight', 'blk.0.ffn_down.weight']
t = j['tensors'][2]
assert (t['type'], t['dims'], t['shape'], t['offset'], t['bytes']) == ('Q8_0', [32, 2], [2, 32], 640, 68), t
" "$expo"
cp model.gguf renamed.bin
check "found by its magic" bash -c "'$expo' inspect renamed.bin | grep -q 'format: GGUF version 3'"

head -c 700 model.gguf >truncated.gguf
expect_error "truncated file" "expo: error: truncated.gguf: .*truncated" "$expo" inspect truncated.gguf
"$expo" inspect truncated.gguf >/dev/null 2>&1
status=$?
if [ $status -eq 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: exit $status, want 1"; fi
printf 'GGUX' | cat - <(tail -c +5 model.gguf) >magic.gguf
expect_error "bad magic" "magic.gguf: not a GGUF file" "$expo" inspect magic.gguf
$py - <<'PY'
import struct
data = bytearray(open("model.gguf", "rb").read())
data[4:8] = struct.pack(">I", 3)
open("bigendian.gguf", "wb").write(data)
PY
expect_error "big-endian" "bigendian.gguf: .*big-endian GGUF is not supported" "$expo" inspect bigendian.gguf
expect_error "--revision" "--revision applies to a cached repo id" "$expo" inspect model.gguf --revision main
# GGUF output: expo convert and expo extrapolate --format gguf on the demo's trained models.
demo="$here/../../demo/models"
check "convert the demo's SFT model" "$expo" convert --model "$demo/sft" --output sft.gguf
check "the converted file is a llama GGUF" bash -c "'$expo' inspect sft.gguf | grep -qE '^general.architecture +string +\"llama\"$'"
check "extrapolate --format gguf q8_0" "$expo" extrapolate --sft "$demo/sft" --aligned "$demo/dpo-10" --alpha 4 --format gguf --gguf-type q8_0 --output expo-4.gguf
check "provenance and Q8_0 tensors" bash -c "'$expo' inspect expo-4.gguf | grep -qE '^expo.alpha +string +\"4\"$' && '$expo' inspect expo-4.gguf | grep -qE '^blk.0.ffn_up.weight +Q8_0 '"
check "several alphas" "$expo" extrapolate --sft "$demo/sft" --aligned "$demo/dpo-10" --alpha 1,2 --output 'expo-{alpha}.gguf'
check "one file per alpha" test -f expo-1.gguf -a -f expo-2.gguf
expect_error "an existing output needs --force" "expo-4.gguf" "$expo" extrapolate --sft "$demo/sft" --aligned "$demo/dpo-10" --alpha 4 --format gguf --output expo-4.gguf
check "--force replaces it" "$expo" extrapolate --sft "$demo/sft" --aligned "$demo/dpo-10" --alpha 4 --format gguf --output expo-4.gguf --force
expect_error "a reward model is refused" "LlamaForSequenceClassification: a reward model" "$expo" convert --model "$demo/reward" --output reward.gguf
check "nothing written for it" test ! -e reward.gguf
check "no staging folder left" bash -c "! ls -A | grep -q expo-tmp"
usage() {  # usage NAME PATTERN COMMAND...: exit 2 with PATTERN
  local name="$1" pattern="$2"; shift 2
  "$@" >"$work/out" 2>"$work/err"
  local status=$?
  if [ $status -eq 2 ] && grep -qE -- "$pattern" "$work/err"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: $name (exit $status)"; sed 's/^/  | /' "$work/err" | head -5; fi
}
usage "--gguf-type q4_k" "--gguf-type: 'q4_k' is not one of f32, f16, bf16, q8_0" "$expo" convert --model "$demo/sft" --output x.gguf --gguf-type q4_k
usage "convert to a folder name" "a GGUF output is one file named \*.gguf" "$expo" convert --model "$demo/sft" --output x
usage "--gguf-type without gguf" "--gguf-type needs --format gguf" "$expo" extrapolate --sft "$demo/sft" --aligned "$demo/dpo-10" --alpha 1 --output out --gguf-type q8_0
usage "--dtype with gguf" "--dtype is for safetensors" "$expo" extrapolate --sft "$demo/sft" --aligned "$demo/dpo-10" --alpha 1 --output out.gguf --dtype bf16
usage "several alphas need {alpha}" "need \{alpha\}" "$expo" extrapolate --sft "$demo/sft" --aligned "$demo/dpo-10" --alpha 1,2 --output out.gguf
usage "--format xml" "--format: 'xml' is not safetensors or gguf" "$expo" extrapolate --sft "$demo/sft" --aligned "$demo/dpo-10" --alpha 1 --output out --format xml
# A GGUF pair: the demo's models converted, extrapolated directly.
check "convert dpo-10" "$expo" convert --model "$demo/dpo-10" --output dpo.gguf
check "extrapolate a GGUF pair" "$expo" extrapolate --sft sft.gguf --aligned dpo.gguf --alpha 4 --output pair-4.gguf --gguf-type q8_0
check "the GGUF pair's output keeps the tokenizer" bash -c "'$expo' inspect pair-4.gguf | grep -qE '^tokenizer.ggml.pre +string +\"gpt-2\"$'"
usage "one GGUF, one folder" "one is a GGUF file and the other is not" "$expo" extrapolate --sft sft.gguf --aligned "$demo/dpo-10" --alpha 1 --output x.gguf
usage "a GGUF pair to a folder" "a GGUF pair is written as GGUF" "$expo" extrapolate --sft sft.gguf --aligned dpo.gguf --alpha 1 --output x --format safetensors
# The engine reads GGUF: config, tokenizer and weights from the file.
head -n 6 "$demo/prompts.jsonl" >prompts.jsonl
check "generate on the folder" "$expo" generate --model "$demo/sft" --prompts prompts.jsonl --output hf.jsonl --greedy --max-new-tokens 20 --no-progress
check "generate on the converted GGUF (BF16, the source's type)" "$expo" generate --model sft.gguf --prompts prompts.jsonl --output gguf.jsonl --greedy --max-new-tokens 20 --no-progress
check "the same greedy answers, token for token" $py -c "
import json, sys
a = [json.loads(l) for l in open('hf.jsonl')]
b = [json.loads(l) for l in open('gguf.jsonl')]
assert len(a) == 6 and [x['id'] for x in a] == [x['id'] for x in b]
for x, y in zip(a, b):
    assert x['output'] == y['output'] and x['output_tokens'] == y['output_tokens'], (x, y)
    assert x['generator'] == 'sft' and y['generator'] == 'sft', (x, y)
"
check "tokenize with the GGUF's tokenizer" bash -c "[ \"\$('$expo' tokenize --tokenizer sft.gguf --text 'Add 4 and 2.')\" = \"\$('$expo' tokenize --tokenizer '$demo/sft' --text 'Add 4 and 2.')\" ]"
check "a Q8_0 GGUF generates" "$expo" generate --model expo-4.gguf --prompts prompts.jsonl --output q8.jsonl --greedy --max-new-tokens 20 --no-progress
check "generate on a GGUF pair (extrapolation on load)" "$expo" generate --sft sft.gguf --aligned dpo.gguf --alpha 4 --prompts prompts.jsonl --output pair.jsonl --greedy --max-new-tokens 20 --no-progress
check "search on a GGUF pair writes the best model as GGUF" "$expo" search --sft sft.gguf --aligned dpo.gguf --reward-model "$demo/reward" --prompts prompts.jsonl --alphas 0,4 --max-new-tokens 16 --output-dir search --write-best best.gguf --no-progress
check "the best model carries its alpha" bash -c "'$expo' inspect best.gguf | grep -qE '^expo.alpha +string +\"[04]\"$'"
expect_error "a GGUF without the hyperparameters is refused by key" "model.gguf: metadata key llama.embedding_length is missing" "$expo" generate --model model.gguf --prompt hi
finish
