#!/usr/bin/python3
"""expo's GGUF output against a real llama.cpp (tests/gguf/llama_cpp_ref.mjs), for one model of
make_arch_models.py, or the extrapolation pair against numpy. Used by gguf_llama_cpp_test.sh.

  gguf_llama_cpp_check.py model EXPO MANIFEST NAME WORK
      For the model NAME: `expo convert` to each GGUF type of the manifest; then
      - metadata: general.architecture, general.name (the output's stem), tokenizer.ggml.model /
        .pre, tokenizer.chat_template equal to the tokenizer_config.json's (absent when it has none),
        and llama.cpp reads the same architecture and vocabulary type;
      - tokenizer: llama.cpp's ids (parse_special true) for every string of
        tests/golden/text/tokenizer/corpus.json equal `expo tokenize --no-special`'s; with special
        tokens (expo tokenize's default) equal llama.cpp's with its BOS (and EOS) as
        llama_vocab_get_add_bos/eos say; parse_special false equals parse_special true on the
        strings that spell no control token, and gives no control token on the others;
      - logits and greedy decoding: from prompts whose every greedy step has a clear top-2 margin in
        expo's logits, llama.cpp's 16 greedy tokens equal those of expo's engine on the Hugging Face
        model, and llama.cpp's top-10 logits at every step equal expo's (`expo forward`) within a
        bound of the type (relative to the logit scale, max |logit| of the row);
      - expo's engine on the GGUF file itself (`expo generate/forward --model NAME.gguf`, its
        config and tokenizer read from the file's metadata): the same greedy tokens as llama.cpp
        on the same file, top-10 logits within the type's bound, and `expo tokenize --tokenizer
        NAME.gguf` ids equal to `expo tokenize` with the Hugging Face tokenizer over the corpus;
      - files llama.cpp wrote: the F32 file rewritten as Q8_0 and F16 by llama.cpp's own quantizer
        (llama_cpp_quantize.py: llama_model_quantize, what llama-quantize runs), and both checks
        above (llama.cpp's greedy tokens and logits, expo's engine on the same file) on each.
  gguf_llama_cpp_check.py extrapolate EXPO MANIFEST WORK
      `expo extrapolate --format gguf` of the pair at alpha 0.5 (F32 and Q8_0): every tensor equals
      numpy's float64 aligned + alpha * (aligned - sft), in llama.cpp's layout (q/k rows permuted as
      convert_hf_to_gguf.py's LlamaModel.permute), rounded to F32 (bit for bit) or quantized to
      Q8_0 from float64 (bit for bit: per block dh = F16(amax / 127) to nearest even, q = the
      nearest integer to x / dh, ties away from zero, clamped to +-127).
      Then the same pair rewritten as Q8_0 by llama.cpp's quantizer, extrapolated by expo from
      those files: every tensor equals numpy's float64 of their exact values (d * q), as F32 and
      as Q8_0, bit for bit.
Prints what each check compares; exits 1 on any failure.
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
REF = os.path.join(HERE, "llama_cpp_ref.mjs")
QUANTIZE = os.path.join(HERE, "llama_cpp_quantize.py")
CORPUS = os.path.join(ROOT, "tests", "golden", "text", "tokenizer", "corpus.json")

N_STEPS = 16
# Logits: the largest |llama.cpp - expo| over the top-10 ids of a step, relative to the row's
# max |logit|. ggml's CPU matmul converts the activations to the weights' vec_dot type: F32 stays
# F32 (only the summation order differs: ~1e-6), F16 rounds activations to 11 bits (2^-11
# relative each), BF16 to 8 bits (2^-8), Q8_0 quantizes weights and activations alike to 8-bit
# blocks (error up to amax/254 per value, ~0.3% RMS per matmul, compounding over the ~8 matmuls of
# two to six layers and the head).
TOLERANCE = {"f32": 1e-3, "f16": 1e-2, "bf16": 3e-2, "q8_0": 6e-2}
# The types llama.cpp's quantizer writes from each model's F32 file, for expo's engine to read.
LLAMA_CPP_WRITTEN = ["q8_0", "f16"]
LLAMA_FTYPE = {"f16": 1, "q8_0": 7, "bf16": 32}  # general.file_type (llama_ftype)
CANDIDATE_TEXTS = [
    "The capital of France is", "Once upon a time, there was a", "def fibonacci(n):",
    "1, 2, 3, 4, 5,", "In the beginning", "Hello, my name is", "Question: why is the sky blue?",
    "The quick brown fox", "東京は日本の首都です。", "import numpy as np\n", "Dear Sir or Madam,",
    "Water boils at", "A list of fruits:", "SELECT * FROM", "The weather today",
    "Paris, London, Berlin,",
]

failures = []
passes = [0]


def report(ok, what, detail=""):
    if ok:
        passes[0] += 1
        print("ok: %s%s" % (what, (" (" + detail + ")") if detail else ""))
    else:
        failures.append(what)
        print("FAIL: %s%s" % (what, (": " + detail) if detail else ""))


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s%s" % (" ".join(cmd[:3]), p.returncode,
                                                    p.stdout.decode(errors="replace")[-2000:],
                                                    p.stderr.decode(errors="replace")[-3000:]))
    return p.stdout.decode("utf-8")


def node(args):
    out = json.loads(run(["node", REF] + args + ["--threads", "1"]))
    for line in out.get("llama_log", []):
        print("  llama.cpp log: " + line[:300])
    return out


# ---------------------------------------------------------------------------------------------
# GGUF, read with numpy (spec: ggml docs/gguf.md)

GGML_TYPES = {0: "F32", 1: "F16", 8: "Q8_0", 30: "BF16"}
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
          11: "<q", 12: "<d"}
VALUE_TYPE = {0: "u8", 1: "i8", 2: "u16", 3: "i16", 4: "u32", 5: "i32", 6: "f32", 7: "bool",
              8: "str", 10: "u64", 11: "i64", 12: "f64"}


class Gguf:
    def __init__(self, path):
        self.data = memoryview(open(path, "rb").read())
        self.pos = 0
        assert bytes(self.data[:4]) == b"GGUF", "not a GGUF file"
        self.pos = 4
        self.version = self.take("<I")
        n_tensors, n_kv = self.take("<Q"), self.take("<Q")
        self.meta, self.meta_type = {}, {}
        for _ in range(n_kv):
            key = self.string()
            t = self.take("<I")
            if t == 9:
                et, n = self.take("<I"), self.take("<Q")
                if et == 8:
                    v = [self.string() for _ in range(n)]
                else:
                    dt = np.dtype(SCALAR[et])
                    v = np.frombuffer(self.data, dt, n, self.pos)
                    self.pos += n * dt.itemsize
                self.meta_type[key] = "array[%s]" % VALUE_TYPE[et]
            else:
                v = self.string() if t == 8 else self.take(SCALAR[t])
                self.meta_type[key] = VALUE_TYPE[t]
            self.meta[key] = v
        self.tensors = {}
        for _ in range(n_tensors):
            name = self.string()
            nd = self.take("<I")
            ne = [self.take("<Q") for _ in range(nd)]
            t = self.take("<I")
            off = self.take("<Q")
            self.tensors[name] = (GGML_TYPES.get(t, str(t)), list(reversed(ne)), off)
        align = int(self.meta.get("general.alignment", 32))
        self.base = (self.pos + align - 1) // align * align

    def take(self, fmt):
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = bytes(self.data[self.pos:self.pos + n]).decode("utf-8")
        self.pos += n
        return s

    def raw(self, name):
        kind, shape, off = self.tensors[name]
        n = int(np.prod(shape))
        size = {"F32": 4 * n, "F16": 2 * n, "BF16": 2 * n, "Q8_0": n // 32 * 34}[kind]
        return bytes(self.data[self.base + off:self.base + off + size])


# ---------------------------------------------------------------------------------------------
# model checks


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def expected_tokenizer(folder):
    """(tokenizer.ggml.model, tokenizer.ggml.pre) that the brief's mapping gives this tokenizer."""
    tok = read_json(os.path.join(folder, "tokenizer.json"))
    model = tok["model"]
    if model.get("byte_fallback"):
        return "llama", None
    pre = json.dumps(tok.get("pre_tokenizer"))
    if "\\\\p{N}{1,3}" in pre:
        return "gpt2", "llama-bpe" if model.get("ignore_merges") else "dbrx"
    if "\\\\p{N}|" in pre:
        return "gpt2", "qwen2"
    return "gpt2", "gpt-2"


