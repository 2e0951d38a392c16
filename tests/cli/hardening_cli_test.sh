#!/usr/bin/env bash
# The command line under abuse, as a careless or hostile user meets it: usage errors (exit 2,
# "expo: error:", the nearest valid name suggested), counts out of range refused at parse time,
# a thread the system refuses, --greedy as the model's argmax, temporaries of killed runs cleaned
# up, and paths that must not escape or destroy (--revision, symlink loops, --force over a
# folder expo did not write, outputs that cannot be written).
# Usage: bash tests/cli/hardening_cli_test.sh path/to/expo
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh" "${1:-build/expo}"

# expect_usage NAME PATTERN COMMAND...: exit status 2, stderr starting "expo: error:" with PATTERN.
expect_usage() {
  local name="$1" pattern="$2"; shift 2
  "$@" >"$work/out" 2>"$work/err"
  local status=$?
  if [ $status -eq 2 ] && head -1 "$work/err" | grep -q '^expo: error: ' &&
    grep -qE -- "$pattern" "$work/err"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); echo "FAIL: $name (exit $status, want 2 and /$pattern/)"
    sed 's/^/  | /' "$work/err" | head -10
  fi
}
# expect_status NAME STATUS PATTERN COMMAND...
expect_status() {
  local name="$1" want="$2" pattern="$3"; shift 3
  "$@" >"$work/out" 2>"$work/err"
  local status=$?
  if [ $status -eq "$want" ] && grep -qE -- "$pattern" "$work/err"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: $name (exit $status, want $want and /$pattern/)"
    sed 's/^/  | /' "$work/err" | head -10
  fi
}

cd "$work"
"$expo" demo --planted --dir demo >/dev/null 2>&1 || { echo "FAIL: demo models"; exit 1; }
S=demo/sft A=demo/aligned

# ---- usage errors: exit 2, "expo: error:", a suggestion --------------------------------------
expect_usage "misspelt command" "unknown command 'extrapolat'; did you mean 'extrapolate'\?" "$expo" extrapolat
expect_usage "misspelt option" "unknown option --alhpa; did you mean --alpha\?" "$expo" extrapolate --sft $S --aligned $A --alhpa 0.3 --output o
expect_usage "misspelt option with =" "unknown option --max-new-token; did you mean --max-new-tokens\?" "$expo" generate --model $A --max-new-token=3 --prompt hi
expect_usage "unknown option, nothing near" "unknown option --zzzzzzzz" "$expo" inspect $A --zzzzzzzz
check "no suggestion when nothing is near" bash -c "! grep -q 'did you mean' '$work/last.err'"
expect_usage "no command" "a command is required" "$expo"
expect_usage "missing value" "--alpha" "$expo" extrapolate --sft $S --aligned $A --output o --alpha
expect_usage "missing required option" "--sft is required" "$expo" diff --aligned $A
expect_usage "bad value from expo's own check" "--dtype: 'q8'" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --dtype q8 --output o
expect_usage "bad alpha" "--alpha: 'abc' is not a finite number" "$expo" extrapolate --sft $S --aligned $A --alpha abc --output o
expect_usage "options that do not go together" "either --model" "$expo" forward --model $A --sft $S --tokens 1 --output l.npy
expect_usage "hint names the command's --help" "expo extrapolate --help" "$expo" extrapolate --bogus
check "--help still exits 0" "$expo" extrapolate --help
check "--version still exits 0" "$expo" --version
expect_status "a missing file is exit 1" 1 "^expo: error: .*nope" "$expo" inspect nope

# ---- counts: range-checked when parsed --------------------------------------------------------
for value in -1 abc 1.5 99999999999999999999999 ""; do
  expect_usage "--threads '$value'" "--threads: expected a whole number from 0 to 1024, got '$value'" "$expo" forward --model $A --tokens 1 --output l.npy --threads "$value"
