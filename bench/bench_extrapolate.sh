#!/usr/bin/env bash
# Extrapolation benchmark: expo extrapolate against a plain user-space copy of the aligned
# model, on a synthetic Llama-shaped BF16 pair (several shards).
#
#   bash bench/bench_extrapolate.sh [SIZE_GB]        (default 2: one model is ~2 GB)
#
# In one run, alternating, RUNS times each (default 3) after one uncounted warm-up round:
#   cat + sync:   for f in aligned/*; do cat "$f" > copy/$(basename "$f"); done; sync
#   read/write + sync: the same with dd bs=128K, a plain read()/write() loop through a user
#                 buffer (GNU cat >= 9.0 copies regular files with copy_file_range, in the
#                 kernel, so it is not strictly "through user space"; both are shown)
#   expo + sync:  build/expo extrapolate --sft SFT --aligned ALIGNED --alpha 0.3 \
#                   --output OUT --no-progress; sync
# and prints the median wall times, the ratio of expo's to each copy's, expo's throughput
# and peak RSS, then expo's peak RSS once more on a SMALL_GB pair (default 0.5) to show that
# it does not grow with model size, and a Markdown table of it all for the README.
# With EXPO_BASE=/other/build/expo, that binary is timed too, in the same rounds (same
# command; the two take turns going first), and the table gets its column and the ratio of
# EXPO's time to its: a before/after comparison of two builds under the same conditions.
#
# Before every timing, outputs are removed and synced and the inputs are read once (so every
# command starts with the inputs in the page cache); none of that is counted. The machine
# should be otherwise idle: the CPU use of everything else is sampled for 2 s before and
# after, with a warning when something else was using the CPUs. Wall time, CPU time and peak
# RSS come from getrusage via /usr/bin/python3 (no /usr/bin/time needed), so nothing has to
# be installed beyond what the tests already need (python3-numpy).
#
# Environment: EXPO (build/expo), EXPO_BASE (none), RUNS (3), SMALL_GB (0.5),
# SHARD_GB (0.5), ALPHA (0.3), THREADS (expo's default: all cores).
# The pairs are kept under bench/work/ (git-ignored) for the next run; outputs are deleted.
set -euo pipefail

SIZE_GB="${1:-2}"
RUNS="${RUNS:-3}"
SMALL_GB="${SMALL_GB:-0.5}"
SHARD_GB="${SHARD_GB:-0.5}"
ALPHA="${ALPHA:-0.3}"
THREADS="${THREADS:-}"

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
EXPO="${EXPO:-$root/build/expo}"
EXPO_BASE="${EXPO_BASE:-}"
PY=/usr/bin/python3
WORK="$root/bench/work"

if [ -n "$EXPO_BASE" ] && [ ! -x "$EXPO_BASE" ]; then
  echo "EXPO_BASE=$EXPO_BASE is not an executable" >&2
  exit 1
fi
if [ ! -x "$EXPO" ]; then
  echo "$EXPO not found: build it first with" >&2
  echo "  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && make -C build -j2" >&2
  exit 1
fi
if ! "$PY" -c "import numpy" 2>/dev/null; then
  echo "$PY with numpy is needed (Debian: apt-get install python3-numpy)" >&2
  exit 1
fi

mkdir -p "$WORK"
# Two inputs and two outputs of the large size, plus the small pair and its output.
need_kb=$("$PY" -c "print(int((4 * $SIZE_GB + 3 * $SMALL_GB + 0.5) * 1e6))")
free_kb=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
if [ "$free_kb" -lt "$need_kb" ]; then
  echo "not enough disk space under $WORK: $((free_kb / 1000000)) GB free," \
    "about $((need_kb / 1000000)) GB needed" >&2
  exit 1
fi

# make_pair SIZE: generates bench/work/pair-SIZE unless it is there with the same parameters.
make_pair() {
  local size="$1" dir="$WORK/pair-$1" stamp="size=$1 shard=$SHARD_GB seed=0"
  if [ -f "$dir/.done" ] && [ "$(cat "$dir/.done")" = "$stamp" ]; then
    echo "reusing $dir" >&2
  else
    rm -rf "$dir"
    "$PY" bench/make_pair.py --out "$dir" --size-gb "$size" --shard-gb "$SHARD_GB" --seed 0
    echo "$stamp" > "$dir/.done"
  fi
}

