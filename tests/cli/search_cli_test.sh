#!/usr/bin/env bash
# expo demo, expo search, expo score and the openai backend as a user meets them: the whole
# pipeline on generated tiny models (built-in engine, and servers on loopback), resuming,
# answer formats, and clear errors.
# Usage: bash tests/cli/search_cli_test.sh path/to/expo
set -u
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh" "${1:-build/expo}"
cd "$work"

# The demo: the whole pipeline, well under a minute.
start=$(date +%s)
check "demo" "$expo" demo --planted --dir demo
took=$(( $(date +%s) - start ))
cp "$work/last.out" demo.out
check "demo under a minute ($took s)" test "$took" -lt 60
check "demo prints the table and the plot" bash -c "grep -q '| alpha | mean reward' demo.out && grep -q 'plot: *demo/search/reward_vs_alpha.svg' demo.out && grep -q '^best alpha: ' demo.out"
check "demo files" test -f demo/search/report.md -a -f demo/search/reward_vs_alpha.svg -a -f demo/search/results.jsonl -a -f demo/expo-best/config.json -a -f demo/expo-best/tokenizer.json
expect_error "demo twice" "--force" "$expo" demo --planted --dir demo
S=demo/sft A=demo/aligned R=demo/reward P=demo/prompts.jsonl
common=(--sft $S --aligned $A --reward-model $R --max-new-tokens 12)

# A grid search: one results line per alpha, answers and rewards per alpha, the report.
check "grid search" "$expo" search "${common[@]}" --prompts $P --alphas 0.5,0.1 --output-dir g
cp "$work/last.out" g.out
check "alpha 0 added, in results.jsonl" $py -c "
import json; r = [json.loads(l) for l in open('g/results.jsonl')]
assert [x['alpha'] for x in r] == [0, 0.5, 0.1], [x['alpha'] for x in r]
assert all(len(x['rewards']) == 16 for x in r)"
check "per-alpha files" test -f g/alpha-0/answers.jsonl -a -f g/alpha-0.5/rewards.jsonl -a -f g/alpha-0.1/answers.jsonl -a -f g/report.md
check "table on stdout" grep -q '| \*\*0\(\.[15]\)\?\*\* (best)' g.out

# Paired and reproducible: alpha 0's answers are those of expo generate on the aligned model.
check "generate on the aligned model" "$expo" generate --model $A --prompts $P --max-new-tokens 12 --output gen.jsonl
check "alpha 0 = the aligned model's answers" $py -c "
import json
a = [json.loads(l)['output'] for l in open('g/alpha-0/answers.jsonl')]
b = [json.loads(l)['output'] for l in open('gen.jsonl')]
assert a == b"
check "extrapolation on load answers" "$expo" generate --sft $S --aligned $A --alpha 0.5 --prompts $P --max-new-tokens 12 --output gen05.jsonl
check "alpha 0.5 = extrapolated model's answers" $py -c "
import json
a = [json.loads(l)['output'] for l in open('g/alpha-0.5/answers.jsonl')]
b = [json.loads(l)['output'] for l in open('gen05.jsonl')]
assert a == b"

# expo score gives the rewards the search recorded.
check "score" "$expo" score --reward-model $R --answers g/alpha-0.5/answers.jsonl --output r.jsonl --summary s.json
cp "$work/last.out" score.out
check "score prints a summary" grep -qE 'mean reward: +-?[0-9.]+ \+- [0-9.]+' score.out
check "score = search rewards" $py -c "
import json
a = [json.loads(l)['reward'] for l in open('r.jsonl')]
b = [json.loads(l)['reward'] for l in open('g/alpha-0.5/rewards.jsonl')]
assert a == b and len(a) == 16
s = json.load(open('s.json')); assert abs(s['mean_reward'] - sum(a) / 16) < 1e-9 and s['mean_answer_tokens'] > 0"
expect_error "score: not a reward model" "is not a reward model" "$expo" score --reward-model $A --answers g/alpha-0/answers.jsonl --output r2.jsonl
expect_error "score: mt-bench answers need prompts" "--prompts" bash -c "echo '{\"question_id\": 1, \"model_id\": \"m\", \"choices\": [{\"index\": 0, \"turns\": [\"a\"]}]}' > mt.jsonl && '$expo' score --reward-model $R --answers mt.jsonl --output r3.jsonl"

