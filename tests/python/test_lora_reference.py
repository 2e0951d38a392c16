#!/usr/bin/python3
"""Bit-exact reference test of `expo extrapolate` with PEFT LoRA adapters.

The contract checked here (all arithmetic in IEEE float64, separate operations, no FMA; one
rounding from float64 to the output dtype, round-to-nearest-even):

  LoRA product of a module, L and R float64:   p = L[:,0]*R[0,:]; p = p + L[:,k]*R[k,:] for k = 1..r-1
      Linear:                      L = B [out,r], R = A [r,in]      (W [out,in])
      embedding / fan_in_fan_out:  L = A^T,       R = B^T           (W [V,H] / W stored [in,out])
  scale s = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora); r and lora_alpha of a module
      from rank_pattern / alpha_pattern: the first key k (JSON order) with
      re.fullmatch(rf"(.*\\.)?({k})", module) wins.
  --sft SFT --aligned ADAPTER:      adapted W:         round(W + c*p), c = (1 + alpha) * s
                                    modules_to_save a: round(a + alpha*(a - w))
                                    anything else:     byte-identical to SFT
  --output-adapter:                 lora_B / lora_embedding_B: round((1 + alpha) * B) in B's dtype;
                                    lora_A byte-identical; modules_to_save as above;
                                    adapter_config.json byte-identical
  --base BASE --sft AD0 --aligned AD1:  t_i = W + s_i*p_i (or AD_i's full tensor, or W);
                                    round(t1 + alpha*(t1 - t0)); untouched tensors byte-identical
  Output dtype: the SFT (BASE) tensor's, or --dtype. Refusals exit 1 or 2 with "expo: error:"
  naming the offending file or tensor and leave no output behind.

Inputs are written with tests/python/peft_layout.py (tiny Llama checkpoints and PEFT adapter
folders); the rounding helpers come from tests/python/test_extrapolate_reference.py.

Usage:  /usr/bin/python3 tests/python/test_lora_reference.py [path/to/expo]
        (or EXPO_BIN=path/to/expo; default: build/expo under the repository root)
Needs numpy (Debian's python3-numpy); without it, exits 77 (a skip for ctest; a failure when
CI=true). Prints a final line "N passed, M failed" and exits non-zero if anything failed.
EXPO_TEST_SEED changes the random seed; EXPO_TEST_KEEP=1 keeps the temporary folder;
EXPO_TEST_VERBOSE=1 lists the checks that pass too (and the per-tensor counts).
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

try:
    import numpy as np
except ImportError:  # e.g. a pyenv python3 instead of Debian's /usr/bin/python3
    print(f"skipped: numpy is not available to {sys.executable}; run with /usr/bin/python3 "
          "(Debian package python3-numpy)")
    sys.exit(1 if os.environ.get("CI") == "true" else 77)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import peft_layout as pl  # noqa: E402
from test_extrapolate_reference import (UINT, WIDTH, Tensor, decode, encode,  # noqa: E402
                                        read_checkpoint, read_safetensors, write_safetensors)

REPO_ROOT = HERE.parents[1]
SEED = int(os.environ.get("EXPO_TEST_SEED", "20240917"))
VERBOSE = bool(os.environ.get("EXPO_TEST_VERBOSE"))
PREFIX = "base_model.model."

# ----------------------------------------------------------------------------------------------
# Bookkeeping
# ----------------------------------------------------------------------------------------------

PASSED = 0
FAILED = 0
FAILURES = []
STATS = {"runs": 0, "elements": 0, "adapted_elements": 0, "off_by_one_accepted": 0,
         "c_first_distinct": 0, "order_distinct": 0}


def check(name, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        if VERBOSE:
            print(f"ok: {name}", flush=True)
    else:
        FAILED += 1
        FAILURES.append(name)
        print(f"FAIL: {name}" + (f"\n      {detail}" if detail else ""), flush=True)
    return ok


def info(msg):
    print(msg, flush=True)


# ----------------------------------------------------------------------------------------------
# The reference
# ----------------------------------------------------------------------------------------------

def pattern_value(patterns, module, default):
    """PEFT's rank_pattern / alpha_pattern lookup: first key (JSON order) that full-matches."""
    for k, v in patterns.items():
        if re.fullmatch(rf"(.*\.)?({k})", module):
            return v
    return default


