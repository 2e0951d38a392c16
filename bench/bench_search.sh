#!/usr/bin/env bash
# expo search benchmark (local backend, built-in engine): a 5-alpha grid (0, 0.1, 0.3, 0.5, 1)
# over 32 prompts with 64 new tokens each on a generated ~0.1B Llama pair (hidden 768, 16
# layers, intermediate 2048, 12 heads / 4 KV heads, BF16) scored by a generated Llama reward
# model (8 layers), then the same search with --auto. The baseline, side by side in the same
# run: the same grid done by hand with separate commands per alpha (expo extrapolate, expo
# generate, expo score), as a user would script it without `expo search`.
#
#   bash bench/bench_search.sh
#   PROMPTS=16 TOKENS=32 bash bench/bench_search.sh
#
# Answers run to the token limit (--ignore-eos) so every alpha does the same work. Models are
# written once under bench/work/search/ (git-ignored) by bench/make_model.py (numpy); the
# tokenizer and the prompts come from `expo demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
PROMPTS="${PROMPTS:-32}"
TOKENS="${TOKENS:-64}"
ALPHAS="0,0.1,0.3,0.5,1"
cmake --build build -j2 --target expo >/dev/null
expo="$PWD/build/expo"
w=bench/work/search
mkdir -p $w
shape=(--hidden 768 --intermediate 2048 --heads 12 --kv-heads 4 --vocab 259 --bos 256 --eos 258 --dtype bf16)
if [ ! -f $w/reward/model.safetensors ]; then
  rm -rf $w/demo
  "$expo" demo --planted --dir $w/demo --prompts "$PROMPTS" --alphas 0 --max-new-tokens 1 >/dev/null 2>&1
  /usr/bin/python3 bench/make_model.py --out $w/sft "${shape[@]}" --layers 16 --seed 5
  /usr/bin/python3 bench/make_model.py --out $w/aligned "${shape[@]}" --layers 16 --seed 5 --perturb 0.002
  /usr/bin/python3 bench/make_model.py --out $w/reward "${shape[@]}" --layers 8 --seed 9 --reward
  for m in sft aligned reward; do cp $w/demo/aligned/tokenizer*.json $w/demo/aligned/special_tokens_map.json $w/$m/; done
fi
rm -rf $w/demo2 && "$expo" demo --planted --dir $w/demo2 --prompts "$PROMPTS" --alphas 0 --max-new-tokens 1 >/dev/null 2>&1
prompts=$w/prompts.jsonl && cp $w/demo2/prompts.jsonl $prompts && rm -rf $w/demo2
common=(--sft $w/sft --aligned $w/aligned --reward-model $w/reward --prompts $prompts
        --max-new-tokens "$TOKENS" --ignore-eos --no-progress)

timed() {  # timed NAME COMMAND...: wall seconds and peak RSS of the command into $secs, $rss
  local t0 t1
  shift
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o $w/rss "$@" >$w/last.out 2>$w/last.err || { cat $w/last.err; exit 1; }
  t1=$(date +%s.%N)
  secs=$(echo "$t1 - $t0" | bc)
  rss=$(( $(tail -1 $w/rss) / 1024 ))
}

by_hand() {  # the grid with separate commands
  for a in ${ALPHAS//,/ }; do
    local m=$w/aligned
    if [ "$a" != 0 ]; then
      "$expo" extrapolate --sft $w/sft --aligned $w/aligned --alpha "$a" --output $w/hand/model-$a >/dev/null
      m=$w/hand/model-$a
    fi
    "$expo" generate --model $m --prompts $prompts --max-new-tokens "$TOKENS" --ignore-eos --no-progress --output $w/hand/answers-$a.jsonl
    "$expo" score --reward-model $w/reward --answers $w/hand/answers-$a.jsonl --output $w/hand/rewards-$a.jsonl >/dev/null
    rm -rf $w/hand/model-$a
  done
}

n_alphas=$(echo "$ALPHAS" | tr ',' '\n' | wc -l)
echo "== ${PROMPTS} prompts x ${TOKENS} new tokens, grid $ALPHAS, $(nproc) threads"
# Alternate the two (search, by hand) twice and keep each one's faster run: the machine is shared.
best_search=999999 best_hand=999999
for round in 1 2; do
  rm -rf $w/grid && timed search "$expo" search "${common[@]}" --alphas $ALPHAS --output-dir $w/grid
  s=$secs; s_rss=$rss
  (( $(echo "$s < $best_search" | bc) )) && best_search=$s && search_rss=$s_rss
  rm -rf $w/hand && mkdir -p $w/hand
  t0=$(date +%s.%N); by_hand; secs=$(echo "$(date +%s.%N) - $t0" | bc)
  (( $(echo "$secs < $best_hand" | bc) )) && best_hand=$secs
  echo "round $round: expo search ${s} s, by hand ${secs} s"
done
tokens=$(( n_alphas * PROMPTS * TOKENS ))
printf "grid search:   %.1f s (%d alphas, %d tokens generated, %.0f tok/s overall), peak RSS %d MiB\n" \
  "$best_search" "$n_alphas" "$tokens" "$(echo "$tokens / $best_search" | bc -l)" "$search_rss"
printf "by hand:       %.1f s\n" "$best_hand"
printf "ratio (expo search / by hand): %.2f\n" "$(echo "$best_search / $best_hand" | bc -l)"
check=$(/usr/bin/python3 -c "
import json
r = {x['alpha']: x['rewards'] for x in map(json.loads, open('$w/grid/results.jsonl'))}
same = all(r[float(a)] == [json.loads(l)['reward'] for l in open('$w/hand/rewards-%s.jsonl' % a)] for a in '$ALPHAS'.split(','))
print('identical' if same else 'DIFFERENT')")
echo "rewards of expo search and by hand: $check"

rm -rf $w/auto && timed auto "$expo" search "${common[@]}" --auto --output-dir $w/auto
evaluated=$(wc -l < $w/auto/results.jsonl)
printf "auto search:   %.1f s, %d alphas evaluated (%s), peak RSS %d MiB\n" "$secs" "$evaluated" \
  "$(/usr/bin/python3 -c "import json; print(', '.join('%g' % json.loads(l)['alpha'] for l in open('$w/auto/results.jsonl')))")" "$rss"
grep '^best alpha' $w/last.out
