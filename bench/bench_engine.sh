#!/usr/bin/env bash
# Engine benchmark: prefill and decode tokens/s of the built-in engine on a generated ~0.5B
# Llama (hidden 1024, 28 layers, intermediate 4096, 16 heads / 4 KV heads, vocab 32000), in
# BF16 and in F32, with decode at batch 1 as a fraction of the memory-bandwidth bound measured
# in the same run, batch 16 against batch 1, and peak RSS against weights + KV cache.
#
#   bash bench/bench_engine.sh              (both dtypes)
#   DTYPES=bf16 STEPS=32 PROMPT=256 bash bench/bench_engine.sh
#
# Models are written once under bench/work/ (git-ignored) by bench/make_model.py (numpy).
# Each figure is a median: decode over STEPS steps, prefill over 3 passes.
set -euo pipefail
cd "$(dirname "$0")/.."
DTYPES="${DTYPES:-bf16 f32}"
STEPS="${STEPS:-32}"
PROMPT="${PROMPT:-256}"
[ -x build/bench_engine ] || cmake --build build -j2 --target bench_engine >/dev/null
for dtype in $DTYPES; do
  dir="bench/work/llama-0.5b-$dtype"
  [ -f "$dir/model.safetensors" ] || /usr/bin/python3 bench/make_model.py --out "$dir" --dtype "$dtype"
  echo "== $dtype"
  build/bench_engine "$dir" --steps "$STEPS" --prompt "$PROMPT" ${THREADS:+--threads "$THREADS"}
done