# timed CMD...: runs CMD then sync; prints "wall_s user_s sys_s maxrss_kib" of the two.
timed() {
  "$PY" - "$@" <<'EOF'
import os, resource, subprocess, sys, time
t0 = time.monotonic()
rc = subprocess.call(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
os.sync()
wall = time.monotonic() - t0
if rc != 0:
    sys.exit(f"command failed ({rc}): {' '.join(sys.argv[1:])}")
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.3f} {ru.ru_utime:.3f} {ru.ru_stime:.3f} {ru.ru_maxrss}")
EOF
}

# prepare DIR...: uncounted; removes outputs, flushes them, puts the inputs in the page cache.
prepare() {
  rm -rf "$@"
  sync
  cat "$PAIR"/sft/* "$PAIR"/aligned/* > /dev/null
}

expo_cmd() {  # expo_cmd PAIR OUT [BINARY]
  local cmd=("${3:-$EXPO}" extrapolate --sft "$1/sft" --aligned "$1/aligned" --alpha "$ALPHA"
             --output "$2" --no-progress)
  [ -n "$THREADS" ] && cmd+=(--threads "$THREADS")
  printf '%s\n' "${cmd[@]}"
}

# cpu_busy: percentage of all CPUs busy over the next 2 s (from /proc/stat).
cpu_busy() {
  "$PY" - <<'EOF'
import time
def sample():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(v), v[3] + v[4]  # total, idle + iowait
t0, i0 = sample(); time.sleep(2); t1, i1 = sample()
print(round(100 * (1 - (i1 - i0) / max(1, t1 - t0))))
EOF
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }

make_pair "$SIZE_GB"
make_pair "$SMALL_GB"

PAIR="$WORK/pair-$SIZE_GB"
COPY="$WORK/copy.$$"  # per process: two runs at once do not trip over each other
OUT="$WORK/out.$$"
trap 'rm -rf "$COPY" "$OUT"' EXIT
bytes=$(du -cb "$PAIR"/aligned/* | tail -1 | cut -f1)
mapfile -t EXPO_CMD < <(expo_cmd "$PAIR" "$OUT")
[ -n "$EXPO_BASE" ] && mapfile -t BASE_CMD < <(expo_cmd "$PAIR" "$OUT" "$EXPO_BASE")

echo "machine: $(nproc) cores, $("$PY" -c "import os; print(round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30))") GiB RAM," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')," \
  "$(df -PT "$WORK" | awk 'NR == 2 { print $2 }') on $(df -P "$WORK" | awk 'NR == 2 { print $1 }')"
echo "pair: $PAIR ($(ls "$PAIR"/aligned/*.safetensors | wc -l) shards," \
  "$(awk "BEGIN { printf \"%.2f\", $bytes / 1e9 }") GB aligned folder)"
echo

time_expo() {
  prepare "$OUT"
  read -r w u s rss < <(timed "${EXPO_CMD[@]}")
  [ "$i" != 0 ] && expo_wall+=("$w") expo_user+=("$u") expo_sys+=("$s") expo_rss+=("$rss")
  echo "$tag  expo + sync:       ${w} s  (user ${u} s, sys ${s} s, peak RSS $((rss / 1024)) MiB)"
  rm -rf "$OUT"
}
time_base() {
  prepare "$OUT"
  read -r w u s rss < <(timed "${BASE_CMD[@]}")
  [ "$i" != 0 ] && base_wall+=("$w") base_user+=("$u") base_sys+=("$s")
  echo "$tag  EXPO_BASE + sync:  ${w} s  (user ${u} s, sys ${s} s, peak RSS $((rss / 1024)) MiB)"
  rm -rf "$OUT"
}

busy_before=$(cpu_busy)
cat_wall=() dd_wall=() expo_wall=() expo_rss=() expo_user=() expo_sys=() cat_user=() cat_sys=()
dd_user=() dd_sys=() base_wall=() base_user=() base_sys=()
for i in $(seq 0 "$RUNS"); do
  tag="run $i"
  [ "$i" = 0 ] && tag="warm-up"
  prepare "$COPY"
  mkdir -p "$COPY"
  read -r w u s _ < <(timed bash -c 'for f in "$1"/*; do cat "$f" > "$2/$(basename "$f")"; done' \
    _ "$PAIR/aligned" "$COPY")
  [ "$i" != 0 ] && cat_wall+=("$w") cat_user+=("$u") cat_sys+=("$s")
  echo "$tag  cat + sync:        ${w} s  (user ${u} s, sys ${s} s)"

  prepare "$COPY"
  mkdir -p "$COPY"
  read -r w u s _ < <(timed bash -c 'for f in "$1"/*; do
      dd if="$f" of="$2/$(basename "$f")" bs=128K status=none; done' _ "$PAIR/aligned" "$COPY")
  [ "$i" != 0 ] && dd_wall+=("$w") dd_user+=("$u") dd_sys+=("$s")
  echo "$tag  read/write + sync: ${w} s  (user ${u} s, sys ${s} s)"
  rm -rf "$COPY"

  # With EXPO_BASE, the two binaries take turns going first (what runs first after the copies
  # is not in the same position as what runs second).
  if [ -n "$EXPO_BASE" ] && [ $((i % 2)) = 1 ]; then
    time_base
    time_expo
  else
    time_expo
    [ -n "$EXPO_BASE" ] && time_base
  fi
done

# RSS at the small size (one run is enough: it is the maximum that matters).
SMALL_PAIR="$WORK/pair-$SMALL_GB"
PAIR="$SMALL_PAIR" prepare "$OUT"
mapfile -t SMALL_CMD < <(expo_cmd "$SMALL_PAIR" "$OUT")
read -r small_w _ _ small_rss < <(timed "${SMALL_CMD[@]}")
small_bytes=$(du -cb "$SMALL_PAIR"/aligned/* | tail -1 | cut -f1)
rm -rf "$OUT"
echo "small    expo + sync:       ${small_w} s  (peak RSS $((small_rss / 1024)) MiB)"
busy_after=$(cpu_busy)

cw=$(median "${cat_wall[@]}")
dw=$(median "${dd_wall[@]}")
ew=$(median "${expo_wall[@]}")
rss_mib=$(( $(maxof "${expo_rss[@]}") / 1024 ))
small_mib=$((small_rss / 1024))
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
ratio=$(calc "$ew / $cw")
ratio_dd=$(calc "$ew / $dw")
gb=$(calc "$bytes / 1e9")
small_gb=$(calc "$small_bytes / 1e9")
verdict() { awk "BEGIN { exit !($1) }" && echo "meets" || echo "MISSES"; }

echo
echo "CPUs busy with other work: ${busy_before}% before, ${busy_after}% after"
if [ "$busy_before" -gt 10 ] || [ "$busy_after" -gt 10 ]; then
  echo "WARNING: something else was using the CPUs; the figures are not representative"
fi
echo
echo "| ${gb} GB BF16 pair, $(nproc) cores, median of $RUNS | cat (copy_file_range) + sync | read/write (dd bs=128K) + sync | expo extrapolate + sync |"
echo "|---|---|---|---|"
echo "| wall time | ${cw} s | ${dw} s | ${ew} s |"
echo "| output written per second | $(calc "$bytes / 1e9 / $cw") GB/s | $(calc "$bytes / 1e9 / $dw") GB/s | $(calc "$bytes / 1e9 / $ew") GB/s |"
echo "| CPU time, user / sys | $(median "${cat_user[@]}") s / $(median "${cat_sys[@]}") s" \
  "| $(median "${dd_user[@]}") s / $(median "${dd_sys[@]}") s" \
  "| $(median "${expo_user[@]}") s / $(median "${expo_sys[@]}") s |"
echo "| expo / copy wall-time ratio (target <= 1.3) | **${ratio}** ($(verdict "$ratio <= 1.3"))" \
  "| **${ratio_dd}** ($(verdict "$ratio_dd <= 1.3")) | |"
echo "| expo peak RSS, ${gb} GB model (target < 512 MiB) | | | **${rss_mib} MiB** ($(verdict "$rss_mib < 512")) |"
echo "| expo peak RSS, ${small_gb} GB model | | | ${small_mib} MiB |"
if [ -n "$EXPO_BASE" ]; then
  bw=$(median "${base_wall[@]}")
  echo
  echo "| same pair and rounds | EXPO_BASE extrapolate + sync | expo extrapolate + sync |"
  echo "|---|---|---|"
  echo "| wall time | ${bw} s | ${ew} s |"
  echo "| CPU time, user / sys | $(median "${base_user[@]}") s / $(median "${base_sys[@]}") s" \
    "| $(median "${expo_user[@]}") s / $(median "${expo_sys[@]}") s |"
  echo "| / cat wall-time ratio | $(calc "$bw / $cw") | $(calc "$ew / $cw") |"
  echo "| expo / EXPO_BASE wall-time ratio | | **$(calc "$ew / $bw")** |"
  echo "EXPO_BASE: $EXPO_BASE"
fi
echo
echo "reproduce: $( [ "$RUNS" != 3 ] && echo "RUNS=$RUNS ")$( [ -n "$EXPO_BASE" ] && echo "EXPO_BASE=$EXPO_BASE ")bash bench/bench_extrapolate.sh $SIZE_GB"
cmd_text="${EXPO_CMD[*]#$root/}"
echo "expo command timed: ${cmd_text//out.$$/out}; sync"
