#!/usr/bin/env bash
# LoRA extrapolation benchmark: `expo extrapolate` with a PEFT LoRA adapter as --aligned, on a
# generated TinyLlama-1.1B-shaped BF16 model (hidden 2048, intermediate 5632, 22 layers,
# 32 heads / 4 KV heads, vocab 32000: 1.1B parameters, 2.2 GB) and a rank-16 adapter on all 7
# linear projections (q,k,v,o,gate,up,down; BF16 factors, lora_alpha 32, so s = 2).
#
#   bash bench/bench_lora.sh
#   RUNS=5 ALPHA=0.5 bash bench/bench_lora.sh
#
# In one loop, RUNS times (default 3), the three take turns going first:
#   cp -r SFT copy; sync                                             (the baseline)
#   expo extrapolate --sft SFT --aligned ADAPTER --alpha 2 --output OUT --no-progress; sync
#       (full model: every SFT tensor; adapted ones W + (1+alpha) s B A in float64, one rounding)
#   the same with --output-adapter; sync                             (a PEFT adapter, lora_B * (1+alpha))
# The trailing sync is timed (expo fsyncs its output, cp does not: without it cp would only
# fill the page cache). Before every timing, untimed: outputs removed, `sync`, and the inputs
# read once (page cache warm). Wall time: date around command + sync; peak RSS: /usr/bin/time
# %M. Prints the medians and each one's ratio to cp as a Markdown table. The full-model and
# adapter outputs are checked once with numpy (bench/bench_lora.py) before the timings, so a
# broken run cannot be timed silently.
#
# Inputs are generated once (tests/python/peft_layout.py) under bench/work/lora/ (git-ignored)
# and reused; outputs are deleted at the end.
# Environment: EXPO (build/expo), RUNS (3), ALPHA (2).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
EXPO="${EXPO:-$root/build/expo}"
RUNS="${RUNS:-3}"
ALPHA="${ALPHA:-2}"
PY=/usr/bin/python3
W=bench/work/lora
SFT=$W/sft-tinyllama-1.1b-bf16
ADAPTER=$W/adapter-r16-all7-bf16
OUT=$W/out.$$

