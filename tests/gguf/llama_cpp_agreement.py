#!/usr/bin/env python3
"""llama.cpp (through tests/gguf/llama_cpp_ref.mjs) against the float64 numpy reference of
make_tiny_gguf.py, on the tiny llama GGUF that script writes (untied and tied LM head):

- the file loads, with the metadata written (architecture, vocabulary size, BOS/EOS, add_bos);
- tokenization equals GPT-2 byte-level BPE done here, with and without special-token parsing,
  and detokenizes back to the text;
- N greedy tokens per prompt are the reference's, every logit within --tolerance of it, and two
  runs (1 and 2 threads) give the same tokens;
- the same weights written without the q/k row permutation give logits far from the reference
  (so the agreement is not an accident of RoPE at position 0 or of symmetric weights).

    python3 tests/gguf/llama_cpp_agreement.py [--node node] [--tolerance 1e-3] [--json OUT]

Prints one line of figures per model; exits 1 on any disagreement.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_tiny_gguf as tiny  # noqa: E402

TEXTS = ["hello world", "the quick brown fox jumps over the lazy dog.", "numbers 123 4567 and 89",
         tiny.BOS + "hello" + tiny.EOS + " tokens", "  two  spaces\nand a newline", "it's we'll they're", ""]
N = 8

failures = []


def check(name, ok, detail=""):
    if not ok:
        failures.append(name)
        print(f"FAIL: {name}" + (f": {detail}" if detail else ""))


def run_ref(node, model, *args):
    cmd = [node, os.path.join(HERE, "llama_cpp_ref.mjs"), "--model", model, *args]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"FAIL: {' '.join(cmd)} exited {p.returncode}\n{p.stderr}")
        sys.exit(1)
    return json.loads(p.stdout)


def one_model(node, work, tied, tolerance):
    label = "tied" if tied else "untied"
    c, w, tok = tiny.tiny_model(seed=7, tied=tied)
    path = os.path.join(work, f"tiny-{label}.gguf")
    tiny.write_gguf(path, c, w, tok)

    texts_file = os.path.join(work, "texts.json")
    with open(texts_file, "w") as f:
        json.dump(TEXTS, f)
    out = run_ref(node, path, "--tokenize", texts_file)
    meta = out["metadata"]
    check(f"{label}: architecture", meta["architecture"] == "llama", meta["architecture"])
    check(f"{label}: vocab size", meta["vocab_size"] == c["vocab"], meta["vocab_size"])
    check(f"{label}: bos/eos", (meta["bos"], meta["eos"]) == (tok["bos"], tok["eos"]), (meta["bos"], meta["eos"]))
    check(f"{label}: add_bos", meta["should_prepend_bos"] is True)
    check(f"{label}: llama.cpp warnings", out["llama_log"] == [], out["llama_log"])
    for r in out["results"]:
        text = r["text"]
        want_special, want_plain = tiny.tokenize(tok, text, True), tiny.tokenize(tok, text, False)
        check(f"{label}: tokenize(special) {text!r}", r["special"] == want_special, f"{r['special']} != {want_special}")
        check(f"{label}: tokenize(plain) {text!r}", r["plain"] == want_plain, f"{r['plain']} != {want_plain}")
        check(f"{label}: detokenize {text!r}", r["detokenized_special"] == text == r["detokenized_plain"])

    prompts = [[tok["bos"]] + tiny.tokenize(tok, t, False) for t in TEXTS[:3]] + [[tok["bos"]]]
    prompts_file = os.path.join(work, "prompts.json")
    with open(prompts_file, "w") as f:
        json.dump(prompts, f)
    runs = [run_ref(node, path, "--greedy", prompts_file, "--n", str(N), "--all-logits", "--threads", t)
            for t in ("1", "2")]
    max_diff, max_rel, min_margin, agreed, total = 0.0, 0.0, np.inf, 0, 0
    for i, prompt in enumerate(prompts):
        got = runs[0]["results"][i]
        check(f"{label}: prompt {i} same tokens on 1 and 2 threads", got["tokens"] == runs[1]["results"][i]["tokens"])
        ref = tiny.greedy(c, w, prompt, N)
        ref_tokens = [t for t, _ in ref]
        total += N
        agreed += sum(a == b for a, b in zip(got["tokens"], ref_tokens))
        check(f"{label}: prompt {i} greedy tokens", got["tokens"] == ref_tokens, f"{got['tokens']} != {ref_tokens}")
        for step, (token, ref_logits) in zip(got["steps"], ref):
            logits = np.array(step["logits"], dtype=np.float64)
            diff = np.abs(logits - ref_logits)
            max_diff = max(max_diff, float(diff.max()))
            max_rel = max(max_rel, float(diff.max() / np.abs(ref_logits).max()))
            top2 = np.sort(ref_logits)[-2:]
            min_margin = min(min_margin, float(top2[1] - top2[0]))
            if step["token"] != token:  # the rest of the sequence differs; stop comparing it
                break
    check(f"{label}: max |logit - reference| {max_diff:.2e} <= {tolerance}", max_diff <= tolerance)
    # The same weights without the q/k row permutation: llama.cpp must then disagree.
    wrong = os.path.join(work, f"tiny-{label}-unpermuted.gguf")
    tiny.write_gguf(wrong, c, w, tok, permute=False)
    bad = run_ref(node, wrong, "--greedy", prompts_file, "--n", "1", "--all-logits")
    unpermuted_diff = max(float(np.max(np.abs(np.array(r["steps"][0]["logits"]) - tiny.forward(c, w, pr)[-1])))
                          for r, pr in zip(bad["results"], prompts) if len(pr) > 1)
    check(f"{label}: without the q/k permutation the logits differ (by {unpermuted_diff:.2e})", unpermuted_diff > 0.1)
    figures = dict(model=label, vocab=c["vocab"], greedy_tokens_agreeing=agreed, greedy_tokens=total,
                   max_abs_logit_diff=max_diff, max_rel_logit_diff=max_rel, min_top2_margin=min_margin,
                   unpermuted_max_abs_logit_diff=unpermuted_diff,
                   llama_cpp=runs[0]["build"])
    print(f"{label}: {agreed}/{total} greedy tokens agree, max |logit diff| {max_diff:.3e} "
          f"({max_rel:.1e} of the largest logit), smallest top-2 margin {min_margin:.3f}; "
          f"without the q/k permutation: {unpermuted_diff:.2f}")
    return figures


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--node", default="node")
    p.add_argument("--tolerance", type=float, default=1e-3)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        figures = [one_model(args.node, work, tied, args.tolerance) for tied in (False, True)]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    print(f"{len(failures)} failed" if failures else "llama.cpp agrees with the numpy reference")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