# Resume: finished alphas are taken from results.jsonl; without --resume the folder is refused.
expect_error "existing results need --resume" "--resume" "$expo" search "${common[@]}" --prompts $P --alphas 0.5 --output-dir g
check "resume" "$expo" search "${common[@]}" --prompts $P --alphas 0,0.1,0.5,1 --output-dir g --resume
check "resume evaluates only the new alpha" grep -q '1 evaluated now, 3 from results.jsonl' "$work/last.out"
# A crash in the middle of writing a results line: dropped with a warning, the alpha redone.
head -c -40 g/results.jsonl > cut && mv cut g/results.jsonl
check "resume after a torn line" "$expo" search "${common[@]}" --prompts $P --alphas 0,0.1,0.5,1 --output-dir g --resume
cp "$work/last.err" torn.err
check "torn line reported" grep -q 'warning: .*truncated' torn.err
check "its complete answers are reused" grep -q 'reused the complete answers' torn.err

# The settings are recorded in D/fingerprint.json; a resume with other ones is refused, naming
# each difference, whatever the alphas; threads and progress are not settings.
check "fingerprint written" grep -q '"--max-new-tokens": "12"' g/fingerprint.json
expect_error "resume with another --max-new-tokens" "--max-new-tokens: was 12, now 32" "$expo" search --sft $S --aligned $A --reward-model $R --max-new-tokens 32 --prompts $P --alphas 0.5 --output-dir g --resume
expect_error "resume with --sft and --aligned swapped" "--sft: was [^ ]*/demo/sft, content [0-9a-f]{16}.*now [^ ]*/demo/aligned" "$expo" search --sft $A --aligned $S --reward-model $R --max-new-tokens 12 --prompts $P --alphas 0.5 --output-dir g --resume
grep -q -- '--aligned: was' "$work/last.err" || { failed=$((failed + 1)); echo "FAIL: the swap names --aligned too"; }
expect_error "resume with another --seed and --temperature" "--temperature: was 0.7, now 0.5" "$expo" search "${common[@]}" --seed 7 --temperature 0.5 --prompts $P --alphas 0.5 --output-dir g --resume
grep -q -- '--seed: was 42, now 7' "$work/last.err" || { failed=$((failed + 1)); echo "FAIL: the seed is named"; }
check "resume with other threads and progress" "$expo" search "${common[@]}" --prompts $P --alphas 0.5 --output-dir g --resume --threads 1 --progress
head -3 $P > few.jsonl
check "search on 3 prompts" "$expo" search "${common[@]}" --prompts few.jsonl --alphas 0.5 --output-dir fp
sed -i '2s/"prompt":"/"prompt":"Now: /' few.jsonl
expect_error "resume after the prompts changed" "--prompts: was 3 prompts, content [0-9a-f]{16}, now 3 prompts, content" "$expo" search "${common[@]}" --prompts few.jsonl --alphas 0.5 --output-dir fp --resume
check "results untouched by a refused resume" test "$(wc -l < fp/results.jsonl)" -eq 2
rm fp/fingerprint.json
expect_error "results without a fingerprint" "fp holds results but no fingerprint.json.*another --output-dir" "$expo" search "${common[@]}" --prompts few.jsonl --alphas 0.5 --output-dir fp --resume

# One search per folder at a time: a second one is refused naming the first one's PID; kill -9
# leaves no stale lock.
"$expo" search --sft $S --aligned $A --reward-model $R --prompts $P --limit 2 --alphas 0,1,2,3,4,5,6,7,8,9 --max-new-tokens 400 --ignore-eos --output-dir lk >/dev/null 2>lk.err &
pid=$!
for _ in $(seq 600); do [ -s lk/.expo.lock ] && break; sleep 0.05; done
expect_error "second search in the same folder" "--output-dir lk is in use: another expo search \(PID $pid\)" "$expo" search --sft $S --aligned $A --reward-model $R --prompts $P --limit 2 --alphas 0,1,2,3,4,5,6,7,8,9 --max-new-tokens 400 --ignore-eos --output-dir lk --resume
check "the first search is still running" kill -0 $pid
kill -9 $pid; wait $pid 2>/dev/null
check "after kill -9 the folder is free" "$expo" search --sft $S --aligned $A --reward-model $R --prompts $P --limit 2 --alphas 0 --max-new-tokens 400 --ignore-eos --output-dir lk --resume

