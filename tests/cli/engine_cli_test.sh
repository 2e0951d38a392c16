#!/usr/bin/env bash
# expo forward and expo generate as a user meets them: outputs, options, and clear errors for
# bad prompts and bad models, with finished results kept.
# Usage: bash tests/cli/engine_cli_test.sh path/to/expo
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh" "${1:-build/expo}"

cd "$work"
"$expo" demo --planted --dir demo >/dev/null 2>&1 || { echo "FAIL: demo models"; exit 1; }
M=demo/aligned

check "forward" "$expo" forward --model $M --tokens 1,2,3,4 --output logits.npy
check "forward shape" $py -c "
import numpy as np; a = np.load('logits.npy'); assert a.dtype == np.float32 and a.shape == (4, 259), a.shape"
check "forward extrapolated on load" "$expo" forward --sft demo/sft --aligned $M --alpha 0.3 --tokens 1,2,3,4 --output x.npy
"$expo" extrapolate --sft demo/sft --aligned $M --alpha 0.3 --output demo/expo-alpha0.3 >/dev/null
check "forward on the written model agrees" "$expo" forward --model demo/expo-alpha0.3 --tokens 1,2,3,4 --output w.npy
check "extrapolation on load = expo extrapolate" $py -c "
import numpy as np; assert (np.load('x.npy') == np.load('w.npy')).all()"
expect_error "bad token list" "--tokens.*x" "$expo" forward --model $M --tokens 1,x --output l.npy
expect_error "token out of vocab" "token id 259 at position 1 is out of range" "$expo" forward --model $M --tokens 1,259 --output l.npy
expect_error "both model forms" "either --model" "$expo" forward --model $M --sft demo/sft --tokens 1 --output l.npy
expect_error "incomplete extrapolation" "needs all of --sft, --aligned and --alpha" "$expo" forward --sft demo/sft --tokens 1 --output l.npy
expect_error "max memory" "needs about .* --max-memory is" "$expo" forward --model $M --tokens 1,2 --output l.npy --max-memory 100KB
check "nothing written on error" test ! -e l.npy

printf '{"id": "a", "tokens": [1, 5, 9]}\n\n{"id": 7, "tokens": [3]}\n{"tokens": [4, 4, 4, 4]}\n' > prompts.jsonl
check "generate" "$expo" generate --model $M --tokens-file prompts.jsonl --output out.jsonl --max-new-tokens 5 --ignore-eos
check "generate output" $py -c "
import json
rows = [json.loads(l) for l in open('out.jsonl')]
assert sorted(map(str, (r['id'] for r in rows))) == ['2', '7', 'a'], rows
assert all(len(r['tokens']) == 5 and r['finish_reason'] == 'length' for r in rows), rows"
check "greedy, batch 1, one thread" "$expo" generate --model $M --tokens-file prompts.jsonl --output g1.jsonl --max-new-tokens 6 --greedy --batch-size 1 --threads 1
check "greedy, batched" "$expo" generate --model $M --tokens-file prompts.jsonl --output g2.jsonl --max-new-tokens 6 --greedy --batch-size 8
check "same tokens batched or not" $py -c "
import json
a = {str(json.loads(l)['id']): json.loads(l)['tokens'] for l in open('g1.jsonl')}
b = {str(json.loads(l)['id']): json.loads(l)['tokens'] for l in open('g2.jsonl')}
assert a == b, (a, b)"
check "seeded sampling twice" bash -c "'$expo' generate --model $M --tokens-file prompts.jsonl --output s1.jsonl --max-new-tokens 8 --seed 3 --temperature 1 --batch-size 1 && '$expo' generate --model $M --tokens-file prompts.jsonl --output s2.jsonl --max-new-tokens 8 --seed 3 --temperature 1 --batch-size 3 --threads 1 && diff <(sort s1.jsonl) <(sort s2.jsonl)"
check "extrapolated generate" "$expo" generate --sft demo/sft --aligned $M --alpha 0.5 --tokens-file prompts.jsonl --output e.jsonl --max-new-tokens 3