done
expect_usage "--threads too many" "--threads: expected a whole number from 0 to 1024, got '5000'" "$expo" extrapolate --sft $S --aligned $A --alpha 1 --output o --threads 5000
for cmd in "generate --model $A --prompt hi" "search --sft $S --aligned $A --reward-model demo/reward --prompts demo/prompts.jsonl --output-dir s"; do
  sub=${cmd%% *}
  expect_usage "$sub --max-new-tokens -1" "--max-new-tokens: expected a whole number from 1 to" "$expo" $cmd --max-new-tokens -1
  expect_usage "$sub --max-new-tokens 0" "--max-new-tokens: expected a whole number from 1 to" "$expo" $cmd --max-new-tokens 0
  expect_usage "$sub --batch-size -3" "--batch-size: expected a whole number from 1 to 4096" "$expo" $cmd --batch-size -3
  expect_usage "$sub --seed -1" "--seed: expected a whole number >= 0, got '-1'" "$expo" $cmd --seed -1
  expect_usage "$sub --top-k -1" "--top-k: expected a whole number from 0 to" "$expo" $cmd --top-k -1
  expect_usage "$sub --max-context -1" "--max-context: expected" "$expo" $cmd --max-context -1
  expect_usage "$sub --parallel 0" "--parallel: expected a whole number from 1 to 1024" "$expo" $cmd --parallel 0
  expect_usage "$sub --max-retries -1" "--max-retries: expected a whole number from 0 to 100" "$expo" $cmd --max-retries -1
  expect_usage "$sub --request-timeout nan" "--request-timeout: expected a number in \(0, " "$expo" $cmd --request-timeout nan
  expect_usage "$sub --temperature -0.5" "--temperature: expected a number in \[0, " "$expo" $cmd --temperature -0.5
  expect_usage "$sub --top-p 0" "--top-p: expected a number in \(0, 1\]" "$expo" $cmd --top-p 0
  expect_usage "$sub --stop-token-ids 1,-2" "--stop-token-ids: expected a whole number from 0 to" "$expo" $cmd --stop-token-ids 1,-2
done
expect_usage "--limit 0" "--limit: expected a whole number >= 1" "$expo" generate --model $A --prompts demo/prompts.jsonl --output a.jsonl --limit 0
expect_usage "--max-evals 1" "--max-evals: expected a whole number from 2 to 1000" "$expo" search --max-evals 1
expect_usage "--tol -1" "--tol: expected a number in \(0, 100\]" "$expo" search --tol -1
expect_usage "serve --port 70000" "--port: expected a whole number from 0 to 65535" "$expo" serve --model $A --port 70000
expect_usage "serve --max-new-tokens -1" "--max-new-tokens: expected" "$expo" serve --model $A --max-new-tokens -1
expect_usage "demo --prompts -1" "--prompts: expected a whole number from 1 to" "$expo" demo --planted --dir d2 --prompts -1
check "nothing written by refused commands" bash -c "test ! -e o -a ! -e s -a ! -e a.jsonl -a ! -e l.npy -a ! -e d2"

# A thread the system refuses is a clear error, never a hang: 1024 threads' stacks do not fit
# in 1.5 GB of address space.
expect_status "threads refused by the system" 1 "cannot start worker thread .* of 1024.*fewer --threads" \
  timeout 120 bash -c "ulimit -v 1500000; exec '$expo' forward --model $A --tokens 1,2 --output t.npy --threads 1024"
check "threads refused: no output" test ! -e t.npy

# ---- --greedy is the model's argmax, token by token -------------------------------------------
printf '{"id": "r", "tokens": [72, 101, 108, 108, 111, 32]}\n' > rep.jsonl
check "greedy generation" "$expo" generate --model $A --tokens-file rep.jsonl --output greedy.jsonl --max-new-tokens 16 --greedy --ignore-eos
check "greedy with the penalties given explicitly" "$expo" generate --model $A --tokens-file rep.jsonl --output penalized.jsonl --max-new-tokens 16 --greedy --ignore-eos --presence-penalty 0.1 --frequency-penalty 0.1
tokens=$($py -c "import json; print(','.join(map(str, [72, 101, 108, 108, 111, 32] + json.loads(open('greedy.jsonl').readline())['tokens'][:-1])))")
check "logits along the greedy continuation" "$expo" forward --model $A --tokens "$tokens" --output greedy.npy
check "--greedy picks the argmax at every step" $py -c "
import json, numpy as np
logits = np.load('greedy.npy')
got = json.loads(open('greedy.jsonl').readline())['tokens']
want = [int(np.argmax(logits[5 + i])) for i in range(len(got))]
assert got == want, (got, want)"
check "the test sees a repeated token (where penalties would act)" $py -c "
import json
t = json.loads(open('greedy.jsonl').readline())['tokens']
assert len(set(t)) < len(t), t"
check "explicit penalties still apply under --greedy" $py -c "
import json
a = json.loads(open('greedy.jsonl').readline())['tokens']
b = json.loads(open('penalized.jsonl').readline())['tokens']
assert a != b, a"
check "--help says when the penalties apply" bash -c "'$expo' generate --help | grep -q 'default penalties are off then'"