# Ctrl-C: exit 130, the finished alphas kept, and the way to continue said.
"$expo" search --sft $S --aligned $A --reward-model $R --prompts $P --alphas 0,1,2,3,4,5,6,7,8,9 --max-new-tokens 300 --ignore-eos --output-dir int >/dev/null 2>int.err &
pid=$!
for _ in $(seq 600); do [ -s int/results.jsonl ] && break; sleep 0.05; done
kill -INT $pid; wait $pid; status=$?
check "Ctrl-C exits 130" test $status -eq 130
check "Ctrl-C says what was kept" grep -qE 'interrupted by a signal \([0-9]+ alphas? (is|are) saved in int/results.jsonl; run the same command with --resume' int.err
check "Ctrl-C resume" "$expo" search --sft $S --aligned $A --reward-model $R --prompts $P --alphas 0,1 --max-new-tokens 300 --ignore-eos --output-dir int --resume

# --auto: the log scan and refinement, with --limit and --shuffle, and the best model written.
check "auto search" "$expo" search "${common[@]}" --prompts $P --limit 6 --shuffle --seed 3 --auto --max-evals 9 --output-dir auto --write-best best
cp "$work/last.out" auto.out
check "auto: at most --max-evals alphas, 6 prompts" $py -c "
import json; r = [json.loads(l) for l in open('auto/results.jsonl')]
assert 2 <= len(r) <= 9 and r[0]['alpha'] == 0 and r[1]['alpha'] == 0.1, [x['alpha'] for x in r]
assert all(len(x['ids']) == 6 for x in r) and r[0]['ids'] != [str(i) for i in range(6)]"
check "best model written" bash -c "grep -q '^best model: best' auto.out && '$expo' inspect best | grep -q LlamaForCausalLM"

# The ecosystem's formats: AlpacaEval in, model_outputs.json out; MT-Bench's second turn.
$py -c "
import json
json.dump([{'instruction': 'Name a color.', 'dataset': 'helpful_base'}, {'instruction': 'Say hi.', 'dataset': 'oasst'}], open('alpaca.json', 'w'))
with open('question.jsonl', 'w') as f:
    f.write(json.dumps({'question_id': 81, 'category': 'writing', 'turns': ['Write a poem.', 'Make it shorter.']}) + '\n')
    f.write(json.dumps({'question_id': 82, 'category': 'math', 'turns': ['2+2?', 'And 3+3?']}) + '\n')"
check "alpaca_eval search" "$expo" search "${common[@]}" --prompts alpaca.json --alphas 0.3 --output-dir ae
check "model_outputs.json" $py -c "
import json; o = json.load(open('ae/alpha-0.3/model_outputs.json'))
assert [x['instruction'] for x in o] == ['Name a color.', 'Say hi.'] and o[1]['dataset'] == 'oasst'
assert all(set(x) >= {'instruction', 'output', 'generator', 'dataset'} for x in o)"
check "mt_bench search" "$expo" search "${common[@]}" --prompts question.jsonl --alphas 0.3 --output-dir mt
check "mt_bench answers: two turns" $py -c "
import json, glob; f = glob.glob('mt/alpha-0.3/*.jsonl'); f.remove('mt/alpha-0.3/rewards.jsonl')
a = [json.loads(l) for l in open(f[0])]
assert [x['question_id'] for x in a] == [81, 82] and all(len(x['choices'][0]['turns']) == 2 for x in a)
assert len(a[0]['answer_id']) == 22 and 'tstamp' in a[0]"

