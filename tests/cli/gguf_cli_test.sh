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
finish