# ---- temporaries of runs that died ------------------------------------------------------------
# A model big enough that extrapolation takes a while (sparse zeros: little real disk).
write_sparse_pair big
mkdir -p outs
wait_for() {  # wait_for PATTERN: until a path matching the glob exists (60 s at most)
  for _ in $(seq 600); do compgen -G "$1" >/dev/null && return 0; sleep 0.1; done
  return 1
}
"$expo" extrapolate --sft big/sft --aligned big/aligned --alpha 0.3 --output outs/m --threads 1 >/dev/null 2>&1 &
pid=$!
wait_for "outs/.m.expo-tmp-*/.expo-owner"
kill -9 $pid; wait $pid 2>/dev/null
check "kill -9 leaves a temporary folder" bash -c "compgen -G 'outs/.m.expo-tmp-*' >/dev/null"
# A temporary folder of a live process, and one of an older expo (no owner file).
mkdir -p outs/.live.expo-tmp-abcdef outs/.legacy.expo-tmp-ABC123
printf 'expo temporary folder\npid %s\nstart %s\nboot %s\nhost %s\ntarget live\n' $$ \
  "$(cut -d')' -f2- /proc/$$/stat | awk '{print $20}')" "$(cat /proc/sys/kernel/random/boot_id)" \
  "$(hostname)" > outs/.live.expo-tmp-abcdef/.expo-owner
head -c 100000 /dev/urandom > outs/.legacy.expo-tmp-ABC123/model.safetensors
check "the next run into the folder" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --output outs/n
cp "$work/last.err" "$work/cleanup.err"
check "it removes the dead run's folder and says so" bash -c "grep -q 'removed .*outs/.m.expo-tmp-.* an unfinished output: expo process $pid made it and is no longer running' '$work/cleanup.err' && ! compgen -G 'outs/.m.expo-tmp-*' >/dev/null"
check "it leaves a live process's folder alone" test -d outs/.live.expo-tmp-abcdef
check "it reports an older expo's folder with its size" bash -c "grep -q 'outs/.legacy.expo-tmp-ABC123 (100.00 kB) looks like an unfinished output' '$work/cleanup.err' && test -d outs/.legacy.expo-tmp-ABC123"
# A replacement killed between its two renames: the previous output is put back.
mkdir -p outs/.n.expo-old-QWERTY
"$expo" extrapolate --sft $S --aligned $A --alpha 0.5 --output outs/n --force >/dev/null 2>&1
mv outs/n outs/.n.expo-old-QWERTY/old
sleep 0 & dead=$!; wait $dead
printf 'expo temporary folder\npid %s\nstart 1\nboot %s\nhost %s\ntarget n\n' $dead \
  "$(cat /proc/sys/kernel/random/boot_id)" "$(hostname)" > outs/.n.expo-old-QWERTY/.expo-owner
check "a run after a half-done replacement" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --output outs/other
cp "$work/last.err" "$work/cleanup.err"
check "puts the previous output back" bash -c "grep -q 'outs/.n.expo-old-QWERTY/old moved back to .*outs/n' '$work/cleanup.err' && grep -q 'alpha = 0.5' outs/n/README.md && test ! -e outs/.n.expo-old-QWERTY"
rm -rf outs/.live.expo-tmp-abcdef outs/.legacy.expo-tmp-ABC123

# Ctrl-C once the run has started (its temporary folder exists): exit 130, nothing left.
mkdir -p runs2
"$expo" extrapolate --sft big/sft --aligned big/aligned --alpha 0.3 --output runs2/int --threads 1 >/dev/null 2>"$work/int.err" &
pid=$!
wait_for "runs2/.int.expo-tmp-*/.expo-owner"
kill -INT $pid
wait $pid
status=$?
if [ $status -eq 130 ] && [ -z "$(ls -A runs2)" ]; then passed=$((passed + 1)); else
  failed=$((failed + 1)); echo "FAIL: interrupt (exit $status, left: $(ls -A runs2))"; fi

