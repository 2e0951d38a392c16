#!/usr/bin/env bash
# PEFT LoRA adapters as a user meets them: expo extrapolate (full model, --output-adapter,
# --base), the engine commands (--sft MODEL --aligned ADAPTER, --model MODEL --adapter ADAPTER),
# expo serve, expo search on the built-in engine and with a server per candidate that loads
# scaled adapters ({adapter}), adapters in the Hugging Face cache, and the refusals. The
# arithmetic itself is checked bit for bit by tests/python/test_lora_reference.py.
# Usage: bash tests/cli/lora_cli_test.sh path/to/expo
set -u
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh" "${1:-build/expo}"
layout="$here/../python/peft_layout.py"
cd "$work"

# The demo's models (a Llama SFT model with a tokenizer and chat template, a reward model,
# prompts) and LoRA adapters over its SFT model, written as PEFT writes them.
check "demo models" "$expo" demo --planted --dir demo
S=demo/sft R=demo/reward P=demo/prompts.jsonl
check "adapter" $py "$layout" adapter ad --model $S --rank 8 --targets q_proj,v_proj,down_proj --seed 1
check "adapter 0 (for --base)" $py "$layout" adapter ad0 --model $S --rank 4 --targets q_proj,o_proj --seed 2
toks=1,2,3,4,5,6

# extrapolate: a full model, and the scaled adapter.
check "extrapolate an adapter" "$expo" extrapolate --sft $S --aligned ad --alpha 0,2 --output 'full-{alpha}'
check "full model files" bash -c "test -f full-2/model.safetensors -a -f full-2/config.json -a -f full-2/tokenizer.json && grep -q 'adapter' full-2/README.md"
check "output adapter" "$expo" extrapolate --sft $S --aligned ad --alpha 2 --output ad-2 --output-adapter
check "output adapter files" bash -c "test -f ad-2/adapter_model.safetensors -a ! -e ad-2/model.safetensors && cmp ad/adapter_config.json ad-2/adapter_config.json"
check "dry run" "$expo" extrapolate --sft $S --aligned ad --alpha 2 --output x --dry-run
check "dry run lists LoRA tensors" grep -q 'LoRA-adapted' "$work/last.out"
check "nothing written by a dry run" test ! -e x

# The engine: extrapolation on load equals the written model, logits bit for bit.
check "forward --aligned ADAPTER" "$expo" forward --sft $S --aligned ad --alpha 2 --tokens $toks --output a.npy
check "forward on the written model" "$expo" forward --model full-2 --tokens $toks --output b.npy
check "same logits" cmp a.npy b.npy
check "forward --model --adapter" "$expo" forward --model $S --adapter ad --tokens $toks --output c.npy
check "forward on alpha 0" "$expo" forward --model full-0 --tokens $toks --output d.npy
check "--adapter is alpha 0" cmp c.npy d.npy
check "forward with the scaled adapter" "$expo" forward --model $S --adapter ad-2 --tokens $toks --output e.npy
check "scaled adapter = full model (to rounding of lora_B)" $py -c "
import numpy as np
a, e = np.load('a.npy'), np.load('e.npy')
assert np.abs(a - e).max() <= 1e-2 * np.abs(a).max(), np.abs(a - e).max()"
check "generate --aligned ADAPTER" "$expo" generate --sft $S --aligned ad --alpha 2 --prompts $P --max-new-tokens 8 --output g1.jsonl
check "generate on the written model" "$expo" generate --model full-2 --prompts $P --max-new-tokens 8 --output g2.jsonl
check "same answers" $py -c "
import json
a = [json.loads(l)['output'] for l in open('g1.jsonl')]
b = [json.loads(l)['output'] for l in open('g2.jsonl')]
assert a == b"

# Two adapters over a base.
check "extrapolate --base" "$expo" extrapolate --base $S --sft ad0 --aligned ad --alpha 1.5 --output two
check "forward --base" "$expo" forward --base $S --sft ad0 --aligned ad --alpha 1.5 --tokens $toks --output f.npy
check "forward on the --base output" "$expo" forward --model two --tokens $toks --output h.npy
check "--base on load = written" cmp f.npy h.npy

# expo serve with an adapter applied on load: named after the adapter.
if start_server serve.log "$expo" serve --model $S --adapter ad --port 0 --threads 2; then
  check "served name" bash -c "curl -sf http://127.0.0.1:$port/v1/models | grep -q '\"id\":\"ad\"'"
  check "chat through the adapter" bash -c "[ \"\$(curl -s -o chat.json -w '%{http_code}' -d '{\"model\":\"ad\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4}' http://127.0.0.1:$port/v1/chat/completions)\" = 200 ]"
  kill $server_pid; wait $server_pid 2>/dev/null
fi