def control_tokens(folder):
    tok = read_json(os.path.join(folder, "tokenizer.json"))
    return {t["id"]: t["content"] for t in tok["added_tokens"] if t["special"]}


def expo_tokenize(expo, folder, text, special, work):
    path = os.path.join(work, "text.txt")
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    cmd = [expo, "tokenize", "--tokenizer", folder, "--text-file", path]
    if not special:
        cmd.append("--no-special")
    return json.loads(run(cmd))


def check_tokenizer(expo, folder, gguf, work, name):
    """See the module's doc. Differences that come from llama.cpp's own tokenizer rather than from
    the conversion are named, each with its reason, and only those: (1) NFC: llama.cpp's BPE
    pre-tokenizers do not apply tokenizer.json's NFC normalizer (llama-vocab.cpp has no
    normalizer for "qwen2"), so llama.cpp's ids of NFC(text) must equal expo's of text; (2)
    llama.cpp's load forces tokens whose text is on its EOT/EOG/FIM lists (llama-vocab.cpp,
    "control-looking token ... will be overridden": Qwen's and Gemma's ordinary '</s>', '<s>',
    Qwen's non-special <|fim_*|>, <|repo_name|>, <|file_sep|>) to CONTROL, so text spelling them
    becomes one token. (llama.cpp's SPM merges by the score of the merged piece where
    transformers merges by tokenizer.json's merge rank; expo scores each piece by the rank of the
    first merge that builds it, so runs of "▁", whose merges Llama 2's tokenizer.json ranks last
    though their ids are low, merge the same in both.)"""
    import re
    import unicodedata
    corpus = read_json(CORPUS)
    tok = read_json(os.path.join(folder, "tokenizer.json"))
    nfc = "NFC" in json.dumps(tok.get("normalizer"))
    queries = list(corpus)
    if nfc:
        queries += [unicodedata.normalize("NFC", t) for t in corpus
                    if unicodedata.normalize("NFC", t) != t]
    texts_path = os.path.join(work, "corpus.json")
    with open(texts_path, "w", encoding="utf-8") as f:
        json.dump(queries, f, ensure_ascii=False)
    lc = node(["--model", gguf, "--tokenize", texts_path])
    md = lc["metadata"]
    by_text = {r["text"]: r for r in lc["results"]}
    forced = {}
    for line in lc.get("llama_log", []):
        m = re.search(r"control-looking token:\s*(\d+) '(.*)' was not control-type", line)
        if m:
            forced[int(m.group(1))] = m.group(2)
    specials = control_tokens(folder)
    control_text = list(specials.values()) + list(forced.values())
    # expo tokenize once over all the strings joined by a control token that none spells (the
    # tokenizer splits at added tokens before normalizing and pre-tokenizing, so each piece is
    # encoded as the string alone); the few strings that spell it are encoded one by one.
    sep_id, sep = min(specials.items(), key=lambda kv: (sum(kv[1] in s for s in corpus), kv[0]))
    joined = [s for s in corpus if sep not in s]
    alone = [s for s in corpus if sep in s]
    ids = expo_tokenize(expo, folder, sep.join(joined), False, work)
    pieces, cur = [], []
    for t in ids:
        if t == sep_id:
            pieces.append(cur)
            cur = []
        else:
            cur.append(t)
    pieces.append(cur)
    expo_ids = {}
    if len(pieces) == len(joined):
        expo_ids.update(zip(joined, pieces))
    else:
        alone = corpus
    for s in alone:
        expo_ids[s] = expo_tokenize(expo, folder, s, False, work)
    bad, explained, nfc_same = [], {}, 0
    for text in corpus:
        want = expo_ids[text]
        got = by_text[text]["special"]
        if nfc and unicodedata.normalize("NFC", text) != text:
            got_nfc = by_text[unicodedata.normalize("NFC", text)]["special"]
            if got_nfc == want:
                nfc_same += 1
                if got != want:
                    explained.setdefault("NFC (llama.cpp does not normalize; its ids of NFC(text) "
                                         "== expo's)", []).append(text)
                continue
        if got == want:
            continue
        want = expo_tokenize(expo, folder, text, False, work)  # confirm with the string alone
        if got == want:
            continue
        if any(f in text for f in forced.values()):
            explained.setdefault("llama.cpp forces %s to CONTROL" % sorted(
                {f for f in forced.values() if f in text}), []).append(text)
        else:
            bad.append((text, got, want))
    for why, texts in explained.items():
        print("  known llama.cpp difference, %s: %d strings: %s" % (
            why, len(texts), ", ".join(repr(t[:30]) for t in texts)))
    for text, got, want in bad[:8]:
        print("  differs: %r\n    llama.cpp %s\n    expo      %s" % (text, got[:40], want[:40]))
    n_known = sum(len(v) for v in explained.values())
    report(not bad, "%s: tokenizer: llama.cpp tokenize(parse_special=true) == expo tokenize "
           "--no-special on %d corpus strings%s" % (
               name, len(corpus), " (NFC strings: llama.cpp's ids of NFC(text))" if nfc else ""),
           "%d differ" % len(bad) if bad else "%d the same, %d known differences; separator %s, "
           "%d strings alone" % (len(corpus) - n_known, n_known, sep, len(alone)))
    # special tokens added: expo's default against llama.cpp's add_bos/add_eos
    text = "Hello world, this is a test."
    with_special = expo_tokenize(expo, folder, text, True, work)
    base = expo_tokenize(expo, folder, text, False, work)
    want = ([md["bos"]] if md["should_prepend_bos"] else []) + base + \
        ([md["eos"]] if md["should_append_eos"] else [])
    report(with_special == want and base == by_text.get(text, {"special": base})["special"],
           "%s: tokenizer: BOS/EOS: expo tokenize (special tokens added) == llama.cpp's "
           "add_bos=%s (bos %s) / add_eos=%s around the ids" %
           (name, md["should_prepend_bos"], md["bos"], md["should_append_eos"]),
           "expo %s, llama.cpp's rule %s" % (with_special[:4], want[:4]))
    # parse_special false: the same where no control token (nor a token llama.cpp forces to
    # CONTROL) is spelled; no control token where one is
    bad_plain = []
    for text in corpus:
        r = by_text[text]
        spells = any(c in text for c in control_text)
        if not spells and r["plain"] != r["special"]:
            bad_plain.append((text, "plain differs from special"))
        if spells and any(t in specials or t in forced for t in r["plain"]):
            bad_plain.append((text, "control token in plain: %s" % r["plain"][:20]))
    for text, why in bad_plain[:5]:
        print("  %r: %s" % (text, why))
    report(not bad_plain, "%s: tokenizer: llama.cpp parse_special=false == parse_special=true "
           "on strings without control-token text, and no control token on the others" % name)
    return lc