# Errors name what is wrong, and leave no results behind.
$py "$here/../../bench/make_model.py" --out other/sft --hidden 64 --layers 4 --intermediate 344 --heads 8 --kv-heads 4 --vocab 259 2>/dev/null
expect_error "no prompts file" "nope.jsonl" "$expo" search "${common[@]}" --prompts nope.jsonl --alphas 0.1 --output-dir e1
printf '{"prompt": "a"}\n{"prompt": 3}\n' > badp.jsonl
expect_error "bad prompt line" "badp.jsonl:2" "$expo" search "${common[@]}" --prompts badp.jsonl --alphas 0.1 --output-dir e2
expect_error "reward model that is not one" "is not a reward model" "$expo" search --sft $S --aligned $A --reward-model $A --prompts $P --alphas 0.1 --output-dir e3
expect_error "negative alpha" "negative" "$expo" search "${common[@]}" --prompts $P --alphas 0.1,-1 --output-dir e4
expect_error "alphas and auto" "not both" "$expo" search "${common[@]}" --prompts $P --alphas 0.1 --auto --output-dir e5
expect_error "reward model as policy" "reward model" "$expo" search --sft $R --aligned $R --reward-model $R --prompts $P --alphas 0.1 --output-dir e6
expect_error "the same checkpoint twice" "--sft $A and --aligned $A are the same model \(both are [^ ]*/demo/aligned\): theta1 - theta0 is zero" "$expo" search --sft $A --aligned $A --reward-model $R --prompts $P --alphas 0.1 --output-dir e8
cp -r $A copy-of-aligned
expect_error "a byte-identical copy" "--sft copy-of-aligned and --aligned $A are the same model \(their weights are byte for byte identical\)" "$expo" search --sft copy-of-aligned --aligned $A --reward-model $R --prompts $P --alphas 0.1 --output-dir e9
check "extrapolate: the same model twice is a warning" "$expo" extrapolate --sft copy-of-aligned --aligned $A --alpha 0.5 --output same-x
check "  ...that says so" grep -q "warning: --sft copy-of-aligned and --aligned $A are the same model" "$work/last.err"
touch afile
expect_error "output folder that is a file" "afile: exists and is not a folder" "$expo" search "${common[@]}" --prompts $P --alphas 0.1 --output-dir afile
expect_error "a pair that does not match, before any work" "is BF16\[259, 128\] in the aligned model but BF16\[259, 64\]" "$expo" search --sft other/sft --aligned $A --reward-model $R --prompts $P --alphas 0.1 --output-dir e7
check "no results after errors" bash -c "! ls e*/results.jsonl 2>/dev/null | grep -q . && test ! -e e7"

# The openai backend: a server per candidate (expo serve), the same pipeline.
serve="'$expo' serve --model {model} --port {port} --quiet"
check "search --serve" "$expo" search "${common[@]}" --prompts $P --limit 4 --alphas 0.5 --output-dir sv --backend openai --serve "$serve" --parallel 2
check "--serve: server log kept, candidate removed" bash -c "test -s sv/alpha-0.5/server.log && test -z \"\$(ls sv/candidates 2>/dev/null)\""
check "search --serve --keep" "$expo" search "${common[@]}" --prompts $P --limit 2 --alphas 0.5 --output-dir sk --backend openai --serve "$serve" --keep
check "--keep keeps the candidate" test -f sk/candidates/alpha-0.5/config.json
expect_error "server command that fails" "exited before it answered.*exit status 7" "$expo" search "${common[@]}" --prompts $P --limit 2 --alphas 0.5 --output-dir sf --backend openai --serve "echo broken {port}; exit 7"
expect_error "server that never answers" "did not answer .* within 1 s" "$expo" search "${common[@]}" --prompts $P --limit 2 --alphas 0.5 --output-dir st --backend openai --serve "sleep 30 # {port}" --serve-timeout 1
expect_error "unknown placeholder" "unknown placeholder \{modle\}" "$expo" search "${common[@]}" --prompts $P --limit 2 --alphas 0.5 --output-dir su --backend openai --serve "x {modle} {port}"
expect_error "openai without a server" "--serve" "$expo" search "${common[@]}" --prompts $P --alphas 0.5 --output-dir sn --backend openai

# generate and score against running servers: the same numbers as the built-in engine.
start_server rm.log "$expo" serve --model $R --port 0 --quiet || exit 1
check "search --reward-endpoint" "$expo" search --sft $S --aligned $A --reward-model reward --max-new-tokens 12 --prompts $P --alphas 0.5 --output-dir re --reward-endpoint "http://127.0.0.1:$port"
check "rewards through the server = the built-in engine's" $py -c "
import json
for a in ('0', '0.5'):
    x = [json.loads(l)['reward'] for l in open('re/alpha-%s/rewards.jsonl' % a)]
    y = [json.loads(l)['reward'] for l in open('g/alpha-%s/rewards.jsonl' % a)]
    assert max(abs(p - q) for p, q in zip(x, y)) < 1e-6, (a, x, y)"