# expo search with an adapter as aligned: built-in engine; alpha 0 is the SFT model plus the
# adapter, as expo generate --model S --adapter ad answers.
# Greedy, so that the served answers (sampled with the client's per-request seeds) are
# comparable with the engine's.
common=(--sft $S --aligned ad --reward-model $R --prompts $P --max-new-tokens 8 --temperature 0)
check "search on the engine" "$expo" search "${common[@]}" --alphas 2 --output-dir s1
check "generate --model --adapter" "$expo" generate --model $S --adapter ad --prompts $P --max-new-tokens 8 --temperature 0 --output g0.jsonl
check "generate greedy --aligned ADAPTER" "$expo" generate --sft $S --aligned ad --alpha 2 --prompts $P --max-new-tokens 8 --temperature 0 --output g1t.jsonl
check "alpha 0 = SFT + adapter" $py -c "
import json
a = [json.loads(l)['output'] for l in open('s1/alpha-0/answers.jsonl')]
b = [json.loads(l)['output'] for l in open('g0.jsonl')]
assert a == b"
check "alpha 2 = the extrapolated model" $py -c "
import json
a = [json.loads(l)['output'] for l in open('s1/alpha-2/answers.jsonl')]
b = [json.loads(l)['output'] for l in open('g1t.jsonl')]
assert a == b"
# A server per candidate that keeps the SFT model and loads each candidate as an adapter.
check "search --serve with {adapter}" "$expo" search "${common[@]}" --alphas 2 --output-dir s2 \
  --backend openai --serve "'$expo' serve --model {model} --adapter {adapter} --port {port} --threads 2" --keep
check "candidate is a scaled adapter" bash -c "test -f s2/candidates/alpha-2/adapter_model.safetensors -a -f s2/candidates/alpha-2/adapter_config.json -a ! -e s2/candidates/alpha-2/model.safetensors"
check "alpha 0 served = SFT + adapter" $py -c "
import json
a = [json.loads(l)['output'] for l in open('s2/alpha-0/answers.jsonl')]
b = [json.loads(l)['output'] for l in open('g0.jsonl')]
assert a == b"
expect_error "{adapter} needs an adapter" "\{adapter\} needs --aligned to be a PEFT LoRA adapter" \
  "$expo" search --sft $S --aligned demo/aligned --reward-model $R --prompts $P --alphas 2 \
  --output-dir s3 --backend openai --serve "x {model} {adapter} {port}"

# A reward model's adapter (its score head in modules_to_save), applied by expo score.
check "reward adapter" $py "$layout" adapter rad --model $R --rank 4 --targets q_proj,v_proj --modules-to-save score --seed 3
check "score --adapter" "$expo" score --reward-model $R --adapter rad --answers g0.jsonl --output r1.jsonl
check "the reward model with its adapter merged" "$expo" extrapolate --sft $R --aligned rad --alpha 0 --output rm0
check "score on it" "$expo" score --reward-model rm0 --answers g0.jsonl --output r2.jsonl
check "same rewards" $py -c "
import json
a = [json.loads(l)['reward'] for l in open('r1.jsonl')]
b = [json.loads(l)['reward'] for l in open('r2.jsonl')]
assert a == b and len(a) > 0"

# An adapter in the Hugging Face cache, by repo id.
hub="$work/hub/models--org--lora"
mkdir -p "$hub/blobs" "$hub/snapshots/c0ffee" "$hub/refs"
for f in ad/*; do
  cp "$f" "$hub/blobs/$(basename "$f").blob"
  ln -s "../../blobs/$(basename "$f").blob" "$hub/snapshots/c0ffee/$(basename "$f")"
done
echo c0ffee > "$hub/refs/main"
check "adapter by repo id" env HF_HUB_CACHE="$work/hub" "$expo" extrapolate --sft $S --aligned org/lora --alpha 2 --output hub-2
check "repo id = folder" $py -c "
import json, struct
def data(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n]); h.pop('__metadata__')
    return h, b[8 + n:]
assert data('hub-2/model.safetensors') == data('full-2/model.safetensors')"

# Refusals: a clear error, exit 1 (2 for a bad command line), nothing written.
expect_error "--adapter without --model" "--adapter applies a LoRA adapter to --model" "$expo" forward --sft $S --adapter ad --tokens 1 --output z.npy
expect_error "--adapter that is not one" "not a PEFT adapter folder" "$expo" forward --model $S --adapter demo/aligned --tokens 1 --output z.npy
expect_error "--sft adapter without --base" "is a PEFT adapter: give the model it was trained on as --base" "$expo" extrapolate --sft ad0 --aligned ad --alpha 1 --output y
expect_error "--base with full models" "must both be PEFT adapters" "$expo" extrapolate --base $S --sft $S --aligned ad --alpha 1 --output y
expect_error "--output-adapter with full models" "--output-adapter needs --aligned to be a PEFT adapter" "$expo" extrapolate --sft $S --aligned demo/aligned --alpha 1 --output y --output-adapter
check "exit 2 for it" bash -c "'$expo' extrapolate --sft $S --aligned demo/aligned --alpha 1 --output y --output-adapter 2>/dev/null; [ \$? -eq 2 ]"
expect_error "--on-missing with an adapter" "--on-missing applies to two full checkpoints" "$expo" extrapolate --sft $S --aligned ad --alpha 1 --output y --on-missing copy-aligned
cp -r ad dora && $py -c "
import json; c = json.load(open('dora/adapter_config.json')); c['use_dora'] = True
json.dump(c, open('dora/adapter_config.json', 'w'))"
expect_error "DoRA" "adapter_config.json: use_dora is true: DoRA" "$expo" extrapolate --sft $S --aligned dora --alpha 1 --output y
cp -r ad wrongbase && $py -c "
import json; c = json.load(open('wrongbase/adapter_config.json')); c['base_model_name_or_path'] = 'someone/other-model'
json.dump(c, open('wrongbase/adapter_config.json', 'w'))"
check "another base model is a warning" "$expo" extrapolate --sft $S --aligned wrongbase --alpha 1 --output y
check "the warning names it" grep -q "warning: .*base_model_name_or_path is 'someone/other-model'" "$work/last.err"
check "no output left by the refusals" bash -c "test ! -e x"
finish