def check_metadata(folder, gguf_path, lc_md, name, arch):
    g = Gguf(gguf_path)
    tcfg = read_json(os.path.join(folder, "tokenizer_config.json"))
    stem = os.path.splitext(os.path.basename(gguf_path))[0]
    model, pre = expected_tokenizer(folder)
    if pre is None and g.meta.get("tokenizer.ggml.pre") == "default":
        pre = "default"  # SentencePiece-style: llama.cpp reads no pre-tokenizer for "llama"
    got = {k: g.meta.get(k) for k in ("general.architecture", "general.name",
                                        "tokenizer.ggml.model", "tokenizer.ggml.pre")}
    want = {"general.architecture": arch, "general.name": stem, "tokenizer.ggml.model": model,
            "tokenizer.ggml.pre": pre}
    report(got == want, "%s: metadata %s" % (name, want), "" if got == want else "got %s" % got)
    tmpl = tcfg.get("chat_template")
    got_t = g.meta.get("tokenizer.chat_template")
    report(got_t == tmpl and lc_md["chat_template"] == tmpl,
           "%s: tokenizer.chat_template %s" % (name, "== tokenizer_config.json's" if tmpl
                                                else "absent (the source has none)"),
           "" if got_t == tmpl else "GGUF has %r" % (got_t[:80] if got_t else got_t))
    want_vt = "spm" if model == "llama" else "bpe"
    report(lc_md["architecture"] == arch and lc_md["vocabulary_type"] == want_vt,
           "%s: llama.cpp reads architecture %s, vocabulary type %s" % (name, arch, want_vt),
           "llama.cpp: %s, %s" % (lc_md["architecture"], lc_md["vocabulary_type"]))
    return g


