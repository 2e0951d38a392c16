#!/usr/bin/env bash
# expo serve as a user meets it: a server on a free port answers /health, /v1/models, chat
# completions and (for a reward model) /pooling and /classify, refuses bad requests with 400,
# logs one line per request, and exits 0 on SIGTERM with its port closed. Models are tiny
# random Llamas with a byte-level tokenizer, written by expo demo.
# Usage: bash tests/cli/serve_cli_test.sh path/to/expo
set -u
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh" "${1:-build/expo}"

# stop_server NAME: SIGTERM, then the exit status must be 0 and the port closed.
stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid"
  local status=$?
  server_pid=""
  if [ "$status" -eq 0 ]; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: $1 exits 0 on SIGTERM (status $status)"; fi
  if curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$port/health"; then
    failed=$((failed + 1)); echo "FAIL: $1 port $port still open after exit"; else passed=$((passed + 1)); fi
}
# post PATH BODY: writes the answer to body.json, prints the HTTP status.
post() {
  curl -s --max-time 120 -o "$work/body.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$2" "http://127.0.0.1:$port$1"
}
# expect_status NAME STATUS PATTERN PATH BODY: the status, and PATTERN in error.message.
expect_status() {
  local name="$1" status="$2" pattern="$3" got
  got="$(post "$4" "$5")"
  if [ "$got" = "$status" ] && $py -c "
import json, re, sys
e = json.load(open(sys.argv[1]))['error']
assert e['type'] and re.search(sys.argv[2], e['message']), e" "$work/body.json" "$pattern" 2>"$work/err"; then
    passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: $name (status $got)"; sed 's/^/  | /' "$work/body.json" "$work/err" | head -10; fi
}

cd "$work"
# The demo's models: a random Llama pair and reward model with a byte-level tokenizer.
"$expo" demo --planted --dir demo --alphas 0 --prompts 1 --max-new-tokens 1 >/dev/null 2>&1 &&
  cp -r demo/sft chat && cp -r demo/aligned chat2 && cp -r demo/reward rm || { echo "FAIL: tiny models"; exit 1; }

# A causal LM.
if start_server chat.log "$expo" serve --model chat --port 0 --threads 2; then
  check "listening line names the model" grep -qx "expo serve: listening on http://127.0.0.1:$port (model chat, batch 16, queue 256)" chat.log
  check "health" bash -c "[ \"\$(curl -sf http://127.0.0.1:$port/health)\" = '{}' ]"
  check "models" bash -c "curl -sf http://127.0.0.1:$port/v1/models > models.json && $py -c \"
import json; m = json.load(open('models.json'))
assert m['object'] == 'list' and [d['id'] for d in m['data']] == ['chat'], m\""
  hi='{"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "temperature": 0}'
  check "chat completion" bash -c "[ \"\$(curl -s -o c1.json -w '%{http_code}' -d '$hi' http://127.0.0.1:$port/v1/chat/completions)\" = 200 ]"
  # <|begin_of_text|> <|im_start|> user\n Hi <|im_end|> \n <|im_start|> assistant\n: 22 tokens.
  check "chat completion shape" $py -c "
import json; c = json.load(open('c1.json'))
assert c['object'] == 'chat.completion' and c['model'] == 'chat' and c['id'], c
ch = c['choices'][0]
assert ch['index'] == 0 and ch['message']['role'] == 'assistant', c
assert isinstance(ch['message']['content'], str) and ch['finish_reason'] in ('stop', 'length'), c
u = c['usage']
assert u['prompt_tokens'] == 22 and 1 <= u['completion_tokens'] <= 8, u
assert u['total_tokens'] == u['prompt_tokens'] + u['completion_tokens'], u"
  check "the same request, the same answer" bash -c "curl -sf -d '$hi' http://127.0.0.1:$port/v1/chat/completions > c2.json && $py -c \"
import json; a, b = (json.load(open(f))['choices'][0] for f in ('c1.json', 'c2.json')); assert a == b, (a, b)\""
  limit='{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 1, "seed": 4, "stop": ["zzz"]}'
  check "max_tokens ends with length" bash -c "curl -sf -d '$limit' http://127.0.0.1:$port/v1/chat/completions > c3.json && $py -c \"
