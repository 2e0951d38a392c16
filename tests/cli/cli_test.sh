#!/usr/bin/env bash
# Command-line behaviour of expo as a user meets it: help, version, exit codes, error messages
# naming the file or tensor, nothing written on failure, Ctrl-C during a run.
# Usage: bash tests/cli/cli_test.sh path/to/expo
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh" "${1:-build/expo}"
nothing_beside() {  # only the given entries exist in $work/runs
  [ "$(ls -A "$work/runs" | sort | tr '\n' ' ')" = "$1" ]
}

cd "$work"
check "--version" bash -c "'$expo' --version | grep -qE '^expo [0-9]+\.[0-9]+\.[0-9]+'"
check "--help lists commands" bash -c "'$expo' --help | grep -q extrapolate && '$expo' --help | grep -q inspect && '$expo' --help | grep -q diff"
check "extrapolate --help" bash -c "'$expo' extrapolate --help | grep -q -- --max-shard-size"
expect_error "no command" "required|subcommand" "$expo"
expect_error "unknown flag" "--bogus" "$expo" inspect . --bogus

check "demo" "$expo" demo --planted --dir demo
check "demo output" test -f demo/expo-best/model.safetensors -a -f demo/expo-best/README.md -a -f demo/expo-best/config.json -a -f demo/search/report.md
expect_error "demo twice" "--force" "$expo" demo --planted --dir demo

mkdir runs
S=demo/sft A=demo/aligned
check "extrapolate" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --output runs/x
check "sharded output" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --output runs/sharded --max-shard-size 500KB
check "index written" test -f runs/sharded/model.safetensors.index.json -a -f runs/sharded/model-00004-of-00004.safetensors
check "same bytes sharded or not" bash -c "'$expo' inspect runs/x --json | grep -c '\"name\"' | grep -qx 39"
expect_error "exists" "already exists.*--force" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --output runs/x
check "force" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --output runs/x --force
expect_error "several alphas need {alpha}" "\{alpha\}" "$expo" extrapolate --sft $S --aligned $A --alpha 0.1,0.5 --output runs/y
check "several alphas" "$expo" extrapolate --sft $S --aligned $A --alpha 0.1,0.5 --output 'runs/m-{alpha}'
check "several alphas written" test -f runs/m-0.1/model.safetensors -a -f runs/m-0.5/model.safetensors
check "dry run" bash -c "'$expo' extrapolate --sft $S --aligned $A --alpha 0.3 --output runs/dry --dry-run | grep -q 'bytes to write'"
check "dry run writes nothing" test ! -e runs/dry
check "rule" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --rule 'embed_tokens|lm_head=0' --output runs/rule
check "rule keeps aligned embeddings" bash -c "cmp <(tail -c 256000 runs/rule/model.safetensors) <(tail -c 256000 runs/x/model.safetensors) >/dev/null; test \$? -ne 0"
check "dtype f32" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --dtype f32 --output runs/f32
check "dtype f32 in config" grep -q '"torch_dtype": "float32"' runs/f32/config.json
expect_error "bad dtype" "--dtype.*q8" "$expo" extrapolate --sft $S --aligned $A --alpha 0.3 --dtype q8 --output runs/q
expect_error "bad alpha" "--alpha.*abc" "$expo" extrapolate --sft $S --aligned $A --alpha abc --output runs/q
expect_error "bad shard size" "--max-shard-size" "$expo" extrapolate --sft $S --aligned $A --alpha 1 --max-shard-size 5XB --output runs/q
expect_error "missing input" "nope: no such file" "$expo" extrapolate --sft nope --aligned $A --alpha 0.3 --output runs/q
expect_error "repo id not cached" "Hugging Face cache" env HF_HUB_CACHE="$work/hub" "$expo" extrapolate --sft org/none --aligned $A --alpha 0.3 --output runs/q

# Progress is drawn on stderr when asked (or when stderr is a terminal).
check "progress" bash -c "'$expo' extrapolate --sft $S --aligned $A --alpha 0.3 --output runs/p --progress 2>&1 >/dev/null | grep -q 'tensors, .* GB/s' && rm -rf runs/p"

# A Hugging Face cache: snapshot files are symlinks into blobs/; the output gets real files.
hub="$work/hub/models--org--tiny"
mkdir -p "$hub/blobs" "$hub/snapshots/abc123" "$hub/refs"
for f in $A/*; do
  cp "$f" "$hub/blobs/$(basename "$f").blob"
  ln -s "../../blobs/$(basename "$f").blob" "$hub/snapshots/abc123/$(basename "$f")"
done
echo abc123 > "$hub/refs/main"
check "repo id from cache" env HF_HUB_CACHE="$work/hub" "$expo" extrapolate --sft $S --aligned org/tiny --alpha 0.3 --output runs/hub
check "cache output has real files" bash -c "test -f runs/hub/config.json -a ! -L runs/hub/config.json && grep -q 'base_model: org/tiny' runs/hub/README.md && rm -rf runs/hub"
check "revision" env HF_HUB_CACHE="$work/hub" "$expo" inspect org/tiny --revision main

# Broken inputs: each names the file, exits non-zero and writes nothing.
mkdir bad && cp -r $A bad/trunc && cp -r $A bad/json
f=bad/trunc/model-00002-of-00002.safetensors
truncate -s $(( $(stat -c %s $f) - 100 )) $f
expect_error "truncated shard" "model-00002-of-00002.safetensors.*(truncated|past the end)" "$expo" extrapolate --sft $S --aligned bad/trunc --alpha 0.3 --output runs/q
printf 'x' | dd of=bad/json/model-00001-of-00002.safetensors bs=1 seek=8 conv=notrunc 2>/dev/null
expect_error "invalid JSON header" "model-00001-of-00002.safetensors.*not valid JSON" "$expo" inspect bad/json
check "nothing written after failures" nothing_beside "f32 m-0.1 m-0.5 rule sharded x "

# Mismatched models: every tensor is listed.
mkdir -p other && "$expo" demo --planted --dir other/d >/dev/null 2>&1
expect_error "mismatch lists tensors" "tensor 'model.layers.3.mlp.down_proj.weight'.*only in the SFT model" "$expo" extrapolate --sft other/d/sft --aligned runs/sharded/model-00001-of-00004.safetensors --alpha 0.3 --output runs/q

check "inspect" bash -c "'$expo' inspect $A | grep -q 'architecture: LlamaForCausalLM'"
check "inspect --json" bash -c "'$expo' inspect $A --json | grep -q '\"parameters\": 792448'"
check "diff" bash -c "'$expo' diff --sft $S --aligned $A | grep -q 'layer 3'"
check "diff --json" bash -c "'$expo' diff --sft $S --aligned $A --json | grep -q '\"relative_delta\"'"

# Ctrl-C in the middle of a run: exit 130, no output, no temporary folder.
write_sparse_pair big
mkdir -p runs2
"$expo" extrapolate --sft big/sft --aligned big/aligned --alpha 0.3 --output runs2/int >"$work/out" 2>"$work/err" &
pid=$!
# Once its temporary folder exists (not after a fixed sleep: a loaded machine starts later).
for _ in $(seq 600); do compgen -G "runs2/.int.expo-tmp-*/.expo-owner" >/dev/null && break; sleep 0.1; done
kill -INT $pid
wait $pid
status=$?
if [ $status -eq 130 ] && [ -z "$(ls -A runs2)" ] && grep -q interrupted "$work/err"; then
  passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: interrupt (exit $status, left: $(ls -A runs2))"; cat "$work/err"; fi

finish