def expo_logits(expo, folder, tokens, work):
    out = os.path.join(work, "logits.npy")
    run([expo, "forward", "--model", folder, "--tokens", ",".join(map(str, tokens)),
         "--output", out, "--threads", "1"])
    return np.load(out).astype(np.float64)


def pick_prompts(expo, folder, lc, work, name, specials):
    """The 3 prompts whose expo greedy continuation (16 tokens, no control token) has the largest
    smallest top-2 gap (relative to the row's max |logit|). Returns [(prompt, tokens, logits,
    relative gaps)]."""
    md = lc["metadata"]
    texts_path = os.path.join(work, "prompts.json")
    with open(texts_path, "w", encoding="utf-8") as f:
        json.dump(CANDIDATE_TEXTS, f, ensure_ascii=False)
    tk = node(["--model", lc["gguf"], "--tokenize", texts_path])
    prompts = [([md["bos"]] if md["should_prepend_bos"] else []) + r["special"]
               for r in tk["results"]]
    lines = os.path.join(work, "prompts.jsonl")
    with open(lines, "w") as f:
        for i, p in enumerate(prompts):
            f.write(json.dumps({"id": str(i), "tokens": p}) + "\n")
    out = os.path.join(work, "generated.jsonl")
    run([expo, "generate", "--model", folder, "--tokens-file", lines, "--output", out, "--greedy",
         "--max-new-tokens", str(N_STEPS), "--ignore-eos", "--threads", "1", "--no-progress"])
    generated = {}
    for line in open(out):
        d = json.loads(line)
        generated[int(d["id"])] = d["tokens"]
    tried = []
    for i, p in enumerate(prompts):
        toks = generated[i]
        if len(toks) != N_STEPS or any(t in specials for t in toks):
            continue
        logits = expo_logits(expo, folder, p + toks[:-1], work)[len(p) - 1:]
        assert [int(np.argmax(r)) for r in logits] == toks, "expo generate != argmax of forward"
        gaps = [top2_gap(r) for r in logits]
        tried.append((p, toks, logits, gaps))
    tried.sort(key=lambda x: -min(x[3]))
    chosen = tried[:3]
    print("  %s: %d candidate prompts; the 3 chosen have smallest relative top-2 gaps %s"
          % (name, len(tried), ", ".join("%.3g" % min(c[3]) for c in chosen)))
    return chosen


def top2_gap(row):
    """The gap between a logits row's two largest values, relative to its max |logit|."""
    top = np.sort(row)[-2:]
    return (top[1] - top[0]) / np.max(np.abs(row))


def top_logit_diff(row, step):
    """The largest |llama.cpp - expo| over llama.cpp's top logits of a step, relative to expo's
    row's max |logit|."""
    scale = np.max(np.abs(row))
    return max(abs(v - row[t]) / scale for t, v in step["top"])