printf '{"id": 1, "tokens": [1, 2]}\n{"id": 2, "tokens": [1, 2\n' > broken.jsonl
expect_error "malformed JSONL names the line" "broken.jsonl:2: malformed JSON" "$expo" generate --model $M --tokens-file broken.jsonl --output o.jsonl
printf '{"id": 1, "tokens": []}\n' > empty_prompt.jsonl
expect_error "empty prompt" "empty_prompt.jsonl:1: the prompt has no tokens" "$expo" generate --model $M --tokens-file empty_prompt.jsonl --output o.jsonl
printf '{"id": 1, "tokens": [1, 1999]}\n' > oov.jsonl
expect_error "token id out of vocab" "oov.jsonl:1: token 1 is 1999, outside the vocabulary of 259" "$expo" generate --model $M --tokens-file oov.jsonl --output o.jsonl
: > nothing.jsonl
expect_error "empty prompt file" "nothing.jsonl: no prompts" "$expo" generate --model $M --tokens-file nothing.jsonl --output o.jsonl
printf '{"id": 1, "text": "hi"}\n' > notokens.jsonl
expect_error "no tokens field" "notokens.jsonl:1: no \"tokens\" array" "$expo" generate --model $M --tokens-file notokens.jsonl --output o.jsonl
$py -c "import json; print(json.dumps({'id': 1, 'tokens': [1] * 5000}))" > long.jsonl
expect_error "prompt longer than the context" "long.jsonl:1: the prompt has 5000 tokens, but the model's context is 2048" "$expo" generate --model $M --tokens-file long.jsonl --output o.jsonl
expect_error "bad sampling option" "--top-p" "$expo" generate --model $M --tokens-file prompts.jsonl --output o.jsonl --top-p 1.5
check "no output on early errors" test ! -e o.jsonl

# Text prompts: each answer goes to OUT.partial.jsonl as it finishes; after kill -9, --resume
# generates only the rest and writes the same file as a run that was never interrupted.
gen=(--model $M --prompts demo/prompts.jsonl --format alpaca_eval --max-new-tokens 200 --ignore-eos --batch-size 2 --seed 5)
check "answers in one go" "$expo" generate "${gen[@]}" --output whole.json
check "no partial file left" test ! -e whole.json.partial.jsonl
"$expo" generate "${gen[@]}" --output killed.json >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1200); do
  [ "$(wc -l 2>/dev/null < killed.json.partial.jsonl || echo 0)" -ge 2 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
# While it runs, a second generate to the same output is refused (even with --resume), rather
# than interleaving its answers with the first one's.
expect_error "a second generate to the same --output" "killed.json.partial.jsonl is in use: another expo generate is writing the same --output" "$expo" generate "${gen[@]}" --output killed.json --resume
kill -9 $pid; wait $pid 2>/dev/null
check "killed: answers kept as they finished" $py -c "
import json
lines = [json.loads(l) for l in open('killed.json.partial.jsonl') if l.endswith('\\n')]
assert 'settings' in lines[0] and 2 <= len(lines) < 17, len(lines)
assert all(len(x['turns']) == 1 for x in lines[1:])"
check "killed: no final file" test ! -e killed.json
expect_error "a rerun without --resume" "killed.json.partial.jsonl holds the answers of an interrupted run: pass --resume .* or --force" "$expo" generate "${gen[@]}" --output killed.json
expect_error "--resume with other settings" "--temperature: was 0.7, now 1" "$expo" generate "${gen[@]}" --output killed.json --resume --temperature 1
check "--resume" "$expo" generate "${gen[@]}" --output killed.json --resume
check "--resume says what it kept" grep -qE "[0-9]+ of 16 prompts answered in killed.json.partial.jsonl" "$work/last.err"
check "resumed = uninterrupted" cmp whole.json killed.json
check "partial file removed" test ! -e killed.json.partial.jsonl
check "--force starts over" bash -c "cp whole.json w2.json && printf '{\"expo_partial_answers\": 1, \"settings\": {}}\n' > w2.json.partial.jsonl && '$expo' generate ${gen[*]} --output w2.json --force && cmp whole.json w2.json && test ! -e w2.json.partial.jsonl"
check "same model twice: a warning" "$expo" generate --sft $M --aligned $M --alpha 0.5 --prompt hi --max-new-tokens 2
check "  ...naming both" grep -q "warning: --sft $M and --aligned $M are the same model" "$work/last.err"

# Unsupported architecture and config values are named.
cp -r $M bad
sed -i 's/LlamaForCausalLM/GPT2LMHeadModel/' bad/config.json
expect_error "unsupported architecture" "GPT2LMHeadModel is not supported.*LlamaForCausalLM" "$expo" forward --model bad --tokens 1 --output l.npy

# A generation killed midway keeps the prompts that finished.
$py -c "
import json
for i in range(40): print(json.dumps({'id': i, 'tokens': [1 + i % 50, 2, 3]}))" > many.jsonl
"$expo" generate --model $M --tokens-file many.jsonl --output part.jsonl --max-new-tokens 1000 --ignore-eos --batch-size 2 >/dev/null 2>"$work/err" &
pid=$!
# Interrupt once the first prompt has finished (its line is written), however loaded the machine.
for _ in $(seq 1200); do
  [ "$(wc -l 2>/dev/null < part.jsonl || echo 0)" -ge 1 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
kill -INT $pid
wait $pid
status=$?
lines=$(wc -l < part.jsonl)
if [ $status -eq 130 ] && [ "$lines" -ge 1 ] && [ "$lines" -lt 40 ] && grep -q "results were written to part.jsonl" "$work/err" && $py -c "
import json; [json.loads(l) for l in open('part.jsonl')]"; then
  passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: interrupted generate (exit $status, $lines lines)"; cat "$work/err"; fi

finish
