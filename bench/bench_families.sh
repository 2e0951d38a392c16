#!/usr/bin/env bash
# Engine speed across architectures, side by side in one run: the ~0.49B Llama of
# bench/bench_engine.sh, a Gemma-2-shaped ~1.0B (real 256000-token vocab, tied embedding) and a
# Mixtral-shaped MoE with ~1.0B active parameters per token (8 experts, top 2; 3.1B in all), all
# BF16 (shapes: bench/make_model.py). Prints one markdown table: prefill, decode at batch 1 and
# 16, weight bytes read per decoded token, and decode at batch 1 as a fraction of the
# copy-bandwidth bound and of the read-sweep bound, each measured by that model's own run.
#
#   bash bench/bench_families.sh
#   MODELS="llama gemma2" STEPS=32 PROMPT=256 bash bench/bench_families.sh
#
# Models are written once under bench/work/ (git-ignored; about 1, 2 and 6.3 GB); each run's
# full bench_engine output is kept there as families-NAME.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="${MODELS:-llama gemma2 mixtral}"
STEPS="${STEPS:-32}"
PROMPT="${PROMPT:-256}"
BIN="${BIN:-build/bench_engine}"  # another build of bench_engine, to compare
[ -x "$BIN" ] || cmake --build build -j2 --target bench_engine >/dev/null

dir_of() {
  case "$1" in
    llama) echo bench/work/llama-0.5b-bf16 ;;
    gemma2) echo bench/work/gemma2-1b-bf16 ;;
    mixtral) echo bench/work/mixtral-1b-active-bf16 ;;
    *) echo "unknown model $1 (llama, gemma2, mixtral)" >&2; exit 2 ;;
  esac
}

# Other work on the same cores skews every figure (memory bandwidth included): each model's
# numbers are kept with the CPU the rest of the machine used meanwhile (all busy CPU time from
# /proc/stat less the benchmark's own, over the wall time, in cores) and the 1-minute load
# average before and after.
load() { cut -d' ' -f1 /proc/loadavg; }
busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }  # jiffies
for m in $MODELS; do
  dir="$(dir_of "$m")"
  [ -f "$dir/model.safetensors" ] ||
    /usr/bin/python3 bench/make_model.py --arch "$m" --out "$dir" --dtype bf16
  echo "== $m"
  before="$(load)" b0="$(busy)" t0="$(date +%s.%N)"
  /usr/bin/time -f "%U %S" -o bench/work/families-time.txt \
    "$BIN" "$dir" --steps "$STEPS" --prompt "$PROMPT" ${THREADS:+--threads "$THREADS"} |
    tee "bench/work/families-$m.txt"
  read -r user sys <bench/work/families-time.txt
  awk -v b0="$b0" -v b1="$(busy)" -v t0="$t0" -v t1="$(date +%s.%N)" -v u="$user" -v s="$sys" \
    -v l0="$before" -v l1="$(load)" -v hz="$(getconf CLK_TCK)" 'BEGIN {
      other = ((b1 - b0) / hz - u - s) / (t1 - t0); if (other < 0) other = 0
      printf "other CPU use    %.2f cores (load average %s before, %s after)\n", other, l0, l1
    }' | tee -a "bench/work/families-$m.txt"
done

# One column per model, from the lines bench_engine prints.
field() {  # FILE ROW
  local f="$1"
  case "$2" in
    arch) sed -n 's/^model  *[^ ]* (\([^,]*\), \(.*\) of .*/\1, \2/p' "$f" ;;
    copy) sed -n 's/^copy bandwidth  *\([0-9.]*\) GB\/s (read-only sweep \([0-9.]*\).*/\1 GB\/s (read \2)/p' "$f" ;;
    bytes) sed -n 's/^bytes per token  *\([0-9.]*\) GB.*/\1 GB/p' "$f" ;;
    prefill) sed -n 's/^prefill  *\([0-9.]*\) tok\/s.*/\1 tok\/s/p' "$f" ;;
    d1) sed -n 's/^decode batch 1  *\([0-9.]*\) tok\/s.*/\1 tok\/s/p' "$f" ;;
    copyfrac) sed -n 's/^decode batch 1 .*= \([0-9]*%\) of the copy.*/**\1**/p' "$f" ;;
    readfrac) sed -n 's/^decode batch 1 .*(\([0-9]*%\) of read sweep).*/\1/p' "$f" ;;
    other) sed -n 's/^other CPU use  *\(.*\)/\1/p' "$f" ;;
    d16) sed -n 's/^decode batch [0-9]*  *\([0-9.]*\) tok\/s = \([0-9.]*x\).*/\1 tok\/s (\2)/p' "$f" | tail -n 1 ;;
  esac
}
echo
header="| BF16, 2 threads |"
sep="|---|"
for m in $MODELS; do
  header+=" $m |"
  sep+="---|"
done
echo "$header"
echo "$sep"
for row in arch:"architecture, weights" copy:"copy bandwidth (read-only sweep)" \
  bytes:"weight bytes read per token" prefill:"prefill ($PROMPT-token prompt)" \
  d1:"decode, batch 1" copyfrac:"batch 1 / copy-bandwidth bound" \
  readfrac:"batch 1 / read-sweep bound" d16:"decode, batch 16 (/ batch 1)" \
  other:"other processes' CPU meanwhile"; do
  line="| ${row#*:} |"
  for m in $MODELS; do line+=" $(field "bench/work/families-$m.txt" "${row%%:*}") |"; done
  echo "$line"
done