def logits_within(diffs, tol, moe):
    """(ok, text): every step's top-10 logit difference (relative, top_logit_diff) within tol.
    With experts, up to one step in 16 may exceed it: where two experts' router scores are within
    the type's rounding of each other (Q8_0 activations in llama.cpp, not in expo), the two pick
    different experts at that layer and the step's logits move by more than rounding. Such steps
    are named."""
    if not diffs:
        return False, "no step compared"
    allowed = len(diffs) // 16 if moe else 0
    over = sorted(((d, i) for i, d in enumerate(diffs) if d > tol), reverse=True)
    rest = max([d for d in diffs if d <= tol], default=0.0)
    text = "max |diff| / max |logit| = %.3g <= %g" % (max(diffs) if not over else rest, tol)
    if over:
        text += " at all but %d step(s)%s: %s" % (
            len(over), " (experts: up to %d may differ by routing)" % allowed if moe else "",
            ", ".join("step %d %.3g" % (i, d) for d, i in over[:5]))
    return len(over) <= allowed, text


def check_greedy(expo, folder, gguf, kind, chosen, work, name, moe):
    """llama.cpp's greedy tokens equal expo's up to the first step whose top-2 gap in expo's
    logits is within twice the type's bound (there float differences may choose either token);
    llama.cpp's top-10 logits equal expo's within the bound at every step of the same prefix."""
    path = os.path.join(work, "greedy.json")
    with open(path, "w") as f:
        json.dump([c[0] for c in chosen], f)
    lc = node(["--model", gguf, "--greedy", path, "--n", str(N_STEPS), "--top", "10"])
    tol = TOLERANCE[kind]
    diffs, steps_same = [], 0
    bad, notes = [], []
    for (prompt, toks, logits, gaps), res in zip(chosen, lc["results"]):
        for s, step in enumerate(res["steps"]):
            diffs.append(top_logit_diff(logits[s], step))
            if res["tokens"][s] == toks[s]:
                steps_same += 1
                continue
            if gaps[s] < 2 * tol:
                notes.append("prompt %s step %d: llama.cpp %d, expo %d, expo's gap %.3g < 2 x %g:"
                             " compared up to here" % (prompt[:6], s, res["tokens"][s], toks[s],
                                                       gaps[s], tol))
            else:
                bad.append("prompt %s step %d: llama.cpp %d, expo %d, expo's gap %.3g"
                           % (prompt[:6], s, res["tokens"][s], toks[s], gaps[s]))
            break  # the prefixes differ from here on
    for line in notes + bad:
        print("  " + line)
    report(not bad and steps_same >= N_STEPS,
           "%s %s: llama.cpp's greedy tokens == expo's engine on the HF model: %d of %d steps "
           "over %d prompts the same" % (name, kind, steps_same, N_STEPS * len(chosen),
                                         len(chosen)))
    ok, within = logits_within(diffs, tol, moe)
    report(ok, "%s %s: llama.cpp's top-10 logits at %d steps vs expo forward: %s"
           % (name, kind, len(diffs), within))
    return lc


def check_engine_on_gguf(expo, gguf, kind, chosen, lc, work, name, moe):
    """expo's engine reading the GGUF file (config, tokenizer and weights from it) against
    llama.cpp on the same file: greedy tokens equal up to a step whose top-2 gap (in expo's
    logits) is within twice the type's bound, top-10 logits within the bound."""
    lines = os.path.join(work, "gguf-prompts.jsonl")
    with open(lines, "w") as f:
        for i, c in enumerate(chosen):
            f.write(json.dumps({"id": str(i), "tokens": c[0]}) + "\n")
    out = os.path.join(work, "gguf-generated.jsonl")
    run([expo, "generate", "--model", gguf, "--tokens-file", lines, "--output", out, "--greedy",
         "--max-new-tokens", str(N_STEPS), "--ignore-eos", "--threads", "1", "--no-progress"])
    generated = {int(d["id"]): d["tokens"] for d in map(json.loads, open(out))}
    tol = TOLERANCE[kind]
    diffs, same, bad = [], 0, []
    for i, (c, res) in enumerate(zip(chosen, lc["results"])):
        prompt, toks = c[0], generated[i]
        logits = expo_logits(expo, gguf, prompt + res["tokens"][:-1], work)[len(prompt) - 1:]
        diffs += [top_logit_diff(logits[s], step) for s, step in enumerate(res["steps"])]
        for s in range(N_STEPS):
            if toks[s] == res["tokens"][s]:
                same += 1
                continue
            gap = top2_gap(logits[s])
            if gap >= 2 * tol:
                bad.append("prompt %d step %d: expo on the GGUF %d, llama.cpp %d, gap %.3g"
                           % (i, s, toks[s], res["tokens"][s], gap))
            break
    for line in bad:
        print("  " + line)
    report(not bad and same >= N_STEPS,
           "%s %s: expo generate --model %s.gguf: greedy tokens == llama.cpp's on the same file: "
           "%d of %d steps the same" % (name, kind, kind, same, N_STEPS * len(chosen)))
    ok, within = logits_within(diffs, tol, moe)
    report(ok, "%s %s: expo forward --model the .gguf vs llama.cpp's top-10 logits at %d steps: "
           "%s" % (name, kind, len(diffs), within))