# ---- paths ------------------------------------------------------------------------------------
hub="$work/hub/models--org--tiny"
mkdir -p "$hub/snapshots/abc123" "$hub/refs" "$work/escaped"
cp $A/* "$hub/snapshots/abc123/"
cp $A/* "$work/escaped/"
echo abc123 > "$hub/refs/main"
check "a revision by name" env HF_HUB_CACHE="$work/hub" "$expo" inspect org/tiny --revision main
expect_usage "a revision is never a path" "--revision '../../../escaped': .*never a path" env HF_HUB_CACHE="$work/hub" "$expo" inspect org/tiny --revision ../../../escaped
expect_usage "nor an absolute one" "never a path" env HF_HUB_CACHE="$work/hub" "$expo" extrapolate --sft $S --aligned org/tiny --revision /etc --alpha 1 --output o
echo "../../../escaped" > "$hub/refs/evil"
expect_status "a ref file pointing outside" 1 "refs/evil: does not hold a commit hash" env HF_HUB_CACHE="$work/hub" "$expo" inspect org/tiny --revision evil

ln -s loop loop
expect_status "a symlink loop is named" 1 "^expo: error: .*loop" "$expo" inspect loop
check "no raw filesystem text" bash -c "! grep -q 'filesystem error' '$work/last.err'"
expect_status "a symlink loop as --output" 1 "^expo: error: .*loop" "$expo" extrapolate --sft $S --aligned $A --alpha 1 --output loop/x
check "no raw filesystem text (output)" bash -c "! grep -q 'filesystem error' '$work/last.err'"

# --force replaces only what expo wrote.
mkdir -p precious/sub && echo keep > precious/notes.txt
expect_usage "--force over a folder expo did not write" "precious: --force replaces only a model folder expo wrote.*--force-any-folder" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --output precious --force
check "the folder is untouched" test -f precious/notes.txt
(cd precious && "$expo" extrapolate --sft ../$S --aligned ../$A --alpha 0.3 --output . --force >"$work/dot.out" 2>"$work/dot.err"; echo $? > "$work/dot.status")
check "--output . --force is refused" bash -c "[ \$(cat '$work/dot.status') = 2 ] && grep -q 'would replace the current folder' '$work/dot.err' && test -f precious/notes.txt"
check "--force over expo's own model folder" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --output outs/n --force
mkdir empty
check "--force over an empty folder" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --output empty --force
check "--force-any-folder replaces it anyway" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --output precious --force --force-any-folder
check "replaced" bash -c "test ! -e precious/notes.txt && test -f precious/model.safetensors -o -f precious/model.safetensors.index.json"
mkdir -p notdemo && echo keep > notdemo/thesis.tex
expect_usage "demo --force over a folder it did not write" "notdemo: --force replaces only a folder expo demo wrote" "$expo" demo --planted --dir notdemo --force
check "demo left it alone" test -f notdemo/thesis.tex

# Outputs that cannot be written are refused before any work.
echo x > afile
expect_status "--output-dir under a file" 1 "--output-dir afile/d: cannot be created, because .*afile is not a folder" "$expo" search --sft $S --aligned $A --reward-model demo/reward --prompts demo/prompts.jsonl --alphas 0,1 --output-dir afile/d
expect_status "--write-best under a file" 1 "--write-best afile/best: cannot be created, because .*afile is not a folder" "$expo" search --sft $S --aligned $A --reward-model demo/reward --prompts demo/prompts.jsonl --alphas 0,1 --output-dir sd --write-best afile/best
check "nothing started" test ! -e sd/results.jsonl
if [ "$(id -u)" != 0 ]; then
  mkdir ro && chmod 555 ro
  expect_status "--output-dir in a read-only folder" 1 "--output-dir ro/d: cannot write in" "$expo" search --sft $S --aligned $A --reward-model demo/reward --prompts demo/prompts.jsonl --alphas 0,1 --output-dir ro/d
  chmod 755 ro
else
  echo "note: running as root, so a read-only folder cannot be tested with permissions"
fi

# Standard input is bounded like a file: an endless stream stops at the limit (or, for JSON, at
# its first NUL byte).
expect_status "stdin under the file limit" 1 "/dev/stdin: the file is larger than expo reads .*EXPO_INPUT_MAX_FILE" \
  bash -c "yes | EXPO_INPUT_MAX_FILE=1MiB '$expo' tokenize --tokenizer $A --text-file -"
expect_status "stdin of NUL bytes as JSON" 1 "/dev/stdin: byte 0 is a NUL byte" \
  bash -c "'$expo' chat-template --tokenizer $A --messages - < /dev/zero"
check "stdin still works" bash -c "echo '[{\"role\": \"user\", \"content\": \"hi\"}]' | '$expo' chat-template --tokenizer $A --messages - | grep -q hi"

finish