import json; c = json.load(open('c3.json'))
assert c['usage']['completion_tokens'] <= 2, c
assert c['choices'][0]['finish_reason'] == ('length' if c['usage']['completion_tokens'] == 2 else 'stop'), c\""
  expect_status "malformed body" 400 "not valid JSON" /v1/chat/completions '{"messages": ['
  expect_status "no messages" 400 "missing field .messages." /v1/chat/completions '{"model": "chat"}'
  expect_status "bad sampling" 400 "top_p" /v1/chat/completions '{"messages": [{"role": "user", "content": "Hi"}], "top_p": 2}'
  expect_status "wrong model" 404 "does not exist; this server serves .chat." /v1/chat/completions \
    '{"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]}'
  long="$($py -c "import json; print(json.dumps({'messages': [{'role': 'user', 'content': 'x' * 2100}]}))")"
  expect_status "prompt longer than the context" 400 "the prompt has 2120 tokens, but the model's context is 2048" /v1/chat/completions "$long"
  expect_status "pooling needs a reward model" 400 "not a reward model" /pooling '{"messages": [{"role": "user", "content": "Hi"}]}'
  check "one log line per request" grep -q "^expo serve: POST /v1/chat/completions 200$" chat.log
  check "errors are logged too" grep -q "^expo serve: POST /pooling 400$" chat.log
  # A second server on the same port fails clearly.
  expect_error "port in use" "cannot listen on 127.0.0.1:$port" "$expo" serve --model chat --port "$port"
  stop_server "chat server"
fi

# A reward model, quiet, under another name.
if start_server rm.log "$expo" serve --model rm --port 0 --model-name my-rm --quiet; then
  conv='{"model": "my-rm", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}'
  check "pooling" bash -c "[ \"\$(curl -s -o p.json -w '%{http_code}' -d '$conv' http://127.0.0.1:$port/pooling)\" = 200 ]"
  check "classify" bash -c "[ \"\$(curl -s -o k.json -w '%{http_code}' -d '$conv' http://127.0.0.1:$port/classify)\" = 200 ]"
  # The rendered text of the same conversation, as input: the same score.
  text='<|begin_of_text|><|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n'
  check "pooling of rendered text" bash -c "curl -sf -d '{\"input\": \"$text\"}' http://127.0.0.1:$port/pooling > t.json"
  check "score shapes: raw logit, sigmoid for classify, text = messages" $py -c "
import json, math
p, k, t = (json.load(open(f)) for f in ('p.json', 'k.json', 't.json'))
assert p['model'] == 'my-rm' and p['data'][0]['object'] == 'pooling', p
logit = p['data'][0]['data'][0]
assert len(p['data'][0]['data']) == 1 and isinstance(logit, float), p
prob = k['data'][0]['probs'][0]
assert abs(prob - 1 / (1 + math.exp(-logit))) < 1e-12, (prob, logit)
assert t['data'][0]['data'][0] == logit, (t, p)"
  expect_status "a reward model cannot chat" 400 "is a reward model" /v1/chat/completions \
    '{"messages": [{"role": "user", "content": "Hi"}]}'
  check "--quiet: only the listening line" bash -c "[ \"\$(wc -l < rm.log)\" = 1 ]"
  stop_server "reward server"
fi

# Extrapolation on load: served under the aligned model's name and the alpha.
if start_server pair.log "$expo" serve --sft chat --aligned chat2 --alpha 0.5 --port 0 --quiet; then
  check "extrapolated model's name" grep -q "expo serve: listening on http://127.0.0.1:$port (model chat2-expo-alpha0.5," pair.log
  check "extrapolated model answers" bash -c "curl -sf -d '{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 3}' http://127.0.0.1:$port/v1/chat/completions > e.json"
  stop_server "extrapolating server"
fi

expect_error "bad model path" "no-such-model" "$expo" serve --model "$work/no-such-model" --port 0
expect_error "no model" "no model: give --model" "$expo" serve --port 0
expect_error "bad port" "--port: expected a whole number from 0 to 65535, got .70000." "$expo" serve --model chat --port 70000
expect_error "bad host" "cannot listen on 203.0.113.7" "$expo" serve --model chat --host 203.0.113.7 --port 0

finish