def tokenize_corpus(expo, tok, corpus, specials, work):
    """`expo tokenize --no-special` ids of every corpus string with the tokenizer `tok` (a folder
    or a .gguf): one call over the strings joined by a control token none spells (added tokens
    split the text before anything else runs), the strings that spell it alone."""
    sep_id, sep = min(specials.items(), key=lambda kv: (sum(kv[1] in s for s in corpus), kv[0]))
    joined = [s for s in corpus if sep not in s]
    out = {s: expo_tokenize(expo, tok, s, False, work) for s in corpus if sep in s}
    pieces, cur = [], []
    for t in expo_tokenize(expo, tok, sep.join(joined), False, work):
        if t == sep_id:
            pieces.append(cur)
            cur = []
        else:
            cur.append(t)
    pieces.append(cur)
    if len(pieces) != len(joined):
        raise RuntimeError("the separator %r did not split the corpus in %d pieces" % (sep, len(joined)))
    out.update(zip(joined, pieces))
    return out


def check_tokenizer_from_gguf(expo, folder, gguf, work, name):
    """`expo tokenize --tokenizer NAME.gguf` (the tokenizer rebuilt from the GGUF metadata) against
    `expo tokenize` with the Hugging Face folder, over the corpus, without special tokens."""
    corpus = read_json(CORPUS)
    specials = control_tokens(folder)
    want = tokenize_corpus(expo, folder, corpus, specials, work)
    got = tokenize_corpus(expo, gguf, corpus, specials, work)
    differ = [t for t in corpus if want[t] != got[t]]
    for text in differ[:5]:
        print("  differs: %r\n    gguf %s\n    hf   %s" % (text, got[text][:30], want[text][:30]))
    report(not differ, "%s: expo tokenize --tokenizer the .gguf == with the Hugging Face tokenizer "
           "over %d strings (%d differ)" % (name, len(corpus), len(differ)))


def check_model(expo, manifest, name, work):
    m = next(x for x in read_json(manifest)["models"] if x["name"] == name)
    folder = m["dir"]
    arch = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama",
            "MixtralForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2",
            "Qwen3ForCausalLM": "qwen3", "Gemma2ForCausalLM": "gemma2",
            "Gemma3ForCausalLM": "gemma3", "Olmo2ForCausalLM": "olmo2",
            "Phi3ForCausalLM": "phi3", "InternLM2ForCausalLM": "internlm2"}[m["architecture"]]
    specials = control_tokens(folder)
    moe = "num_local_experts" in read_json(os.path.join(folder, "config.json"))
    lc = None
    chosen = None
    for kind in m["types"]:
        gguf = os.path.join(work, "%s-%s.gguf" % (name, kind))
        try:
            out = run([expo, "convert", "--model", folder, "--output", gguf, "--gguf-type", kind,
                       "--threads", "1"])
            print("  " + out.strip())
        except RuntimeError as e:
            report(False, "%s %s: expo convert" % (name, kind), str(e))
            continue
        try:
            if lc is None:
                lc = check_tokenizer(expo, folder, gguf, work, name)
                lc["gguf"] = gguf
                check_metadata(folder, gguf, lc["metadata"], name, arch)
                check_tokenizer_from_gguf(expo, folder, gguf, work, name)
                chosen = pick_prompts(expo, folder, lc, work, name, specials)
            g = Gguf(gguf)
            kinds = {t[0] for n, t in g.tensors.items() if len(t[1]) > 1}
            want = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0"}[kind]
            report(kinds == {want}, "%s %s: every matrix is %s" % (name, kind, want), str(kinds))
            lc_greedy = check_greedy(expo, folder, gguf, kind, chosen, work, name, moe)
            check_engine_on_gguf(expo, gguf, kind, chosen, lc_greedy, work, name, moe)
            if kind == "f32":
                for lc_kind in LLAMA_CPP_WRITTEN:
                    check_llama_cpp_written(expo, folder, gguf, lc_kind, chosen, work, name, moe)
        except RuntimeError as e:
            report(False, "%s %s" % (name, kind), str(e))
        os.remove(gguf)


def llama_cpp_quantize(src, dst, kind):
    """The GGUF `src` rewritten by llama.cpp's own quantizer as `kind` (llama_cpp_quantize.py)."""
    run([sys.executable, QUANTIZE, src, dst, kind])


