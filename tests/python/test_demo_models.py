#!/usr/bin/env python3
"""The trained demo's models (demo/models) as expo reads them:

 - every file matches demo/models/SHA256SUMS, and every file there is listed;
 - expo's tokenizer gives, for conversations of the task rendered by the chat template, the
   ids the training script trained on (demo/train/bpe.py), and decodes them back;
 - expo's chat template rendering is the training script's;
 - the configs are what expo demo expects (Llama causal models sharing one shape, a
   LlamaForSequenceClassification reward model, BF16 weights), and prompts.jsonl carries the
   ground truth of every question of the task.

Usage: test_demo_models.py path/to/expo
"""
import hashlib
import json
import pathlib
import random
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ROOT / "demo" / "models"
sys.path.insert(0, str(ROOT / "demo" / "train"))
import bpe  # noqa: E402
import task  # noqa: E402

failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
    if not ok:
        failures.append(name)


def main():
    expo = sys.argv[1]
    # checksums
    listed = {}
    for line in (MODELS / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    files = sorted(str(p.relative_to(MODELS)) for p in MODELS.rglob("*")
                   if p.is_file() and p.name != "SHA256SUMS")
    check("every file is listed in SHA256SUMS", sorted(listed) == files,
          f"listed {sorted(listed)} vs present {files}")
    bad = [n for n, d in listed.items()
           if not (MODELS / n).is_file() or hashlib.sha256((MODELS / n).read_bytes()).hexdigest() != d]
    check("checksums match", not bad, f"differ: {bad}")

    # configs
    names = ["sft", "dpo-10", "dpo-20", "dpo-full"]
    configs = {n: json.loads((MODELS / n / "config.json").read_text()) for n in names + ["reward"]}
    shape_keys = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "num_key_value_heads", "vocab_size"]
    check("policies share one Llama shape",
          all(configs[n]["architectures"] == ["LlamaForCausalLM"] and
              all(configs[n][k] == configs["sft"][k] for k in shape_keys) for n in names))
    check("reward model is LlamaForSequenceClassification with one label",
          configs["reward"]["architectures"] == ["LlamaForSequenceClassification"]
          and configs["reward"]["num_labels"] == 1)
    for n in names + ["reward"]:
        header_len = int.from_bytes((MODELS / n / "model.safetensors").read_bytes()[:8], "little")
        header = json.loads((MODELS / n / "model.safetensors").read_bytes()[8:8 + header_len])
        dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
        check(f"{n}: BF16 weights", dtypes == {"BF16"}, str(dtypes))

    # prompts carry the truth of every question
    records = [json.loads(line) for line in (MODELS / "prompts.jsonl").read_text().splitlines()]
    facts = {f.prompt: f for f in task.all_facts()}
    check("prompts.jsonl holds every question once",
          sorted(r["prompt"] for r in records) == sorted(facts))
    check("prompts.jsonl truth is task.py's",
          all(r["claim"] == facts[r["prompt"]].claim and r["answer"] == facts[r["prompt"]].answer
              for r in records))

    # tokenizer: the ids training used
    tok_json = json.loads((MODELS / "sft" / "tokenizer.json").read_text())
    merges = [tuple(m.split(" ")) for m in tok_json["model"]["merges"]]
    trained = bpe.Bpe(merges)
    check("tokenizer.json vocabulary is bpe.py's",
          {k: v for k, v in trained.vocab.items() if k not in bpe.SPECIALS} == tok_json["model"]["vocab"])
    rng = random.Random(3)
    texts = []
    for fact in rng.sample(task.all_facts(), 60):
        for style in task.STYLES:
            answer = task.answer_in_style(fact, style, rng)
            texts.append(bpe.render_chat([{"role": "user", "content": fact.prompt},
                                          {"role": "assistant", "content": answer}], False))
    texts.append("odd text: caf\u00e9, tabs\tand  spaces, 123456, <|im_end|> inside, \u4e2d\u6587")
    mismatches = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(texts):
            path = pathlib.Path(tmp) / f"t{i}.txt"
            path.write_bytes(text.encode())
            got = json.loads(subprocess.run(
                [expo, "tokenize", "--tokenizer", str(MODELS / "sft"), "--text-file", str(path),
                 "--no-special"], check=True, capture_output=True, text=True).stdout)
            if got != trained.encode(text):
                mismatches += 1
                if mismatches <= 3:
                    print(f"  {text!r}\n  expo {got}\n  bpe  {trained.encode(text)}")
        check(f"expo tokenize = training ids ({len(texts)} texts)", mismatches == 0,
              f"{mismatches} differ")
        # the chat template
        messages = [{"role": "user", "content": "What is 7 plus 5?"},
                    {"role": "assistant", "content": "Sure! 7 plus 5 is 12."}]
        mpath = pathlib.Path(tmp) / "m.json"
        for gen, msgs in ((True, messages[:1]), (False, messages)):
            mpath.write_text(json.dumps(msgs))
            cmd = [expo, "chat-template", "--tokenizer", str(MODELS / "sft"), "--messages", str(mpath)]
            if gen:
                cmd.append("--add-generation-prompt")
            out = subprocess.run(cmd, capture_output=True, text=True)
            want = bpe.render_chat(msgs, gen)
            check(f"chat template (add_generation_prompt={gen})",
                  out.returncode == 0 and out.stdout.rstrip("\n") == want.rstrip("\n"),
                  f"rc {out.returncode}: {out.stdout!r} vs {want!r} {out.stderr}")
    if failures:
        print(f"{len(failures)} failed: {failures}")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