check "score --backend openai" "$expo" score --backend openai --endpoint "http://127.0.0.1:$port" --reward-model reward --answers g/alpha-0.5/answers.jsonl --output rr.jsonl
check "remote rewards = local rewards" $py -c "
import json
a = [json.loads(l)['reward'] for l in open('rr.jsonl')]
b = [json.loads(l)['reward'] for l in open('r.jsonl')]
assert max(abs(x - y) for x, y in zip(a, b)) < 1e-6, (a, b)"
check "score --score-api classify" "$expo" score --backend openai --endpoint "http://127.0.0.1:$port" --reward-model reward --answers g/alpha-0.5/answers.jsonl --output rc.jsonl --score-api classify
expect_error "wrong served name: the server's message" "404.*reward-x|reward-x.*404|does not exist|not found" "$expo" score --backend openai --endpoint "http://127.0.0.1:$port" --reward-model reward-x --answers g/alpha-0.5/answers.jsonl --output rx.jsonl
kill $server_pid; wait $server_pid 2>/dev/null

start_server lm.log "$expo" serve --model $A --port 0 --quiet --model-name cand-0 || exit 1
check "search --endpoint with a name per candidate" "$expo" search "${common[@]}" --prompts $P --limit 2 --alphas 0 --output-dir ep --backend openai --endpoint "http://127.0.0.1:$port" --model-name 'cand-{alpha}'
expect_error "a candidate the servers do not serve" "404.*cand-0.5" "$expo" search "${common[@]}" --prompts $P --limit 2 --alphas 0.5 --output-dir ep2 --backend openai --endpoint "http://127.0.0.1:$port" --model-name 'cand-{alpha}'
expect_error "--endpoint without a name per candidate" "--model-name 'NAME-\{alpha\}'" "$expo" search "${common[@]}" --prompts $P --alphas 0.5 --output-dir ep3 --backend openai --endpoint "http://127.0.0.1:$port"
check "generate --backend openai, two endpoints" "$expo" generate --backend openai --endpoint "http://127.0.0.1:$port" --endpoint "http://127.0.0.1:$port/v1" --prompts alpaca.json --max-new-tokens 8 --output remote.json
check "remote answers in AlpacaEval format" $py -c "
import json; o = json.load(open('remote.json')); assert len(o) == 2 and o[0]['generator'] == 'cand-0'"
kill $server_pid; wait $server_pid 2>/dev/null

# A server that dies mid-run: a clear error naming the URL; the answers already finished are kept.
start_server fake.log $py "$here/fake_openai_server.py" --die-after 5 || exit 1
expect_error "server dies mid-run" "127.0.0.1:$port.*(refused|reset|Empty reply|Couldn't connect|Failed to connect|Recv failure)" "$expo" generate --backend openai --endpoint "http://127.0.0.1:$port" --prompts $P --output dead.jsonl --parallel 1 --max-retries 1
check "finished answers kept" bash -c "grep -q 'of 16 answers were written to dead.jsonl' '$work/last.err' && test \$(wc -l < dead.jsonl) -ge 3"
start_server fake2.log $py "$here/fake_openai_server.py" --status 400 || exit 1
expect_error "a 4xx quotes the server" "400.*fake server refuses: bad model settings" "$expo" generate --backend openai --endpoint "http://127.0.0.1:$port" --prompts alpaca.json --output refused.json
kill $server_pid 2>/dev/null
# 503s and a stalled request are retried with backoff; without retries they are clear errors.
start_server fake3.log $py "$here/fake_openai_server.py" --fail-first 3 --slow-first 4 --stall 3 || exit 1
check "retries 503 and a timeout" "$expo" generate --backend openai --endpoint "http://127.0.0.1:$port" --prompts alpaca.json --output retried.json --parallel 1 --request-timeout 1 --max-retries 5
check "every answer after the retries" $py -c "
import json; o = json.load(open('retried.json')); assert len(o) == 2 and all(x['output'].startswith('answer') for x in o)"
kill $server_pid 2>/dev/null
start_server fake4.log $py "$here/fake_openai_server.py" --fail-first 1 || exit 1
expect_error "503 without retries" "503.*overloaded, try again" "$expo" generate --backend openai --endpoint "http://127.0.0.1:$port" --prompts alpaca.json --output r503.json --max-retries 0
kill $server_pid 2>/dev/null
start_server fake5.log $py "$here/fake_openai_server.py" --slow-first 1 --stall 5 || exit 1
expect_error "timeout without retries" "[Tt]imeout|timed out" "$expo" generate --backend openai --endpoint "http://127.0.0.1:$port" --prompts alpaca.json --output rslow.json --max-retries 0 --request-timeout 1
kill $server_pid 2>/dev/null

finish