def check_llama_cpp_written(expo, folder, f32_gguf, kind, chosen, work, name, moe):
    """A file llama.cpp wrote, not expo: expo's F32 GGUF quantized to `kind` by llama.cpp's
    llama_model_quantize (its metadata copied and extended by llama.cpp, its tensors in llama.cpp's
    order, Q8_0 blocks from ggml's quantizer). llama.cpp's greedy tokens and logits on it against
    expo's engine on the Hugging Face model, then expo's engine on the same file against llama.cpp,
    as for expo's own files."""
    gguf = os.path.join(work, "%s-llama.cpp-%s.gguf" % (name, kind))
    llama_cpp_quantize(f32_gguf, gguf, kind)
    g = Gguf(gguf)
    # llama.cpp's quantizer keeps a MoE router (ffn_gate_inp) F32 (src/llama-quant.cpp).
    kinds = {t[0] for n, t in g.tensors.items() if len(t[1]) > 1 and "ffn_gate_inp" not in n}
    routers = {t[0] for n, t in g.tensors.items() if "ffn_gate_inp" in n}
    want = {"f16": "F16", "bf16": "BF16", "q8_0": "Q8_0"}[kind]
    report(kinds == {want} and routers <= {"F32"} and
           g.meta.get("general.file_type") == LLAMA_FTYPE[kind],
           "%s: llama.cpp's quantizer wrote %s: every matrix %s (a MoE router F32), "
           "general.file_type %d" % (name, kind, want, LLAMA_FTYPE[kind]),
           "%s, file_type %s" % (kinds, g.meta.get("general.file_type")))
    label = name + " (llama.cpp-written)"
    lc_greedy = check_greedy(expo, folder, gguf, kind, chosen, work, label, moe)
    check_engine_on_gguf(expo, gguf, kind, chosen, lc_greedy, work, label, moe)
    os.remove(gguf)


# ---------------------------------------------------------------------------------------------
# extrapolation against numpy


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = widen(data[8 + n + b:8 + n + e], v["dtype"]).reshape(v["shape"])
    return out


def widen(raw, kind):
    """Stored values as float64, exactly: F32, F16 and BF16 widen; a Q8_0 block is d * q."""
    if kind == "F32":
        return np.frombuffer(raw, "<f4").astype(np.float64)
    if kind == "F16":
        return np.frombuffer(raw, "<f2").astype(np.float64)
    if kind == "BF16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view("<f4").astype(np.float64)
    if kind == "Q8_0":
        b = np.frombuffer(raw, np.uint8).reshape(-1, 34)
        d = b[:, :2].copy().view("<f2").astype(np.float64)
        return (d * b[:, 2:].copy().view(np.int8).astype(np.float64)).ravel()
    raise ValueError(kind)