[ -x "$EXPO" ] || { echo "$EXPO not found: build it first" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (Debian: apt-get install time)" >&2; exit 1; }
"$PY" -c "import numpy" 2>/dev/null || { echo "$PY with numpy is needed" >&2; exit 1; }
mkdir -p "$W"

# Disk: the inputs (2.2 GB, unless cached) plus one output at a time (2.2 GB) and a margin.
need_kb=$(( ( $( [ -f "$SFT/.done" ] && echo 0 || echo 2300000 ) ) + 2300000 + 500000 ))
free_kb=$(df -Pk "$W" | awk 'NR == 2 { print $4 }')
if [ "$free_kb" -lt "$need_kb" ]; then
  echo "not enough disk space under $W: $((free_kb / 1000000)) GB free, ~$((need_kb / 1000000)) GB needed" >&2
  exit 1
fi

t_start=$(date +%s)
stamp="hidden=2048 intermediate=5632 layers=22 heads=32 kv=4 vocab=32000 bf16 seed=0"
if [ -f "$SFT/.done" ] && [ "$(cat "$SFT/.done")" = "$stamp" ]; then
  echo "reusing $SFT"
else
  rm -rf "$SFT" "$ADAPTER"
  echo "generating $SFT (once; ~1-2 min)"
  "$PY" tests/python/peft_layout.py model "$SFT" --hidden 2048 --intermediate 5632 --layers 22 \
    --heads 32 --kv-heads 4 --vocab 32000 --dtype bf16 --seed 0 >/dev/null
  echo "$stamp" > "$SFT/.done"
fi
astamp="rank=16 lora_alpha=32 targets=all7 bf16 seed=1"
if [ -f "$ADAPTER/.done" ] && [ "$(cat "$ADAPTER/.done")" = "$astamp" ]; then
  echo "reusing $ADAPTER"
else
  rm -rf "$ADAPTER"
  "$PY" tests/python/peft_layout.py adapter "$ADAPTER" --model "$SFT" --rank 16 --lora-alpha 32 \
    --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --dtype bf16 --seed 1 >/dev/null
  echo "$astamp" > "$ADAPTER/.done"
fi
trap 'rm -rf "$OUT"' EXIT

read -r params model_bytes adapter_bytes < <("$PY" bench/bench_lora.py info "$SFT" "$ADAPTER")

FULL=("$EXPO" extrapolate --sft "$SFT" --aligned "$ADAPTER" --alpha "$ALPHA" --output "$OUT" --no-progress)
ADPT=("${FULL[@]}" --output-adapter)
CP=(cp -r "$SFT" "$OUT")

warm() { cat "$SFT"/* "$ADAPTER"/* > /dev/null; }   # untimed: inputs into the page cache
prepare() { rm -rf "$OUT"; sync; warm; }

# Correctness first (untimed): the timings below are of runs that produce the right output.
echo "checking expo's outputs with numpy (alpha $ALPHA):"
prepare
"${FULL[@]}" >/dev/null
"$PY" bench/bench_lora.py verify-full "$SFT" "$ADAPTER" "$OUT" "$ALPHA"
out_bytes=$(du -sb "$OUT" | cut -f1)
prepare
"${ADPT[@]}" >/dev/null
"$PY" bench/bench_lora.py verify-adapter "$ADAPTER" "$OUT" "$ALPHA"
prepare

# timed CMD...: "wall_s_with_sync wall_s_without maxrss_kib" (CMD's stdout discarded).
timed() {
  local t0 t1 e m
  t0=$(date +%s.%N)
  /usr/bin/time -f '%e %M' -o "$W/time.$$" "$@" >/dev/null 2>"$W/err.$$" \
    || { cat "$W/err.$$" >&2; echo "command failed: $*" >&2; exit 1; }
  sync
  t1=$(date +%s.%N)
  read -r e m < <(tail -1 "$W/time.$$")
  echo "$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") $e $m"
}

names=(cp full adapter)
declare -A wall nosync rss
run_one() {
  local cmd
  case "$1" in
    cp) cmd=("${CP[@]}") ;;
    full) cmd=("${FULL[@]}") ;;
    adapter) cmd=("${ADPT[@]}") ;;
  esac
  prepare
  read -r w e m < <(timed "${cmd[@]}")
  wall[$1]+="$w " nosync[$1]+="$e " rss[$1]+="$m "
  printf '  run %d  %-8s %6.2f s (%.2f s before the sync), peak RSS %d MiB\n' "$2" "$1" "$w" "$e" $((m / 1024))
  rm -rf "$OUT"
}

echo
echo "timing, $RUNS runs each, alternating:"
for i in $(seq 1 "$RUNS"); do
  for k in 0 1 2; do run_one "${names[$(( (k + i - 1) % 3 ))]}" "$i"; done
done
rm -f "$W/time.$$" "$W/err.$$"

median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' $1 | sort -g | tail -1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
cpw=$(median "${wall[cp]}")

echo
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "model: $(calc %.3f "$params / 1e9")B params, $(calc %.2f "$model_bytes / 1e9") GB BF16 (1 shard);" \
  "adapter: rank 16 x 7 projections x 22 layers, $(calc %.1f "$adapter_bytes / 1e6") MB;" \
  "full output $(calc %.2f "$out_bytes / 1e9") GB; alpha $ALPHA"
echo
echo "| operation (page cache warm, + sync), median of $RUNS | wall s | wall s before sync | peak RSS MiB | ratio to cp |"
echo "|---|---|---|---|---|"
row() {
  local w
  w=$(median "${wall[$1]}")
  echo "| $2 | $w | $(median "${nosync[$1]}") | $(( $(maxof "${rss[$1]}") / 1024 )) | $(calc %.2f "$w / $cpw") |"
}
row cp "\`cp -r\` SFT (baseline)"
row full "expo extrapolate, full model"
row adapter "expo extrapolate --output-adapter"
echo
echo "total runtime: $(( $(date +%s) - t_start )) s"
echo "reproduce: $( [ "$RUNS" != 3 ] && echo "RUNS=$RUNS ")$( [ "$ALPHA" != 2 ] && echo "ALPHA=$ALPHA ")bash bench/bench_lora.sh"
echo "expo command timed: build/expo extrapolate --sft $SFT --aligned $ADAPTER --alpha $ALPHA --output $W/out --no-progress [--output-adapter]; sync"