def lora_product(L, R):
    """p = sum_k L[:,k] * R[k,:] in float64, ascending k, starting from the first product."""
    L = np.asarray(L, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    p = L[:, 0:1] * R[0:1, :]
    for k in range(1, L.shape[1]):
        p = p + L[:, k:k + 1] * R[k:k + 1, :]
    return p


def as_f64(t):
    dt, shape, bits = t
    return decode(dt, bits).reshape(shape)


def round_to(dt, x):
    """float64 -> raw bits of dt (round to nearest even, once)."""
    return encode(dt, np.asarray(x, dtype=np.float64).reshape(-1))


class Adapter:
    """A PEFT adapter folder, parsed independently of expo."""

    def __init__(self, path):
        self.path = Path(path)
        self.config_bytes = (self.path / "adapter_config.json").read_bytes()
        self.cfg = json.loads(self.config_bytes)     # dicts keep the JSON's key order
        self.tensors, self.meta = read_safetensors(self.path / "adapter_model.safetensors")
        self.lora = {}      # model tensor name -> {"module", "A", "B", "transposed", "key_A", "key_B"}
        self.full = {}      # model tensor name -> (dt, shape, bits)  (modules_to_save)
        for key, t in self.tensors.items():
            rest = key[len(PREFIX):] if key.startswith(PREFIX) else key   # (a malformed output)
            m = re.fullmatch(r"(.*)\.(lora_A\.weight|lora_B\.weight|lora_embedding_A|lora_embedding_B)", rest)
            if m:
                module, kind = m.group(1), m.group(2)
                e = self.lora.setdefault(module + ".weight", {"module": module})
                which = "B" if kind in ("lora_B.weight", "lora_embedding_B") else "A"
                e[which] = t
                e["key_" + which] = key
                e["embedding"] = "embedding" in kind
            else:
                self.full[rest] = t
        for name, e in self.lora.items():
            e["transposed"] = e["embedding"] or bool(self.cfg.get("fan_in_fan_out"))

    def rank_alpha(self, module):
        r = pattern_value(self.cfg.get("rank_pattern") or {}, module, self.cfg["r"])
        a = pattern_value(self.cfg.get("alpha_pattern") or {}, module, self.cfg["lora_alpha"])
        return r, a

    def scale(self, module):
        r, a = self.rank_alpha(module)
        if self.cfg.get("use_rslora"):
            return float(a) / math.sqrt(r)
        return float(a) / float(r)

    def LR(self, name, a_override=None, b_override=None):
        e = self.lora[name]
        A = as_f64(a_override or e["A"])
        B = as_f64(b_override or e["B"])
        return (A.T, B.T) if e["transposed"] else (B, A)

    def product(self, name, **kw):
        L, R = self.LR(name, **kw)
        return lora_product(L, R)


def ref_alpha(rules, name, alpha):
    """--rule REGEX=ALPHA: the first regex found in the name gives the alpha."""
    for rx, a in rules:
        if re.search(rx, name):
            return a
    return alpha


def expected_full(sft, ad, alpha, out_dtype=None, rules=()):
    """-> {name: (dt, shape, bits)} for `--sft SFT --aligned ADAPTER`; also {name: "adapted" |
    "mts" | "other"}."""
    want, kind = {}, {}
    for name, (dt, shape, bits) in sft.items():
        odt = out_dtype or dt
        al = ref_alpha(rules, name, alpha)
        if name in ad.lora:
            W = as_f64((dt, shape, bits))
            c = (1.0 + al) * ad.scale(ad.lora[name]["module"])
            r = W + c * ad.product(name)
            want[name] = (odt, shape, round_to(odt, r))
            kind[name] = "adapted"
        elif name in ad.full:
            a = as_f64(ad.full[name])
            w = as_f64((dt, shape, bits))
            d = a - w
            t = al * d
            r = a + t
            want[name] = (odt, shape, round_to(odt, r))
            kind[name] = "mts"
        else:
            if odt == dt:
                want[name] = (dt, shape, bits)
            else:
                want[name] = (odt, shape, round_to(odt, decode(dt, bits)))
            kind[name] = "other"
    return want, kind


def merged_theta1(sft, ad):
    """Merging the adapter into SFT (PEFT's merge_and_unload, in float64, rounded once)."""
    out = {}
    for name, (dt, shape, bits) in sft.items():
        if name in ad.lora:
            e = ad.lora[name]
            A, B = as_f64(e["A"]), as_f64(e["B"])
            delta = lora_product(A.T, B.T) if e["transposed"] else lora_product(B, A)
            out[name] = (dt, shape, round_to(dt, as_f64((dt, shape, bits)) + ad.scale(e["module"]) * delta))
        elif name in ad.full:
            out[name] = (dt, shape, round_to(dt, as_f64(ad.full[name])))
        else:
            out[name] = (dt, shape, bits)
    return out


def expected_adapter_out(sft, ad, alpha):
    """-> {adapter key: (dt, shape, bits)} for --output-adapter."""
    want = {}
    for key, (dt, shape, bits) in ad.tensors.items():
        rest = key[len(PREFIX):]
        if key.endswith(".lora_B.weight") or key.endswith(".lora_embedding_B"):
            c = 1.0 + alpha
            want[key] = (dt, shape, round_to(dt, c * decode(dt, bits)))
        elif key.endswith(".lora_A.weight") or key.endswith(".lora_embedding_A"):
            want[key] = (dt, shape, bits)
        else:
            a = as_f64((dt, shape, bits))
            w = as_f64(sft[rest])
            d = a - w
            t = alpha * d
            r = a + t
            want[key] = (dt, shape, round_to(dt, r))   # the adapter tensor's dtype (see report)
    return want


def theta_of(ad, name, base_t):
    if name in ad.full:
        return as_f64(ad.full[name])
    W = as_f64(base_t)
    if name in ad.lora:
        return W + ad.scale(ad.lora[name]["module"]) * ad.product(name)
    return W


def expected_two(base, ad0, ad1, alpha, out_dtype=None):
    want = {}
    for name, (dt, shape, bits) in base.items():
        odt = out_dtype or dt
        if not any(name in ad.lora or name in ad.full for ad in (ad0, ad1)):
            want[name] = (dt, shape, bits) if odt == dt else (odt, shape, round_to(odt, decode(dt, bits)))
            continue
        t1 = theta_of(ad1, name, (dt, shape, bits))
        t0 = theta_of(ad0, name, (dt, shape, bits))
        d = t1 - t0
        t = alpha * d
        r = t1 + t
        want[name] = (odt, shape, round_to(odt, r))
    return want


# ----------------------------------------------------------------------------------------------
# Self-test of the reference (before expo is involved)
# ----------------------------------------------------------------------------------------------

def self_test_reference(rng):
    # the product against a matrix multiply and against exact rational sums
    for (m, r, n) in [(7, 1, 5), (13, 3, 11), (64, 8, 160), (42, 5, 77)]:
        L = rng.normal(0, 0.01, (m, r))
        R = rng.normal(0, 0.05, (r, n))
        p = lora_product(L, R)
        q = L @ R
        err = np.max(np.abs(p - q) / (np.abs(L) @ np.abs(R)))
        check(f"reference: loop product vs matmul [{m}x{r}x{n}] within 1e-12 (max {err:.1e})", err <= 1e-12)
    # ascending k, first product first: identical to a scalar Python loop over sample elements
    L = rng.normal(0, 1, (5, 6))
    R = rng.normal(0, 1, (6, 4))
    p = lora_product(L, R)
    ok = True
    for i in range(5):
        for j in range(4):
            s = float(L[i, 0]) * float(R[0, j])
            for k in range(1, 6):
                s = s + float(L[i, k]) * float(R[k, j])
            ok &= s == p[i, j]
    check("reference: loop product equals a scalar ascending-k loop bit for bit", ok)
    # ... and it is not the same as starting from 0.0 + first product? (it is: 0 + x == x); but the
    # exact sum differs somewhere, so the order is visible in float64
    exact_diff = sum(float(sum(Fraction(float(L[i, k])) * Fraction(float(R[k, j])) for k in range(6))) != p[i, j]
                     for i in range(5) for j in range(4))
    info(f"reference: {exact_diff} of 20 float64 products differ from the exactly rounded sum")
    # pattern rule
    pat = {"layers.1.self_attn.q_proj": 2, "q_proj": 3, "down_proj": 4, "layers.0.mlp.down_proj": 12}
    cases = [("model.layers.1.self_attn.q_proj", 2), ("model.layers.11.self_attn.q_proj", 3),
             ("model.layers.0.self_attn.q_proj", 3), ("model.layers.0.mlp.down_proj", 4),
             ("model.layers.0.mlp.xdown_proj", 8), ("model.layers.0.self_attn.k_proj", 8),
             ("down_proj", 4)]
    for module, want in cases:
        check(f"reference: pattern rule {module} -> {want}", pattern_value(pat, module, 8) == want)
    check("reference: peft_layout's pattern rule agrees",
          all(pl.pattern_value(pat, m, 8) == w for m, w in cases))
    # scales
    class Fake(Adapter):
        def __init__(self, cfg):  # noqa: super not called on purpose
            self.cfg = cfg
    f = Fake({"r": 8, "lora_alpha": 16, "use_rslora": True, "rank_pattern": {"q_proj": 5},
              "alpha_pattern": {"v_proj": 7}})
    check("reference: rslora scale alpha/sqrt(r) with rank_pattern",
          f.scale("model.layers.0.self_attn.q_proj") == 16 / math.sqrt(5) and
          f.scale("model.layers.0.self_attn.v_proj") == 7 / math.sqrt(8))
    f = Fake({"r": 8, "lora_alpha": 16, "use_rslora": False, "rank_pattern": {}, "alpha_pattern": {}})
    check("reference: plain scale alpha/r", f.scale("model.layers.0.self_attn.q_proj") == 2.0)
    # rounding: the imported rounder rounds float64 once (no double rounding through float32)
    x = np.array([1.0 + 2.0 ** -8 + 2.0 ** -30])
    check("reference: bf16 rounding from float64 is direct", int(round_to("BF16", x)[0]) == 0x3f81)
    # the adapter layout: keys and shapes as the contract says
    d = Path(tempfile.mkdtemp(prefix="expo-lora-self-"))
    try:
        m = pl.write_model(d / "m", hidden=42, intermediate=77, layers=2, heads=6, kv_heads=2, vocab=101,
                           dtype="bf16", seed=1, transpose=("q_proj",))
        pl.write_adapter(d / "a", m / "model.safetensors", rank=3, lora_alpha=6,
                         targets=["q_proj", "embed_tokens", "down_proj"], fan_in_fan_out=False,
                         rank_pattern={"down_proj": 2}, modules_to_save=["lm_head"])
        t, meta = read_safetensors(d / "a" / "adapter_model.safetensors")
        shapes = {k: v[1] for k, v in t.items()}
        want = {
            PREFIX + "model.embed_tokens.lora_embedding_A": [3, 101],
            PREFIX + "model.embed_tokens.lora_embedding_B": [42, 3],
            PREFIX + "model.layers.0.mlp.down_proj.lora_A.weight": [2, 77],
            PREFIX + "model.layers.0.mlp.down_proj.lora_B.weight": [42, 2],
            PREFIX + "lm_head.weight": [101, 42],
        }
        check("layout: adapter keys and shapes", all(shapes.get(k) == v for k, v in want.items())
              and meta == {"format": "pt"} and len(shapes) == 2 * 5 + 1, str(shapes))
        msh = read_checkpoint(m)
        check("layout: transposed q_proj stored [in, out]",
              msh["model.layers.0.self_attn.q_proj.weight"][1] == [42, 42] and
              msh["model.layers.0.self_attn.k_proj.weight"][1] == [14, 42])
        B = as_f64(t[PREFIX + "model.layers.1.mlp.down_proj.lora_B.weight"])
        check("layout: lora_B nonzero", np.count_nonzero(B) == B.size)
        cfg = json.loads((m / "config.json").read_text())
        check("layout: config matches the shapes",
              cfg["architectures"] == ["LlamaForCausalLM"] and cfg["hidden_size"] == 42 and
              cfg["intermediate_size"] == 77 and cfg["vocab_size"] == 101 and
              cfg["num_key_value_heads"] == 2 and cfg["torch_dtype"] == "bfloat16" and
              cfg["tie_word_embeddings"] is False)
        ac = json.loads((d / "a" / "adapter_config.json").read_text())
        need = ["peft_type", "task_type", "r", "lora_alpha", "target_modules", "lora_dropout", "bias",
                "fan_in_fan_out", "use_rslora", "use_dora", "modules_to_save", "rank_pattern",
                "alpha_pattern", "base_model_name_or_path", "inference_mode", "init_lora_weights",
                "layers_to_transform", "revision"]
        check("layout: adapter_config.json has PEFT's keys", all(k in ac for k in need),
              str([k for k in need if k not in ac]))
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Running expo and comparing
# ----------------------------------------------------------------------------------------------

EXPO = None


def run_expo(args, timeout=180):
    cmd = [EXPO, *args, "--no-progress"]
    STATS["runs"] += 1
    for attempt in range(3):   # the binary may be replaced while we run (a rebuild)
        try:
            return cmd, subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except OSError as e:
            info(f"could not start {EXPO} ({e}); retrying in 10 s")
            time.sleep(10)
    return cmd, subprocess.CompletedProcess(cmd, 127, "", f"could not start {EXPO}")


def extrapolate(sft, aligned, alpha, out, extra=(), base=None):
    args = ["extrapolate"]
    if base is not None:
        args += ["--base", str(base)]
    args += ["--sft", str(sft), "--aligned", str(aligned), f"--alpha={alpha}", "--output", str(out),
             *extra]
    return run_expo(args)


def show_cmd(cmd):
    return " ".join(c if re.fullmatch(r"[\w./=,:+-]+", c) else repr(c) for c in cmd)


def fmt_bits(dt, b):
    return f"{int(b):#0{WIDTH[dt] // 4 + 2}x}"


def ordinal(dt, bits):
    b = np.asarray(bits).astype(np.uint64)
    sign = np.uint64(1) << np.uint64(WIDTH[dt] - 1)
    mag = (b & ~sign).astype(np.int64)
    return np.where((b & sign) != 0, -mag, mag)


def compare_tensor(label, name, got, want, extra_info=""):
    """got / want: (dt, shape, bits). Exact bits expected; at most 1e-4 of the elements may be
    off by one ulp of the output dtype."""
    gdt, gshape, gbits = got
    wdt, wshape, wbits = want
    if gdt != wdt or list(gshape) != list(wshape):
        return check(f"{label}: {name}", False, f"dtype/shape {gdt}{gshape}, want {wdt}{wshape}")
    g = np.asarray(gbits).astype(UINT[wdt])
    w = np.asarray(wbits).astype(UINT[wdt])
    bad = np.nonzero(g != w)[0]
    n = w.size
    STATS["elements"] += n
    if bad.size == 0:
        return check(f"{label}: {name} ({wdt}{list(wshape)}) bit-exact, {n} elements, 0 differ", True)
    dist = np.abs(ordinal(wdt, g[bad]) - ordinal(wdt, w[bad]))
    within = bool((dist <= 1).all()) and bad.size <= 1e-4 * n
    gv, wv = decode(wdt, g[bad[:6]]), decode(wdt, w[bad[:6]])
    detail = (f"{bad.size} of {n} elements differ, max {int(dist.max())} ulp; first: " +
              ", ".join(f"[{i}] want {fmt_bits(wdt, w[i])} ({a!r}) got {fmt_bits(wdt, g[i])} ({b!r})"
                        for i, a, b in zip(bad[:6], wv, gv)) + extra_info)
    if within:
        STATS["off_by_one_accepted"] += int(bad.size)
        if VERBOSE:
            info(f"note: {label}: {name}: accepted {detail}")
    return check(f"{label}: {name} ({wdt}{list(wshape)}) within tolerance", within, detail)


def compare_dicts(label, got, want, kinds=None):
    ok = check(f"{label}: output has exactly the expected tensors", set(got) == set(want),
               f"missing {sorted(set(want) - set(got))[:5]} extra {sorted(set(got) - set(want))[:5]}")
    for name in want:
        if name in got:
            compare_tensor(label, name + (f" [{kinds[name]}]" if kinds else ""), got[name], want[name])
    return ok


def count_discriminating(sft, ad, alpha, want, odt_of):
    """How often the data tells the contract from near misses: c*p with c = (1+alpha)*s versus
    (1+alpha)*(s*p), and the ascending-k sum versus a descending-k one. (Products of bf16 values
    are exact in float64, so mostly the f32 adapters under --dtype f64 tell them apart.)"""
    for name, e in ad.lora.items():
        if name not in sft:
            continue
        dt, shape, bits = sft[name]
        odt = odt_of(name)
        W = as_f64(sft[name])
        s = ad.scale(e["module"])
        p = ad.product(name)
        L, R = ad.LR(name)
        w = want[name][2]
        STATS["adapted_elements"] += w.size
        STATS["c_first_distinct"] += int((round_to(odt, W + (1.0 + alpha) * (s * p)) != w).sum())
        rev = lora_product(L[:, ::-1], R[::-1, :])
        STATS["order_distinct"] += int((round_to(odt, W + ((1.0 + alpha) * s) * rev) != w).sum())


class Work:
    def __init__(self, root):
        self.root = Path(root)
        self.n = 0

    def dir(self, tag):
        self.n += 1
        d = self.root / f"{self.n:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', tag)}"
        d.mkdir(parents=True)
        return d


def ran_ok(label, cmd, p):
    return check(f"{label}: expo exits 0", p.returncode == 0,
                 f"rc={p.returncode}\n      command: {show_cmd(cmd)}\n      stderr: {p.stderr.strip()[:1500]}")


TORCH_DTYPE = {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64"}


def config_check(label, out, src, out_dtype):
    """config.json: the source's bytes; with --dtype, the source's JSON with torch_dtype set to
    the output dtype (as expo's plain extrapolation does)."""
    got, want = Path(out) / "config.json", Path(src) / "config.json"
    if not got.exists():
        return check(label, False, f"no config.json in {out}")
    if not out_dtype:
        return check(label, got.read_bytes() == want.read_bytes())
    w = json.loads(want.read_text())
    w["torch_dtype"] = TORCH_DTYPE[out_dtype]
    try:
        g = json.loads(got.read_text())
    except ValueError as e:
        return check(label, False, repr(e))
    return check(label + f" (torch_dtype {TORCH_DTYPE[out_dtype]})", g == w and list(g) == list(w))


def model_dims(kind):
    if kind == "odd":
        return dict(hidden=42, intermediate=77, layers=2, heads=6, kv_heads=2, vocab=101)
    return dict(hidden=64, intermediate=160, layers=2, heads=4, kv_heads=2, vocab=320)


def full_case(work, label, sft_dir, ad_dir, alpha_text, out_dtype=None, rules=(), extra=(),
              check_config=True, pattern=None, sft_path=None):
    """Run --sft SFT --aligned ADAPTER and compare every output with the reference.
    alpha_text may be a list "a,b"; then pattern (containing {alpha}) names the outputs."""
    d = work.dir(label)
    sft_path = sft_path or sft_dir
    out_arg = d / (pattern or "out")
    args = list(extra)
    if out_dtype:
        args += ["--dtype", out_dtype.lower()]
    for rx, a in rules:
        args += ["--rule", f"{rx}={a}"]
    cmd, p = extrapolate(sft_path, ad_dir, alpha_text, out_arg, args)
    if not ran_ok(label, cmd, p):
        return None
    sft = read_checkpoint(sft_dir) if Path(sft_path).is_dir() else read_safetensors(sft_path)[0]
    ad = Adapter(ad_dir)
    outs = {}
    for a_text in alpha_text.split(","):
        alpha = float(a_text)
        out = d / (pattern.replace("{alpha}", a_text) if pattern else "out")
        lab = f"{label} [alpha {a_text}]" if pattern else label
        if not check(f"{lab}: output folder {out.name} exists", (out / "model.safetensors").exists() or
                     (out / "model.safetensors.index.json").exists(), str(sorted(os.listdir(d)))):
            continue
        try:
            got = read_checkpoint(out)
        except Exception as e:  # noqa: BLE001
            check(f"{lab}: read output", False, repr(e))
            continue
        want, kinds = expected_full(sft, ad, alpha, out_dtype, [(rx, float(a)) for rx, a in rules])
        compare_dicts(lab, got, want, kinds)
        count_discriminating(sft, ad, alpha, want,
                             lambda n: out_dtype or sft[n][0]) if not rules else None
        if check_config and Path(sft_path).is_dir():
            config_check(f"{lab}: config.json is SFT's", out, sft_dir, out_dtype)
        outs[a_text] = (out, got, sft, ad)
    hidden = [e for e in os.listdir(d) if e.startswith(".")]
    check(f"{label}: no temporary folders left", not hidden, str(hidden))
    return outs


# ----------------------------------------------------------------------------------------------
# The tests
# ----------------------------------------------------------------------------------------------

ALL7 = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class Inputs:
    """The models and adapters shared by the tests (written once)."""

    def __init__(self, root):
        r = Path(root)
        s = SEED % 100000
        self.m_bf16 = pl.write_model(r / "sft-bf16", dtype="bf16", seed=s + 1, **model_dims("std"))
        self.m_f32 = pl.write_model(r / "sft-f32", dtype="f32", seed=s + 2, **model_dims("std"))
        self.m_odd_bf16 = pl.write_model(r / "sft-odd-bf16", dtype="bf16", seed=s + 3, **model_dims("odd"))
        self.m_odd_f32 = pl.write_model(r / "sft-odd-f32", dtype="f32", seed=s + 4, **model_dims("odd"))
        self.m_fifo = pl.write_model(r / "sft-fifo-bf16", dtype="bf16", seed=s + 5, transpose=tuple(ALL7),
                                     **model_dims("std"))
        self.m_other = pl.write_model(r / "other-bf16", dtype="bf16", seed=s + 6, **model_dims("std"))
        self.s = s
        self.root = r

    def adapter(self, name, model, **kw):
        kw.setdefault("seed", self.s + 100 + len(name))
        kw.setdefault("base_model_name_or_path", str(model))
        path, _, _ = pl.write_adapter(self.root / name, model, **kw)
        return path


def test_full(rng, work, inp):
    # bf16 SFT + bf16 adapter, all seven projections, several alphas in one run
    ad = inp.adapter("ad-bf16", inp.m_bf16, rank=8, lora_alpha=16, targets=ALL7, dtype="bf16")
    outs = full_case(work, "bf16+bf16 multi-alpha", inp.m_bf16, ad, "0,0.5,8,-0.5", pattern="out-{alpha}")
    if outs and "0" in outs:
        out, got, sft, a = outs["0"]
        theta1 = merged_theta1(sft, a)
        bad = [n for n in theta1 if n not in got or got[n][2].tobytes() != theta1[n][2].tobytes()]
        check("alpha 0 equals the merged adapter (theta1) bit for bit", not bad, str(bad[:5]))
    # f32 SFT + f32 adapter, sharded output
    ad32 = inp.adapter("ad-f32", inp.m_f32, rank=8, lora_alpha=16, targets=["q_proj", "k_proj", "v_proj", "o_proj"],
                       dtype="f32")
    outs = full_case(work, "f32+f32 sharded 100KB", inp.m_f32, ad32, "0.3", extra=["--max-shard-size", "100KB"])
    if outs:
        out = outs["0.3"][0]
        idx = out / "model.safetensors.index.json"
        if check("sharded output: has model.safetensors.index.json", idx.exists(), str(os.listdir(out))):
            files = sorted(set(json.loads(idx.read_text())["weight_map"].values()))
            n = len(files)
            check(f"sharded output: several shards named model-0000i-of-0000n ({n})",
                  n > 1 and files == [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)] and
                  not (out / "model.safetensors").exists(), str(files))
    # bf16 SFT + f32 adapter, odd dims, odd rank
    ad = inp.adapter("ad-odd-f32", inp.m_odd_bf16, rank=3, lora_alpha=7, targets=["q_proj", "v_proj", "down_proj"],
                     dtype="f32")
    full_case(work, "bf16 SFT + f32 adapter (odd dims, r=3)", inp.m_odd_bf16, ad, "0.5")
    # use_rslora, odd dims, f32
    ad = inp.adapter("ad-rslora", inp.m_odd_f32, rank=5, lora_alpha=16, targets=ALL7, dtype="f32", use_rslora=True)
    full_case(work, "use_rslora (f32, odd dims, r=5)", inp.m_odd_f32, ad, "0.7")
    ad = inp.adapter("ad-rslora-bf16", inp.m_bf16, rank=8, lora_alpha=16, targets=["q_proj", "up_proj"],
                     dtype="bf16", use_rslora=True, rank_pattern={"up_proj": 3})
    full_case(work, "use_rslora + rank_pattern (bf16)", inp.m_bf16, ad, "1.5")
    # rank_pattern + alpha_pattern: first key in JSON order wins (the later keys overlap)
    ad = inp.adapter("ad-patterns", inp.m_bf16, rank=8, lora_alpha=16, targets=ALL7, dtype="bf16",
                     rank_pattern={"layers.1.self_attn.q_proj": 2, "down_proj": 4, "layers.0.mlp.down_proj": 12},
                     alpha_pattern={"layers.1.mlp.down_proj": 3, "down_proj": 5, "q_proj": 7.5})
    a = Adapter(ad)
    shp = {k: v[1] for k, v in a.tensors.items()}
    check("rank_pattern: the adapter really has ranks 2, 4 and 8",
          shp[PREFIX + "model.layers.1.self_attn.q_proj.lora_A.weight"][0] == 2 and
          shp[PREFIX + "model.layers.0.mlp.down_proj.lora_A.weight"][0] == 4 and
          shp[PREFIX + "model.layers.0.self_attn.q_proj.lora_A.weight"][0] == 8)
    full_case(work, "rank_pattern + alpha_pattern", inp.m_bf16, ad, "0.5")
    # modules_to_save ["lm_head"]
    ad = inp.adapter("ad-mts", inp.m_bf16, rank=4, lora_alpha=8, targets=["q_proj", "v_proj"], dtype="bf16",
                     modules_to_save=["lm_head"])
    full_case(work, "modules_to_save lm_head", inp.m_bf16, ad, "0.5")
    full_case(work, "modules_to_save lm_head multi", inp.m_bf16, ad, "0.5,2", pattern="o-{alpha}")
    # embedding LoRA, with "--alpha -0.5" as a separate argument
    ad_emb = inp.adapter("ad-emb", inp.m_bf16, rank=6, lora_alpha=12, targets=["embed_tokens", "q_proj", "gate_proj"],
                         dtype="bf16")
    full_case(work, "embedding LoRA", inp.m_bf16, ad_emb, "1.5")
    d = work.dir("alpha_separate_arg")
    cmd, p = run_expo(["extrapolate", "--sft", str(inp.m_bf16), "--aligned", str(ad_emb), "--alpha", "-0.5",
                       "--output", str(d / "out")])
    if ran_ok("embedding LoRA '--alpha -0.5' (separate argument)", cmd, p):
        sft = read_checkpoint(inp.m_bf16)
        want, kinds = expected_full(sft, Adapter(ad_emb), -0.5)
        compare_dicts("embedding LoRA alpha -0.5", read_checkpoint(d / "out"), want, kinds)
    # fan_in_fan_out: SFT (a lone .safetensors) stores the adapted tensors [in, out]
    ad = inp.adapter("ad-fifo", inp.m_fifo, rank=4, lora_alpha=8, targets=ALL7, dtype="bf16", fan_in_fan_out=True)
    full_case(work, "fan_in_fan_out", inp.m_fifo, ad, "0.5", sft_path=inp.m_fifo / "model.safetensors",
              check_config=False)
    # --dtype f32 (bf16 inputs)
    ad = inp.adapter("ad-bf16-emb-mts", inp.m_bf16, rank=8, lora_alpha=16,
                     targets=["q_proj", "down_proj", "embed_tokens"], dtype="bf16", modules_to_save=["lm_head"])
    full_case(work, "--dtype f32", inp.m_bf16, ad, "0.5", out_dtype="F32")
    # --rule (first match wins; applies to LoRA-adapted and modules_to_save tensors)
    full_case(work, "--rule", inp.m_bf16, ad, "0.5",
              rules=[(r"layers\.1\.self_attn", "0"), ("lm_head", "-0.5"), ("mlp", "2.5"), ("layers", "8")])
    # a large alpha on f32
    full_case(work, "f32 alpha 8 and -0.5", inp.m_f32, ad32, "8,-0.5", pattern="x{alpha}")
    # --dtype f64: the float64 result itself is written, so the order of the operations (the
    # ascending-k sum, c = (1+alpha)*s first, no FMA) shows in every element
    f64_cases = [
        ("ad-bf16", inp.m_bf16, "0,0.5,8,-0.5", {}),
        ("ad-rslora", inp.m_odd_f32, "0.7", {}),
        ("ad-patterns", inp.m_bf16, "0.5", {}),
        ("ad-emb", inp.m_bf16, "1.5", {}),
        ("ad-bf16-emb-mts", inp.m_bf16, "0.5", {"rules": [("lm_head", "-0.5"), ("mlp", "2.5")]}),
        ("ad-odd-f32", inp.m_odd_bf16, "0.3", {}),
        ("ad-f32", inp.m_f32, "0.3,8,-0.5", {}),
    ]
    for name, model, alphas, kw in f64_cases:
        full_case(work, f"--dtype f64 {name}", model, inp.root / name, alphas, out_dtype="F64",
                  pattern="f{alpha}" if "," in alphas else None, **kw)
    full_case(work, "--dtype f64 fan_in_fan_out", inp.m_fifo, inp.root / "ad-fifo", "0.5", out_dtype="F64",
              sft_path=inp.m_fifo / "model.safetensors", check_config=False)
    # rank 1 (the sum is the first product alone)
    ad = inp.adapter("ad-r1", inp.m_f32, rank=1, lora_alpha=3, targets=["o_proj", "up_proj", "embed_tokens"],
                     dtype="f32")
    full_case(work, "rank 1", inp.m_f32, ad, "0.5,3", pattern="r{alpha}")
    full_case(work, "rank 1 --dtype f64", inp.m_f32, ad, "3", out_dtype="F64")
    # tensors of more than 64Ki elements (several work blocks in expo), rank 16, several threads
    big = pl.write_model(inp.root / "sft-big-bf16", dtype="bf16", seed=inp.s + 7, hidden=128, intermediate=704,
                         layers=1, heads=4, kv_heads=1, vocab=1031)
    ad = inp.adapter("ad-big", big, rank=16, lora_alpha=32, targets=ALL7 + ["embed_tokens"], dtype="f32",
                     use_rslora=True, modules_to_save=["lm_head"], rank_pattern={"down_proj": 13})
    full_case(work, "big tensors, r=16, --threads 3", big, ad, "0.5,-0.5", pattern="b{alpha}",
              extra=["--threads", "3"])
    full_case(work, "big tensors --dtype f64", big, ad, "0.3", out_dtype="F64")


def test_output_adapter(rng, work, inp):
    for dt, model in [("bf16", inp.m_bf16), ("f32", inp.m_f32)]:
        ad = inp.adapter(f"ad-out-{dt}", model, rank=8, lora_alpha=16,
                         targets=["q_proj", "k_proj", "down_proj", "embed_tokens"], dtype=dt,
                         modules_to_save=["lm_head"], rank_pattern={"down_proj": 3})
        label = f"--output-adapter {dt}"
        alpha = "0.5" if dt == "bf16" else "2"
        d = work.dir(label)
        cmd, p = extrapolate(model, ad, alpha, d / "out", ["--output-adapter"])
        if not ran_ok(label, cmd, p):
            continue
        out = d / "out"
        a_in = Adapter(ad)
        check(f"{label}: adapter_config.json byte-identical", (out / "adapter_config.json").exists() and
              (out / "adapter_config.json").read_bytes() == a_in.config_bytes)
        if not check(f"{label}: adapter_model.safetensors written", (out / "adapter_model.safetensors").exists(),
                     str(os.listdir(out))):
            continue
        sft = read_checkpoint(model)
        got, _ = read_safetensors(out / "adapter_model.safetensors")
        want = expected_adapter_out(sft, a_in, float(alpha))
        compare_dicts(label, got, want)
        # sanity: merging the written adapter at scale s equals the full-model output
        cmd, p = extrapolate(model, ad, alpha, d / "full")
        if not ran_ok(f"{label}: full-model run for the sanity check", cmd, p):
            continue
        full = read_checkpoint(d / "full")
        a_out = Adapter(out)
        worst, ok = 0.0, True
        for name, e in a_in.lora.items():
            if name not in a_out.lora or name not in full or \
                    {"A", "B"} - set(a_out.lora[name]) or a_out.lora[name]["B"][1] != e["B"][1]:
                ok = False
                continue
            W = as_f64(sft[name])
            s = a_in.scale(e["module"])
            merged = W + s * a_out.product(name)
            f = as_f64(full[name])
            L, R = a_in.LR(name)
            scale_ = np.abs(W) + abs((1 + float(alpha)) * s) * (np.abs(L) @ np.abs(R))
            tol = (1e-6 if dt == "f32" else 2.0 ** -7) * scale_
            err = np.abs(merged - f)
            worst = max(worst, float(np.max(err / scale_)))
            ok &= bool((err <= tol).all())
        for name in a_in.full:
            ok &= PREFIX + name in got and got[PREFIX + name][2].tobytes() == full[name][2].tobytes()
        check(f"{label}: merging the output adapter at scale s reproduces the full-model output "
              f"(worst relative {worst:.2e})", ok)


def test_two_adapters(rng, work, inp):
    ad0 = inp.adapter("ad0", inp.m_bf16, rank=4, lora_alpha=8, targets=["q_proj", "v_proj"], dtype="f32",
                      modules_to_save=["lm_head"])
    ad1 = inp.adapter("ad1", inp.m_bf16, rank=8, lora_alpha=16,
                      targets=["q_proj", "k_proj", "o_proj", "gate_proj", "embed_tokens"], dtype="bf16",
                      rank_pattern={"gate_proj": 3}, alpha_pattern={"layers.1.self_attn.k_proj": 5})
    base = read_checkpoint(inp.m_bf16)
    a0, a1 = Adapter(ad0), Adapter(ad1)
    for out_dtype, alphas in [(None, "0.5,-0.5,2"), ("F64", "0.5,0")]:
        label = "--base two adapters" + (f" --dtype {out_dtype.lower()}" if out_dtype else "")
        d = work.dir(label)
        cmd, p = extrapolate(ad0, ad1, alphas, d / "out-{alpha}",
                             ["--dtype", out_dtype.lower()] if out_dtype else [], base=inp.m_bf16)
        if not ran_ok(label, cmd, p):
            continue
        for a in alphas.split(","):
            out = d / f"out-{a}"
            try:
                got = read_checkpoint(out)
            except Exception as e:  # noqa: BLE001
                check(f"{label} [alpha {a}]: read output", False, repr(e))
                continue
            want = expected_two(base, a0, a1, float(a), out_dtype)
            compare_dicts(f"{label} [alpha {a}]", got, want)
            if not out_dtype:
                untouched = [n for n in base if not any(n in x.lora or n in x.full for x in (a0, a1))]
                check(f"{label} [alpha {a}]: {len(untouched)} untouched tensors byte-identical to BASE",
                      all(n in got and got[n][2].tobytes() == base[n][2].tobytes() and got[n][0] == base[n][0]
                          for n in untouched))
            config_check(f"{label} [alpha {a}]: config.json is BASE's", out, inp.m_bf16, out_dtype)


def rewrite_adapter(src, dst, cfg_edit=None, tensor_edit=None, config_text=None):
    shutil.copytree(src, dst)
    if cfg_edit or config_text is not None:
        if config_text is None:
            cfg = json.loads((dst / "adapter_config.json").read_text())
            cfg_edit(cfg)
            config_text = json.dumps(cfg, indent=2)
        (dst / "adapter_config.json").write_text(config_text)
    if tensor_edit:
        t, meta = read_safetensors(dst / "adapter_model.safetensors")
        tensor_edit(t)
        write_safetensors(dst / "adapter_model.safetensors",
                          [Tensor(k, dt, shape, bits) for k, (dt, shape, bits) in t.items()], meta)
    return dst


def bf16_random(rng, shape, std=0.01):
    return ("BF16", list(shape), round_to("BF16", rng.normal(0, std, int(np.prod(shape)))))


def test_refusals(rng, work, inp):
    good = inp.adapter("ad-good", inp.m_bf16, rank=4, lora_alpha=8, targets=["q_proj", "v_proj"], dtype="bf16",
                       modules_to_save=["lm_head"])
    d0 = work.dir("refusal-inputs")
    H, V, kvo = 64, 320, 32
    q0 = PREFIX + "model.layers.0.self_attn.q_proj"
    v0 = PREFIX + "model.layers.0.self_attn.v_proj"
    v1 = PREFIX + "model.layers.1.self_attn.v_proj"

    def put(t, key, shape):
        t[key] = bf16_random(rng, shape)

    cases = [
        ("use_dora true", dict(cfg_edit=lambda c: c.update(use_dora=True)), ["adapter_config.json", "use_dora"]),
        ("lora_magnitude_vector key",
         dict(tensor_edit=lambda t: put(t, q0 + ".lora_magnitude_vector", [H])), ["lora_magnitude_vector"]),
        ("target module missing from SFT",
         dict(tensor_edit=lambda t: (put(t, PREFIX + "model.layers.5.self_attn.q_proj.lora_A.weight", [4, H]),
                                     put(t, PREFIX + "model.layers.5.self_attn.q_proj.lora_B.weight", [H, 4]))),
         ["model.layers.5.self_attn.q_proj"]),
        ("lora_A in-features differ from W's",
         dict(tensor_edit=lambda t: put(t, v1 + ".lora_A.weight", [4, H + 1])), ["model.layers.1.self_attn.v_proj"]),
        ("lora_A rank differs from lora_B rank",
         dict(tensor_edit=lambda t: put(t, v0 + ".lora_B.weight", [kvo, 5])), ["model.layers.0.self_attn.v_proj"]),
        ("tensor rank differs from configured r",
         dict(tensor_edit=lambda t: (put(t, q0 + ".lora_A.weight", [6, H]), put(t, q0 + ".lora_B.weight", [H, 6]))),
         ["model.layers.0.self_attn.q_proj"]),
        ("adapter_config.json invalid JSON", dict(config_text='{"peft_type": "LORA", "r": 4,'),
         ["adapter_config.json"]),
        ("adapter_config.json without r", dict(cfg_edit=lambda c: c.pop("r")), ["adapter_config.json"]),
        ("r = 0", dict(cfg_edit=lambda c: c.update(r=0)), ["adapter_config.json"]),
        ("peft_type PREFIX_TUNING", dict(cfg_edit=lambda c: c.update(peft_type="PREFIX_TUNING")),
         ["adapter_config.json", "PREFIX_TUNING"]),
        ("key neither LoRA nor a model tensor",
         dict(tensor_edit=lambda t: put(t, PREFIX + "model.layers.0.mlp.extra_head.weight", [8])),
         ["model.layers.0.mlp.extra_head"]),
        ("modules_to_save shape differs from SFT's",
         dict(tensor_edit=lambda t: put(t, PREFIX + "lm_head.weight", [V, H + 1])), ["lm_head"]),
    ]
    for i, (label, edit, needles) in enumerate(cases):
        ad = rewrite_adapter(good, d0 / f"bad{i}", **edit)
        refusal(work, f"refuses: {label}", inp.m_bf16, ad, needles)
    # only adapter_model.bin
    ad = d0 / "bin-only"
    ad.mkdir()
    shutil.copy(good / "adapter_config.json", ad / "adapter_config.json")
    (ad / "adapter_model.bin").write_bytes(b"PK\x03\x04" + bytes(60))
    refusal(work, "refuses: adapter_model.bin only", inp.m_bf16, ad, ["adapter_model.bin", "adapter_model.safetensors"])
    # --output-adapter with a full model as --aligned
    refusal(work, "refuses: --output-adapter with a full model", inp.m_bf16, inp.m_other,
            ["--output-adapter", "adapter_config.json"], extra=["--output-adapter"])
    # a warning, not an error: base_model_name_or_path names another model
    ad = rewrite_adapter(good, d0 / "other-base",
                         cfg_edit=lambda c: c.update(base_model_name_or_path="someone/other-model"))
    d = work.dir("warning other base")
    cmd, p = extrapolate(inp.m_bf16, ad, "0.5", d / "out")
    if ran_ok("base_model_name_or_path of another model: a warning", cmd, p):
        check("base_model_name_or_path of another model: stderr has a warning naming it",
              "warning" in p.stderr.lower() and "base_model_name_or_path" in p.stderr,
              f"command: {show_cmd(cmd)}\n      stderr: {p.stderr.strip()[:800]!r}")
        want, kinds = expected_full(read_checkpoint(inp.m_bf16), Adapter(ad), 0.5)
        compare_dicts("warning case", read_checkpoint(d / "out"), want, kinds)
    # the matching base name: no warning (info only; the contract does not say what matches)
    cmd, p = extrapolate(inp.m_bf16, good, "0.5", d / "out2")
    if "warning" in p.stderr.lower():
        info(f"note: a warning with base_model_name_or_path = the SFT folder's path: {p.stderr.strip()[:300]}")


def refusal(work, label, sft, aligned, needles, extra=()):
    d = work.dir(label)
    parent = d / "outs"
    parent.mkdir()
    cmd, p = extrapolate(sft, aligned, "0.5", parent / "out", list(extra))
    ctx = f"\n      command: {show_cmd(cmd)}\n      rc={p.returncode} stderr: {p.stderr.strip()[:600]!r}"
    check(f"{label}: exit 1 or 2", p.returncode in (1, 2), ctx)
    check(f"{label}: stderr starts with 'expo: error:'", p.stderr.startswith("expo: error:"), ctx)
    check(f"{label}: message names one of {needles}", any(n in p.stderr for n in needles), ctx)
    left = os.listdir(parent)
    check(f"{label}: no output and no temporary folder", left == [], str(left))


def main():
    global EXPO
    EXPO = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("EXPO_BIN", str(REPO_ROOT / "build" / "expo"))
    EXPO = str(Path(EXPO).resolve())
    for attempt in range(2):
        if os.access(EXPO, os.X_OK):
            break
        if attempt < 1:
            info(f"expo binary not found or not executable: {EXPO}; waiting 30 s (a rebuild?)")
            time.sleep(30)
    t0 = time.time()
    info(f"expo: {EXPO}; seed {SEED}; numpy {np.__version__}")
    rng = np.random.default_rng(SEED)
    tmp = tempfile.mkdtemp(prefix="expo-lora-")
    try:
        with np.errstate(over="raise", invalid="raise"):
            self_test_reference(rng)
        if not check("expo binary is executable", os.access(EXPO, os.X_OK), EXPO):
            raise SystemExit
        work = Work(tmp)
        inp = Inputs(Path(tmp) / "inputs")
        for test in (test_full, test_output_adapter, test_two_adapters, test_refusals):
            t1 = time.time()
            try:
                test(rng, work, inp)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                check(f"{test.__name__} raised", False, repr(e))
            info(f"{test.__name__}: {time.time() - t1:.2f}s")
    except SystemExit:
        pass
    finally:
        if os.environ.get("EXPO_TEST_KEEP"):
            info(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    info(f"compared {STATS['elements']} elements in {STATS['runs']} expo runs "
         f"({STATS['off_by_one_accepted']} accepted off by one ulp); {time.time() - t0:.1f}s")
    info(f"of {STATS['adapted_elements']} LoRA-adapted elements the data tells the contract from "
         f"(1+alpha)*(s*p) in {STATS['c_first_distinct']} and from a descending-k sum in {STATS['order_distinct']}")
    if STATS["runs"] > 0 and PASSED > 0:
        check("coverage: the data separates the contract from (1+alpha)*(s*p) and from a descending-k sum",
              STATS["c_first_distinct"] > 0 and STATS["order_distinct"] > 0, str(STATS))
    if FAILURES:
        info("failed: " + "; ".join(FAILURES[:20]) + (" ..." if len(FAILURES) > 20 else ""))
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
