#!/usr/bin/env python3
"""expo serve benchmark, side by side in one run on the same model and prompts (see
bench/bench_serve.sh, which prepares them):
  1. tokens/s of CLIENTS concurrent streaming chat clients against `expo serve --batch-size 16`
     versus `expo generate --batch-size 16` on the same prompts (goal: >= 0.8);
  2. time to first token and time per output token, p50 and p99, at 1 and at 16 clients;
  3. `expo generate --backend openai --parallel 32` versus `--parallel 8` against the server
     (200 prompts, 4 tokens each; goal: no slower).
Usage: bench_serve.py EXPO MODEL_DIR TOKENIZER_DIR WORK_DIR PROMPTS NEW_TOKENS
"""
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

expo, model, tokenizer, work = sys.argv[1:5]
n_prompts, new_tokens = int(sys.argv[5]), int(sys.argv[6])
os.makedirs(work, exist_ok=True)

questions = [f"Question {i}: explain why the sky over city number {i} looks the way it does at dusk."
             for i in range(max(n_prompts, 200))]


def start_server():
    log_path = os.path.join(work, "serve.log")
    log = open(log_path, "w")
    proc = subprocess.Popen([expo, "serve", "--model", model, "--tokenizer", tokenizer, "--port", "0",
                             "--batch-size", "16", "--quiet"], stdout=log, stderr=log)
    deadline = time.time() + 300
    while time.time() < deadline:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", open(log_path).read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit("expo serve did not start:\n" + open(log_path).read())


def streamed(port, question):
    """One streamed chat request: (ttft, per-token seconds, completion tokens, seconds)."""
    body = json.dumps({"messages": [{"role": "user", "content": question}], "max_tokens": new_tokens,
                       "temperature": 0, "ignore_eos": True, "stream": True,
                       "stream_options": {"include_usage": True}})
    start = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200, r.read()
    first = last = None
    tokens = 0
    buffer = b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            data = event[len(b"data: "):]
            if data == b"[DONE]":
                continue
            j = json.loads(data)
            if j.get("usage"):
                tokens = j["usage"]["completion_tokens"]
            if j["choices"] and j["choices"][0]["delta"].get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
    c.close()
    end = time.perf_counter()
    per_token = (last - first) / (tokens - 1) if tokens > 1 and first and last > first else 0.0
    return (first or end) - start, per_token, tokens, end - start


def run_clients(port, clients, prompts):
    results, lock, next_index = [], threading.Lock(), [0]

    def worker():
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= len(prompts):
                return
            r = streamed(port, prompts[i])
            with lock:
                results.append(r)
    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return results, wall


def pct(values, p):
    values = sorted(values)
    if not values:
        return 0.0
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def write_prompts(path, items):
    with open(path, "w") as f:
        for i, q in enumerate(items):
            f.write(json.dumps({"id": i, "prompt": q}) + "\n")


prompts = questions[:n_prompts]
write_prompts(os.path.join(work, "prompts.jsonl"), prompts)
write_prompts(os.path.join(work, "prompts200.jsonl"), questions[:200])

proc, port = start_server()
try:
    streamed(port, "warm up")
    one, one_wall = run_clients(port, 1, prompts[:8])
    many, many_wall = run_clients(port, 16, prompts)
    serve_tokens = sum(r[2] for r in many)
    serve_rate = serve_tokens / many_wall
    # expo generate through the server (OpenAI client), 200 short answers.
    remote = [expo, "generate", "--backend", "openai", "--endpoint", f"http://127.0.0.1:{port}/v1",
              "--prompts", os.path.join(work, "prompts200.jsonl"), "--max-new-tokens", "4", "--greedy"]
    par8 = timed(remote + ["--parallel", "8", "--output", os.path.join(work, "p8.jsonl"), "--force"])
    par32 = timed(remote + ["--parallel", "32", "--output", os.path.join(work, "p32.jsonl"), "--force"])
finally:
    proc.terminate()
    proc.wait()

# expo generate on the same prompts; its model loading is measured apart (1 prompt, 1 token)
# and taken out, as the server had loaded its model before the clock started.
local = [expo, "generate", "--model", model, "--tokenizer", tokenizer, "--batch-size", "16",
         "--greedy", "--ignore-eos", "--force"]
load = timed(local + ["--prompts", os.path.join(work, "prompts.jsonl"), "--output",
                      os.path.join(work, "load.jsonl"), "--max-new-tokens", "1"])
gen_wall = timed(local + ["--prompts", os.path.join(work, "prompts.jsonl"), "--output",
                          os.path.join(work, "gen.jsonl"), "--max-new-tokens", str(new_tokens)])
gen_tokens = sum(json.loads(line)["output_tokens"] for line in open(os.path.join(work, "gen.jsonl")))
gen_rate = gen_tokens / max(gen_wall - load, 1e-9)

print(f"model: {model} ({n_prompts} prompts, {new_tokens} new tokens each, greedy, eos ignored)")
print()
print("| | tokens | seconds | tokens/s |")
print("|---|---|---|---|")
print(f"| expo serve, 16 streaming clients | {serve_tokens} | {many_wall:.2f} | {serve_rate:.1f} |")
print(f"| expo generate --batch-size 16 (minus {load:.2f} s of loading and 1-token prefill) | {gen_tokens} | {gen_wall - load:.2f} | {gen_rate:.1f} |")
print(f"| **ratio serve / generate** | | | **{serve_rate / gen_rate:.2f}** |")
print()
print("| clients | TTFT p50 | TTFT p99 | per token p50 | per token p99 |")
print("|---|---|---|---|---|")
for name, rs in (("1", one), ("16", many)):
    ttft = [r[0] * 1000 for r in rs]
    tpot = [r[1] * 1000 for r in rs if r[1] > 0]
    print(f"| {name} | {pct(ttft, 50):.0f} ms | {pct(ttft, 99):.0f} ms | {pct(tpot, 50):.1f} ms | {pct(tpot, 99):.1f} ms |")
print()
print("| expo generate --backend openai, 200 prompts x 4 tokens | seconds |")
print("|---|---|")
print(f"| --parallel 8 | {par8:.2f} |")
print(f"| --parallel 32 | {par32:.2f} |")
print(f"| **ratio 32 / 8** (goal <= 1) | **{par32 / par8:.2f}** |")
