#!/usr/bin/python3
"""GGUF output benchmark: `expo extrapolate --format gguf` (Q8_0 and BF16) against the same
extrapolation written as safetensors, on a synthetic Llama-shaped BF16 pair, side by side in one
run; then decode tokens/s of llama.cpp (node-llama-cpp, tests/gguf/llama_cpp_ref.mjs) and of
expo's engine (build/bench_engine) on the same GGUF files expo wrote (Q8_0 and BF16), alternated,
and expo's engine on the same weights as safetensors BF16.

    /usr/bin/python3 bench/bench_gguf.py [--size-gb 2] [--runs 3]

The pair is bench/work/pair-SIZE (bench/make_pair.py; the demo's tokenizer files are copied in,
since GGUF carries the tokenizer). Each write is followed by sync and timed with it; runs
alternate between the three commands after one uncounted warm-up round; medians are printed
with the ratio to the safetensors write, and peak RSS (getrusage of the child). Decode: 64
tokens after a 32-token prompt, median of 3 runs per measurement, two measurements each,
alternating llama.cpp and expo on the same file; 1 thread for llama.cpp (more threads fight
node's own) and 1 for expo, so the two compare per core.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_timed(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    subprocess.run(["sync"], check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), p.stderr))
    return wall, after.ru_maxrss * 1024, p


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", default="2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--expo", default=os.path.join(ROOT, "build", "expo"))
    args = ap.parse_args()
    work = os.path.join(ROOT, "bench", "work")
    pair = os.path.join(work, "pair-%s" % args.size_gb)
    if not os.path.exists(os.path.join(pair, "aligned", "config.json")):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "make_pair.py"), "--out", pair,
                        "--size-gb", args.size_gb, "--shard-gb", "0.5"], check=True)
    for side in ("sft", "aligned"):
        for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            src = os.path.join(ROOT, "demo", "models", "sft", f)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(pair, side, f))
    out = os.path.join(work, "gguf-out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    base = [args.expo, "extrapolate", "--sft", os.path.join(pair, "sft"), "--aligned",
            os.path.join(pair, "aligned"), "--alpha", "0.3", "--no-progress", "--force"]
    commands = {
        "safetensors (BF16)": base + ["--output", os.path.join(out, "st")],
        "gguf q8_0": base + ["--format", "gguf", "--gguf-type", "q8_0", "--output",
                             os.path.join(out, "q8.gguf")],
        "gguf bf16": base + ["--format", "gguf", "--gguf-type", "bf16", "--output",
                             os.path.join(out, "bf16.gguf")],
    }
    # Inputs in the page cache before every timing.
    for side in ("sft", "aligned"):
        for f in os.listdir(os.path.join(pair, side)):
            with open(os.path.join(pair, side, f), "rb") as fh:
                while fh.read(1 << 24):
                    pass
    times = {k: [] for k in commands}
    rss = {}
    for r in range(args.runs + 1):
        for name, cmd in commands.items():
            wall, peak, _ = run_timed(cmd)
            if r > 0:
                times[name].append(wall)
            rss[name] = max(rss.get(name, 0), peak)
    sizes = {
        "safetensors (BF16)": sum(os.path.getsize(os.path.join(out, "st", f))
                                  for f in os.listdir(os.path.join(out, "st"))),
        "gguf q8_0": os.path.getsize(os.path.join(out, "q8.gguf")),
        "gguf bf16": os.path.getsize(os.path.join(out, "bf16.gguf")),
    }
    st = statistics.median(times["safetensors (BF16)"])
    print("| output | wall time (median of %d) | size | ratio to safetensors |" % args.runs)
    print("|---|---|---|---|")
    for name in commands:
        m = statistics.median(times[name])
        print("| %s | %.2f s | %.2f GB | %.2f |" % (name, m, sizes[name] / 1e9, m / st))
    print("all runs:", json.dumps({k: [round(x, 2) for x in v] for k, v in times.items()}))
    print("peak RSS of the child processes so far: %.0f MB" % (max(rss.values()) / 2**20))

    ref = os.path.join(ROOT, "tests", "gguf", "llama_cpp_ref.mjs")
    if not os.path.exists(os.path.join(ROOT, "tests", "gguf", "node_modules", "node-llama-cpp")):
        print("decode: tests/gguf/node_modules missing (bash scripts/install-npm-deps.sh)")
        return
    print("\n| decode, 1 thread, 64 tokens after 32 | llama.cpp tok/s | expo engine tok/s | expo / llama.cpp |")
    print("|---|---|---|---|")
    bench_engine = os.path.join(ROOT, "build", "bench_engine")

    def llama_cpp(path):
        p = subprocess.run(["node", ref, "--model", path, "--bench-decode", "64",
                            "--prompt-tokens", "32", "--runs", "3", "--threads", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
        return json.loads(p.stdout)["decode_tokens_per_s"]

    def expo_engine(path):
        rates = []
        for _ in range(3):
            p = subprocess.run([bench_engine, path, "--steps", "64", "--prompt", "32",
                                "--threads", "1"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, check=True)
            for line in p.stdout.splitlines():
                if line.startswith("decode batch 1 "):
                    rates.append(float(line.split()[3]))
        return statistics.median(rates)

    # The same file for both, alternated: llama.cpp, expo, llama.cpp, expo (medians of 3 each).
    for name, path in (("Q8_0 GGUF", "q8.gguf"), ("BF16 GGUF", "bf16.gguf")):
        gguf = os.path.join(out, path)
        lc = [llama_cpp(gguf)]
        ex = [expo_engine(gguf)]
        lc.append(llama_cpp(gguf))
        ex.append(expo_engine(gguf))
        print("| %s (the same file) | %s | %s | %.2f |" % (
            name, " / ".join("%.2f" % x for x in lc), " / ".join("%.2f" % x for x in ex),
            statistics.mean(ex) / statistics.mean(lc)))
    # The safetensors folder was written first and may have left the page cache since: read it
    # once, so that its row measures decoding, not the disk.
    st = os.path.join(out, "st")
    for name in sorted(os.listdir(st)):
        with open(os.path.join(st, name), "rb") as f:
            while f.read(1 << 24):
                pass
    print("| expo engine, the same weights as safetensors BF16 | | %.2f | |" % expo_engine(st))

if __name__ == "__main__":
    main()
