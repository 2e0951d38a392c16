#!/usr/bin/env bash
# Builds the libFuzzer targets with clang, AddressSanitizer and UndefinedBehaviorSanitizer, and
# runs each on a copy of its seed corpus (fuzz/corpus/<target>/) for its share of SECONDS
# (default 72: 9 s for each of the 8 targets, at least 5 s each).
#   safetensors_header  the safetensors header parser          (expo_io)
#   gguf                the GGUF reader and its metadata        (expo_io)
#   chat_template       Jinja parsing and rendering             (expo_jinja)
#   tokenizer           tokenizer.json loading and encoding     (expo_text)
#   model_config        config.json as the engine reads it      (expo_model)
#   prompt_answers      prompt sets and answer files            (expo_eval)
#   openai_request      expo serve's request bodies, answers    (expo_http)
#   http_request_head   request heads, chunked request bodies   (expo_http)
# Every input must succeed or throw expo::Error. -rss_limit_mb and -timeout make an input that
# exhausts memory or runs for seconds a failure too: the resource limits on untrusted inputs
# (jinja::Limits, InputLimits) are what keeps the targets inside them.
# Usage: bash fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-72}"
shift || true
all=(safetensors_header gguf chat_template tokenizer model_config prompt_answers openai_request
  http_request_head)
targets=("$@")
[ "${#targets[@]}" -eq 0 ] && targets=("${all[@]}")
per_target=$((seconds / ${#targets[@]}))
[ "$per_target" -lt 5 ] && per_target=5
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -gline-tables-only -DNDEBUG" "${launcher[@]}" \
  -DEXPO_BUILD_FUZZERS=ON -DEXPO_SANITIZE=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/%/_fuzz}" >/dev/null
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for target in "${targets[@]}"; do
  max_len=4096
  case "$target" in chat_template | tokenizer) max_len=16384 ;; esac
  run_dir="build-fuzz/fuzz/corpus-run/$target"
  rm -rf "$run_dir" && mkdir -p "$run_dir" && cp fuzz/corpus/"$target"/* "$run_dir"/
  log="build-fuzz/fuzz/$target.log"
  echo "fuzzing $target for ${per_target}s (ASan + UBSan)"
  status=0
  "build-fuzz/fuzz/${target}_fuzz" -max_total_time="$per_target" -max_len="$max_len" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="build-fuzz/fuzz/$target-" \
    "$run_dir" >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log"
    echo "fuzz: $target FAILED (exit $status); the input is in build-fuzz/fuzz/$target-*, the log in $log"
    exit "$status"
  fi
  grep -E '^stat::number_of_executed_units' "$log" || true
done
echo "fuzz: no crash, hang, OOM or sanitizer report"