def permute(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute: each head's rotary halves interleaved."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def q8_0(x):
    """Q8_0 blocks of float64 values (rows of a multiple of 32), bytes."""
    x = np.asarray(x, np.float64).reshape(-1, 32)
    amax = np.max(np.abs(x), axis=1)
    dh = (amax / 127).astype(np.float16)  # numpy: correctly rounded, to nearest even
    d = dh.astype(np.float64)[:, None]
    a = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.floor(a / np.where(d == 0, 1, d) + 0.5)
    q = np.clip(q, 0, 127)
    # exact: q is the nearest integer, ties away from zero (midpoints (k + 1/2) d are exact)
    q = np.where((q > 0) & (a < (q - 0.5) * d), q - 1, q)
    q = np.where((q < 127) & (a >= (q + 0.5) * d), q + 1, q)
    q = np.where(d == 0, 0, q) * np.sign(x)
    out = np.zeros((x.shape[0], 34), np.uint8)
    out[:, :2] = dh.view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.astype(np.int8).view(np.uint8)
    return out.tobytes()


def check_extrapolate(expo, manifest, work):
    pair = read_json(manifest)["pair"]
    cfg = read_json(os.path.join(pair["aligned"], "config.json"))
    sft = read_safetensors(os.path.join(pair["sft"], "model.safetensors"))
    aligned = read_safetensors(os.path.join(pair["aligned"], "model.safetensors"))
    alpha = pair["alpha"]
    theta = {n: aligned[n] + alpha * (aligned[n] - sft[n]) for n in sft}
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    want = {"token_embd.weight": theta["model.embed_tokens.weight"],
            "output_norm.weight": theta["model.norm.weight"],
            "output.weight": theta["lm_head.weight"]}
    for i in range(cfg["num_hidden_layers"]):
        p, b = "model.layers.%d." % i, "blk.%d." % i
        want[b + "attn_norm.weight"] = theta[p + "input_layernorm.weight"]
        want[b + "ffn_norm.weight"] = theta[p + "post_attention_layernorm.weight"]
        want[b + "attn_q.weight"] = permute(theta[p + "self_attn.q_proj.weight"], nh)
        want[b + "attn_k.weight"] = permute(theta[p + "self_attn.k_proj.weight"], nkv)
        want[b + "attn_v.weight"] = theta[p + "self_attn.v_proj.weight"]
        want[b + "attn_output.weight"] = theta[p + "self_attn.o_proj.weight"]
        for g, h in (("ffn_gate", "gate_proj"), ("ffn_up", "up_proj"), ("ffn_down", "down_proj")):
            want[b + g + ".weight"] = theta[p + "mlp." + h + ".weight"]
    check_extrapolated(expo, pair["sft"], pair["aligned"], alpha, want, work, "expo-%s.gguf",
                       "extrapolate --format gguf", "aligned + alpha (aligned - sft), q/k permuted")


def check_extrapolated(expo, sft, aligned, alpha, want, work, out_name, what, expected):
    """`expo extrapolate --format gguf` of `sft` and `aligned` at `alpha`, as F32 and as Q8_0:
    every tensor equals want[name] (float64) rounded to F32, or quantized to Q8_0 blocks by
    q8_0() (1-D tensors F32), bit for bit."""
    for kind in ("f32", "q8_0"):
        out = os.path.join(work, out_name % kind)
        try:
            run([expo, "extrapolate", "--sft", sft, "--aligned", aligned,
                 "--alpha", str(alpha), "--format", "gguf", "--output", out, "--gguf-type", kind,
                 "--threads", "1", "--no-progress"])
        except RuntimeError as e:
            report(False, "%s --gguf-type %s" % (what, kind), str(e))
            continue
        g = Gguf(out)
        bad = []
        if set(g.tensors) != set(want):
            bad.append("tensor names: extra %s, missing %s" % (sorted(set(g.tensors) - set(want)),
                                                               sorted(set(want) - set(g.tensors))))
        for n in sorted(set(g.tensors) & set(want)):
            t, shape, _ = g.tensors[n]
            w = want[n]
            if list(w.shape) != shape:
                bad.append("%s: shape %s, want %s" % (n, shape, list(w.shape)))
                continue
            if w.ndim == 1 or kind == "f32":
                exp_t, exp = "F32", w.astype("<f4").tobytes()
            else:
                exp_t, exp = "Q8_0", q8_0(w)
            if t != exp_t:
                bad.append("%s: type %s, want %s" % (n, t, exp_t))
            elif g.raw(n) != exp:
                if t == "F32":
                    got = np.frombuffer(g.raw(n), "<f4").astype(np.float64)
                    k = int(np.sum(got != w.astype(np.float32).ravel()))
                    bad.append("%s: %d of %d values differ" % (n, k, got.size))
                else:
                    gb = np.frombuffer(g.raw(n), np.uint8).reshape(-1, 34)
                    eb = np.frombuffer(exp, np.uint8).reshape(-1, 34)
                    k = int(np.sum(np.any(gb != eb, axis=1)))
                    bad.append("%s: %d of %d Q8_0 blocks differ" % (n, k, gb.shape[0]))
        for line in bad[:10]:
            print("  " + line)
        report(not bad, "%s --gguf-type %s, alpha %g: %d tensors == numpy float64 %s, %s" %
               (what, kind, alpha, len(want), expected, "as F32 bit for bit" if kind == "f32"
                else "Q8_0 blocks bit for bit (1-D tensors F32)"))
        os.remove(out)


def dequantize(g, name):
    """A tensor of a GGUF file as float64 values (widen)."""
    kind, shape, _ = g.tensors[name]
    return widen(g.raw(name), kind).reshape(shape)


def check_extrapolate_llama_cpp_pair(expo, manifest, work):
    """`expo extrapolate` of a pair that llama.cpp's quantizer wrote as Q8_0 (from expo's F32
    GGUFs of the pair's folders): every output tensor equals numpy's float64 aligned + alpha
    (aligned - sft) of the files' exact values, as F32 bit for bit and as Q8_0 blocks bit for bit."""
    pair = read_json(manifest)["pair"]
    alpha = pair["alpha"]
    files = {}
    for side in ("sft", "aligned"):
        f32 = os.path.join(work, "pair-%s-f32.gguf" % side)
        files[side] = os.path.join(work, "pair-%s-llama.cpp-q8_0.gguf" % side)
        run([expo, "convert", "--model", pair[side], "--output", f32, "--gguf-type", "f32",
             "--threads", "1"])
        llama_cpp_quantize(f32, files[side], "q8_0")
        os.remove(f32)
    sft, aligned = Gguf(files["sft"]), Gguf(files["aligned"])
    want = {}
    for n in aligned.tensors:
        a = dequantize(aligned, n)
        want[n] = a + alpha * (a - dequantize(sft, n))
    report(sorted(aligned.tensors) == sorted(sft.tensors) and
           {t[0] for n, t in aligned.tensors.items() if len(t[1]) > 1} == {"Q8_0"},
           "the pair rewritten by llama.cpp's quantizer: the same %d tensors, matrices Q8_0"
           % len(aligned.tensors))
    check_extrapolated(expo, files["sft"], files["aligned"], alpha, want, work,
                       "expo-from-llama.cpp-%s.gguf",
                       "expo extrapolate --sft/--aligned llama.cpp's Q8_0 files",
                       "aligned + alpha (aligned - sft) of the files' exact values")
    for f in files.values():
        os.remove(f)


def main(argv):
    if len(argv) >= 6 and argv[1] == "model":
        check_model(argv[2], argv[3], argv[4], argv[5])
    elif len(argv) >= 5 and argv[1] == "extrapolate":
        check_extrapolate(argv[2], argv[3], argv[4])
        check_extrapolate_llama_cpp_pair(argv[2], argv[3], argv[4])
    else:
        print(__doc__)
        return 2
    print("%d passed, %d failed" % (passes[0], len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
