#!/usr/bin/python3
"""Generate golden test cases for expo's built-in CPU inference engine.

Independent float64 reference implementation of the Hugging Face
transformers semantics for Llama-family decoder models (Llama, Mistral,
Qwen2, InternLM2, *ForSequenceClassification) and of expo's weight
extrapolation theta2 = aligned + alpha * (aligned - sft).

Usage:
    /usr/bin/python3 tests/golden/engine/make_goldens.py            # regenerate
    /usr/bin/python3 tests/golden/engine/make_goldens.py --verify   # regenerate + self-checks

Only numpy is needed for generation; --verify additionally uses torch for a
second, independently written (HF-module-style) forward pass.

Output is fully deterministic: fixed seeds (numpy.random.RandomState, whose
stream is frozen), hand-written safetensors / npy / json writers.
"""

import json
import math
import os
import shutil
import struct
import sys

import numpy as np

OUT_DIR = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------
# Model dimensions shared by all cases (a case may override).
# Chosen so that all 14 cases together stay under 3 MB.
# ---------------------------------------------------------------------------
HIDDEN = 64
INTERMEDIATE = 48
LAYERS = 2
VOCAB = 96
HEADS = 4
PROMPT_LEN = 24
GREEDY_NEW = 32
GREEDY_MARGIN = 2e-3
BOS, EOS, PAD = 1, 2, 0

# ---------------------------------------------------------------------------
# dtype rounding
# ---------------------------------------------------------------------------


def round_bf16(x):
    """Exact round-to-nearest-even of float64 values to bfloat16 (as float64)."""
    x = np.asarray(x, dtype=np.float64)
    m, e = np.frexp(x)  # x = m * 2**e, 0.5 <= |m| < 1
    r = np.ldexp(np.round(np.ldexp(m, 8)), e - 8)  # np.round: half to even
    # No subnormal / overflow handling needed for our value ranges.
    assert np.all(np.isfinite(r))
    assert np.all((r == 0) | (np.abs(r) >= 2.0 ** -126))
    return r


def round_to(x, dtype):
    x = np.asarray(x, dtype=np.float64)
    if dtype == "F32":
        return x.astype(np.float32).astype(np.float64)
    if dtype == "F16":
        r = x.astype(np.float16)
        assert np.all(np.isfinite(r))
        return r.astype(np.float64)
    if dtype == "BF16":
        return round_bf16(x)
    raise ValueError(dtype)


def encode(x, dtype):
    """float64 array (already representable in dtype) -> little-endian bytes."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if dtype == "F32":
        a = x.astype("<f4")
        assert np.array_equal(a.astype(np.float64), x)
        return a.tobytes()
    if dtype == "F16":
        a = x.astype("<f2")
        assert np.array_equal(a.astype(np.float64), x)
        return a.tobytes()
    if dtype == "BF16":
        u = x.astype("<f4").view("<u4")
        assert np.all((u & 0xFFFF) == 0), "value not representable in bf16"
        return (u >> 16).astype("<u2").tobytes()
    raise ValueError(dtype)


def decode(buf, dtype, shape):
    if dtype == "F32":
        a = np.frombuffer(buf, dtype="<f4").astype(np.float64)
    elif dtype == "F16":
        a = np.frombuffer(buf, dtype="<f2").astype(np.float64)
    elif dtype == "BF16":
        u = np.frombuffer(buf, dtype="<u2").astype("<u4") << 16
        a = u.view("<f4").astype(np.float64)
    else:
        raise ValueError(dtype)
    return a.reshape(shape)


TORCH_DTYPE_NAME = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}

# ---------------------------------------------------------------------------
# file writers
# ---------------------------------------------------------------------------


def write_safetensors(path, tensors, dtype):
    """tensors: dict name -> float64 array representable in dtype."""
    names = sorted(tensors)
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for n in names:
        b = encode(tensors[n], dtype)
        header[n] = {"dtype": dtype, "shape": list(tensors[n].shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = decode(data[base + b:base + e], info["dtype"], info["shape"])
    return out, header


def write_npy(path, arr):
    arr = np.ascontiguousarray(arr, dtype="<f4")
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=False)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def write_golden_json(path, obj):
    """Flat object, one key per line, lists kept on one line."""
    lines = ["  %s: %s" % (json.dumps(k), json.dumps(v)) for k, v in obj.items()]
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


# ---------------------------------------------------------------------------
# Config helpers
# ---------------------------------------------------------------------------


class Spec:
    """Normalised view of an HF config used by the reference."""

    def __init__(self, cfg):
        self.cfg = cfg
        mt = cfg["model_type"]
        self.model_type = mt
        self.arch = cfg["architectures"][0]
        self.seqcls = self.arch.endswith("ForSequenceClassification")
        self.H = cfg["hidden_size"]
        self.I = cfg["intermediate_size"]
        self.L = cfg["num_hidden_layers"]
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg.get("num_key_value_heads") or self.nh
        hd = cfg.get("head_dim")
        self.hd = hd if hd else self.H // self.nh
        self.V = cfg["vocab_size"]
        self.eps = cfg["rms_norm_eps"]
        self.theta = float(cfg.get("rope_theta", 10000.0))
        self.scaling = cfg.get("rope_scaling")
        self.max_pos = cfg["max_position_embeddings"]
        self.tied = bool(cfg.get("tie_word_embeddings", False))
        if mt == "llama":
            self.qkv_bias = self.o_bias = bool(cfg.get("attention_bias", False))
            self.mlp_bias = bool(cfg.get("mlp_bias", False))
        elif mt == "qwen2":
            self.qkv_bias, self.o_bias, self.mlp_bias = True, False, False
        elif mt == "mistral":
            self.qkv_bias = self.o_bias = self.mlp_bias = False
        elif mt == "internlm2":
            b = bool(cfg.get("bias", False))
            self.qkv_bias = self.o_bias = b
            self.mlp_bias = False
            assert not b
        else:
            raise ValueError(mt)
        # sliding window
        self.window = None
        if mt == "mistral":
            self.window = cfg.get("sliding_window")
        elif mt == "qwen2":
            if cfg.get("use_sliding_window", False):
                raise NotImplementedError("qwen2 use_sliding_window=true not used")
        if self.seqcls:
            self.num_labels = len(cfg["id2label"])


def base_inv_freq(theta, d):
    i = np.arange(d // 2, dtype=np.float64)
    return 1.0 / theta ** (2.0 * i / d)


def rope_kind(spec):
    s = spec.scaling
    if not s:
        return "default"
    return s.get("rope_type", s.get("type"))


def inv_freq_for_call(spec, seq_len):
    """inv_freq used for all positions of one forward call whose largest
    position id + 1 is seq_len (only 'dynamic' depends on seq_len)."""
    d = spec.hd
    kind = rope_kind(spec)
    if kind == "default":
        return base_inv_freq(spec.theta, d)
    s = spec.scaling
    if kind == "linear":
        return base_inv_freq(spec.theta, d) / float(s["factor"])
    if kind == "llama3":
        inv = base_inv_freq(spec.theta, d)
        factor = float(s["factor"])
        lo = float(s["low_freq_factor"])
        hi = float(s["high_freq_factor"])
        orig = float(s["original_max_position_embeddings"])
        low_wl = orig / lo
        high_wl = orig / hi
        out = np.empty_like(inv)
        for i, f in enumerate(inv):
            wl = 2.0 * math.pi / f
            if wl > low_wl:
                out[i] = f / factor
            elif wl < high_wl:
                out[i] = f
            else:
                smooth = (orig / wl - lo) / (hi - lo)
                out[i] = (1.0 - smooth) * f / factor + smooth * f
        return out
    if kind == "dynamic":
        factor = float(s["factor"])
        mp = float(s.get("original_max_position_embeddings", spec.max_pos))
        base = spec.theta
        if seq_len > mp:
            base = spec.theta * ((factor * seq_len / mp) - (factor - 1.0)) ** (d / (d - 2.0))
        return base_inv_freq(base, d)
    raise ValueError(kind)


def llama3_branches(spec):
    s = spec.scaling
    inv = base_inv_freq(spec.theta, spec.hd)
    orig = float(s["original_max_position_embeddings"])
    low_wl = orig / float(s["low_freq_factor"])
    high_wl = orig / float(s["high_freq_factor"])
    br = []
    for f in inv:
        wl = 2 * math.pi / f
        br.append("low" if wl > low_wl else ("high" if wl < high_wl else "mid"))
    return br


# ---------------------------------------------------------------------------
# Reference forward (numpy float64)
# ---------------------------------------------------------------------------


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def apply_rope(x, pos, inv_freq):
    """x: [T, heads, d]; pos: [T] ints."""
    ang = np.asarray(pos, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos = np.cos(np.concatenate([ang, ang], axis=-1))[:, None, :]
    sin = np.sin(np.concatenate([ang, ang], axis=-1))[:, None, :]
    return x * cos + rotate_half(x) * sin


def silu(x):
    return x / (1.0 + np.exp(-x))


def linear(x, w, b=None):
    y = x @ w.T
    if b is not None:
        y = y + b
    return y


def layer_weights(spec, P, i):
    """Return dict with q,k,v,o (+biases), norms, mlp for layer i in a
    uniform layout: wq [nh*hd, H] (query head h rows h*hd..), wk/wv [nkv*hd, H]."""
    L = {}
    if spec.model_type == "internlm2":
        p = "model.layers.%d." % i
        g = spec.nh // spec.nkv
        wqkv = P[p + "attention.wqkv.weight"].reshape(spec.nkv, g + 2, spec.hd, spec.H)
        L["wq"] = wqkv[:, :g].reshape(spec.nkv * g * spec.hd, spec.H)
        L["wk"] = wqkv[:, g].reshape(spec.nkv * spec.hd, spec.H)
        L["wv"] = wqkv[:, g + 1].reshape(spec.nkv * spec.hd, spec.H)
        L["wo"] = P[p + "attention.wo.weight"]
        L["ln1"] = P[p + "attention_norm.weight"]
        L["ln2"] = P[p + "ffn_norm.weight"]
        L["gate"] = P[p + "feed_forward.w1.weight"]
        L["up"] = P[p + "feed_forward.w3.weight"]
        L["down"] = P[p + "feed_forward.w2.weight"]
        for k in ("bq", "bk", "bv", "bo", "bgate", "bup", "bdown"):
            L[k] = None
        return L
    p = "model.layers.%d." % i
    a = p + "self_attn."
    m = p + "mlp."
    L["wq"], L["wk"], L["wv"], L["wo"] = (P[a + n + "_proj.weight"] for n in "qkvo")
    L["bq"], L["bk"], L["bv"] = (P[a + n + "_proj.bias"] if spec.qkv_bias else None for n in "qkv")
    L["bo"] = P[a + "o_proj.bias"] if spec.o_bias else None
    L["ln1"] = P[p + "input_layernorm.weight"]
    L["ln2"] = P[p + "post_attention_layernorm.weight"]
    for n in ("gate", "up", "down"):
        L[n] = P[m + n + "_proj.weight"]
        L["b" + n] = P[m + n + "_proj.bias"] if spec.mlp_bias else None
    return L


def embed_name(spec):
    return "model.tok_embeddings.weight" if spec.model_type == "internlm2" else "model.embed_tokens.weight"


def head_weight(spec, P):
    if spec.seqcls:
        return P["score.weight"]
    if spec.tied:
        return P[embed_name(spec)]
    return P["output.weight" if spec.model_type == "internlm2" else "lm_head.weight"]


def new_cache(spec):
    return [{"k": np.zeros((0, spec.nkv, spec.hd)), "v": np.zeros((0, spec.nkv, spec.hd)),
             "pos": np.zeros((0,), dtype=np.int64)} for _ in range(spec.L)]


def forward(spec, P, tokens, positions, cache=None):
    """One forward call.  Returns the head output (logits / scores) [T, out].
    cache (list per layer) is extended in place when given."""
    tokens = np.asarray(tokens, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.int64)
    T = len(tokens)
    if cache is None:
        cache = new_cache(spec)
    inv_freq = inv_freq_for_call(spec, int(positions.max()) + 1)
    x = P[embed_name(spec)][tokens]
    g = spec.nh // spec.nkv
    scale = 1.0 / math.sqrt(spec.hd)
    for i in range(spec.L):
        W = layer_weights(spec, P, i)
        h = rms_norm(x, W["ln1"], spec.eps)
        q = linear(h, W["wq"], W["bq"]).reshape(T, spec.nh, spec.hd)
        k = linear(h, W["wk"], W["bk"]).reshape(T, spec.nkv, spec.hd)
        v = linear(h, W["wv"], W["bv"]).reshape(T, spec.nkv, spec.hd)
        q = apply_rope(q, positions, inv_freq)
        k = apply_rope(k, positions, inv_freq)
        c = cache[i]
        c["k"] = np.concatenate([c["k"], k], axis=0)
        c["v"] = np.concatenate([c["v"], v], axis=0)
        c["pos"] = np.concatenate([c["pos"], positions])
        K, Vv, kp = c["k"], c["v"], c["pos"]
        allowed = kp[None, :] <= positions[:, None]
        if spec.window is not None:
            allowed &= (positions[:, None] - kp[None, :]) < spec.window
        out = np.zeros((T, spec.nh, spec.hd))
        for hq in range(spec.nh):
            hk = hq // g
            s = (q[:, hq, :] @ K[:, hk, :].T) * scale
            s = np.where(allowed, s, -np.inf)
            s = s - s.max(axis=-1, keepdims=True)
            p = np.exp(s)
            p = p / p.sum(axis=-1, keepdims=True)
            out[:, hq, :] = p @ Vv[:, hk, :]
        x = x + linear(out.reshape(T, spec.nh * spec.hd), W["wo"], W["bo"])
        h = rms_norm(x, W["ln2"], spec.eps)
        act = silu(linear(h, W["gate"], W["bgate"])) * linear(h, W["up"], W["bup"])
        x = x + linear(act, W["down"], W["bdown"])
    x = rms_norm(x, P["model.norm.weight"], spec.eps)
    return x @ head_weight(spec, P).T


def top2_margin(row):
    s = np.sort(row)
    return s[-1] - s[-2]


def greedy(spec, P, prompt, n_new=GREEDY_NEW):
    """Cached greedy decoding. Returns (tokens, per-step logits, min margin)."""
    cache = new_cache(spec)
    n = len(prompt)
    logits = forward(spec, P, prompt, np.arange(n), cache)[-1]
    toks, rows, margins = [], [], []
    for step in range(n_new):
        t = int(np.argmax(logits))  # first max = lowest index
        toks.append(t)
        rows.append(logits)
        margins.append(top2_margin(logits))
        if step + 1 == n_new:
            break
        logits = forward(spec, P, [t], [n + step], cache)[-1]
    return toks, np.array(rows), float(min(margins))


# ---------------------------------------------------------------------------
# Weight generation
# ---------------------------------------------------------------------------


def gen_params(spec, rng):
    """float64 (unrounded) parameters with HF tensor names."""
    H, I, V, hd, nh, nkv = spec.H, spec.I, spec.V, spec.hd, spec.nh, spec.nkv
    P = {}

    def nrm(shape, std):
        return rng.standard_normal(shape) * std

    def norm_w(n):
        return 1.0 + 0.1 * rng.standard_normal(n)

    P[embed_name(spec)] = nrm((V, H), 0.25)
    for i in range(spec.L):
        p = "model.layers.%d." % i
        if spec.model_type == "internlm2":
            g = nh // nkv
            P[p + "attention_norm.weight"] = norm_w(H)
            P[p + "attention.wqkv.weight"] = nrm((nkv * (g + 2) * hd, H), H ** -0.5)
            P[p + "attention.wo.weight"] = nrm((H, nh * hd), (nh * hd) ** -0.5)
            P[p + "ffn_norm.weight"] = norm_w(H)
            P[p + "feed_forward.w1.weight"] = nrm((I, H), H ** -0.5)
            P[p + "feed_forward.w3.weight"] = nrm((I, H), H ** -0.5)
            P[p + "feed_forward.w2.weight"] = nrm((H, I), I ** -0.5)
            continue
        a = p + "self_attn."
        P[p + "input_layernorm.weight"] = norm_w(H)
        P[a + "q_proj.weight"] = nrm((nh * hd, H), H ** -0.5)
        P[a + "k_proj.weight"] = nrm((nkv * hd, H), H ** -0.5)
        P[a + "v_proj.weight"] = nrm((nkv * hd, H), H ** -0.5)
        P[a + "o_proj.weight"] = nrm((H, nh * hd), (nh * hd) ** -0.5)
        if spec.qkv_bias:
            P[a + "q_proj.bias"] = nrm((nh * hd,), 0.2)
            P[a + "k_proj.bias"] = nrm((nkv * hd,), 0.2)
            P[a + "v_proj.bias"] = nrm((nkv * hd,), 0.2)
        if spec.o_bias:
            P[a + "o_proj.bias"] = nrm((H,), 0.1)
        P[p + "post_attention_layernorm.weight"] = norm_w(H)
        m = p + "mlp."
        P[m + "gate_proj.weight"] = nrm((I, H), H ** -0.5)
        P[m + "up_proj.weight"] = nrm((I, H), H ** -0.5)
        P[m + "down_proj.weight"] = nrm((H, I), I ** -0.5)
        if spec.mlp_bias:
            P[m + "gate_proj.bias"] = nrm((I,), 0.1)
            P[m + "up_proj.bias"] = nrm((I,), 0.1)
            P[m + "down_proj.bias"] = nrm((H,), 0.1)
    P["model.norm.weight"] = norm_w(H)
    if spec.seqcls:
        P["score.weight"] = nrm((spec.num_labels, H), 0.25)
    elif not spec.tied:
        P["output.weight" if spec.model_type == "internlm2" else "lm_head.weight"] = nrm((V, H), 0.25)
    return P


def gen_delta(P, rng):
    """Small random 'alignment' delta: 10% of each tensor's spread."""
    D = {}
    for n in sorted(P):
        w = P[n]
        if n.endswith("norm.weight"):
            std = 0.02
        else:
            std = 0.1 * float(np.std(w))
        D[n] = rng.standard_normal(w.shape) * std
    return D


def extrapolate(sft, aligned, alpha, dtype):
    out = {}
    for n in sorted(sft):
        s = sft[n]
        a = aligned[n]
        d = a - s
        m = alpha * d
        r = a + m
        out[n] = round_to(r, dtype)
    return out


# ---------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------


def base_config(model_type, arch, dtype, **over):
    cfg = {
        "architectures": [arch],
        "model_type": model_type,
        "torch_dtype": TORCH_DTYPE_NAME[dtype],
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "vocab_size": VOCAB,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "max_position_embeddings": 128,
        "tie_word_embeddings": False,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
        "use_cache": True,
    }
    if model_type == "llama":
        cfg.update({"attention_bias": False, "mlp_bias": False, "pretraining_tp": 1})
    cfg.update(over)
    return cfg


def seqcls_labels(n):
    return {"id2label": {str(i): "LABEL_%d" % i for i in range(n)},
            "label2id": {"LABEL_%d" % i: i for i in range(n)}}


CASES = [
    # name, dtype, config, extra
    ("llama_f32_gqa", "F32",
     base_config("llama", "LlamaForCausalLM", "F32", num_key_value_heads=2), {}),
    ("llama_bf16_tied_mqa", "BF16",
     base_config("llama", "LlamaForCausalLM", "BF16", num_key_value_heads=1,
                 tie_word_embeddings=True, rms_norm_eps=1e-6), {}),
    ("llama_f16_linear_headdim", "F16",
     base_config("llama", "LlamaForCausalLM", "F16", num_key_value_heads=2, head_dim=32,
                 rope_scaling={"rope_type": "linear", "factor": 2.0},
                 max_position_embeddings=256), {}),
    ("llama3_rope_bf16", "BF16",
     base_config("llama", "LlamaForCausalLM", "BF16", num_key_value_heads=2, head_dim=32,
                 rope_theta=500000.0, max_position_embeddings=384,
                 rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 48}), {}),
    ("llama_dynamic_f32", "F32",
     base_config("llama", "LlamaForCausalLM", "F32", num_key_value_heads=2,
                 max_position_embeddings=16,
                 rope_scaling={"type": "dynamic", "factor": 2.0}), {}),
    ("mistral_sliding_bf16", "BF16",
     base_config("mistral", "MistralForCausalLM", "BF16", num_key_value_heads=2,
                 sliding_window=8), {}),
    ("qwen2_bias_tied_f32", "F32",
     base_config("qwen2", "Qwen2ForCausalLM", "F32", num_key_value_heads=2,
                 tie_word_embeddings=True, rms_norm_eps=1e-6, rope_theta=1000000.0,
                 use_sliding_window=False, sliding_window=8, max_window_layers=1), {}),
    ("llama_biases_f32", "F32",
     base_config("llama", "LlamaForCausalLM", "F32", num_key_value_heads=4,
                 attention_bias=True, mlp_bias=True), {}),
    ("internlm2_bf16", "BF16",
     base_config("internlm2", "InternLM2ForCausalLM", "BF16", num_key_value_heads=2,
                 rope_theta=1000000.0, bias=False, pad_token_id=PAD,
                 attn_implementation="eager",
                 auto_map={"AutoConfig": "configuration_internlm2.InternLM2Config",
                           "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"}),
     {}),
    ("reward_llama_f32", "F32",
     base_config("llama", "LlamaForSequenceClassification", "F32", num_key_value_heads=4,
                 pad_token_id=PAD, **seqcls_labels(1)), {}),
    ("reward_mistral_bf16", "BF16",
     base_config("mistral", "MistralForSequenceClassification", "BF16", num_key_value_heads=2,
                 sliding_window=8, pad_token_id=PAD, **seqcls_labels(1)), {}),
    ("reward_qwen2_f32", "F32",
     base_config("qwen2", "Qwen2ForSequenceClassification", "F32", num_key_value_heads=2,
                 rms_norm_eps=1e-6, rope_theta=1000000.0, use_sliding_window=False,
                 sliding_window=32768, max_window_layers=2, pad_token_id=PAD,
                 **seqcls_labels(2)), {}),
    ("expo_pair_f32", "F32",
     base_config("llama", "LlamaForCausalLM", "F32", num_key_value_heads=2),
     {"alpha": 0.5}),
    ("expo_pair_bf16", "BF16",
     base_config("llama", "LlamaForCausalLM", "BF16", num_key_value_heads=2, rms_norm_eps=1e-6),
     {"alpha": 2.0}),
]


def random_prompt(rng, n, V):
    # BOS first, then tokens avoiding pad/bos/eos ids 0..2
    return [BOS] + [int(t) for t in rng.randint(3, V, size=n - 1)]


def pick_greedy_prompt(spec, P, seed):
    """Try seeds until every one of the 32 greedy steps has a top1-top2
    margin >= GREEDY_MARGIN and the continuation is not degenerate (>= 10
    distinct tokens); otherwise keep the valid attempt with most distinct
    tokens (first such on ties)."""
    best = None
    for attempt in range(300):
        rng = np.random.RandomState(seed * 1000 + attempt)
        n = int(rng.randint(8, 13))
        gp = random_prompt(rng, n, spec.V)
        toks, rows, margin = greedy(spec, P, gp)
        if margin < GREEDY_MARGIN:
            continue
        if best is None or len(set(toks)) > len(set(best[1])):
            best = (gp, toks, rows, margin)
        if len(set(toks)) >= 10:
            break
    if best is None:
        raise RuntimeError("no greedy prompt with sufficient margin")
    return best


def case_seed(idx):
    return 1234 + 97 * idx


def build_case(idx, name, dtype, cfg, extra):
    spec = Spec(cfg)
    if rope_kind(spec) == "llama3":
        assert set(llama3_branches(spec)) == {"low", "mid", "high"}, llama3_branches(spec)
    rng = np.random.RandomState(case_seed(idx))
    raw = gen_params(spec, rng)
    case_dir = os.path.join(OUT_DIR, name)
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)
    info = {}
    if "alpha" in extra:
        alpha = float(extra["alpha"])
        sft = {n: round_to(w, dtype) for n, w in raw.items()}
        delta = gen_delta(raw, rng)
        aligned = {n: round_to(sft[n] + delta[n], dtype) for n in sorted(sft)}
        P = extrapolate(sft, aligned, alpha, dtype)
        for sub, W in (("sft", sft), ("aligned", aligned)):
            os.makedirs(os.path.join(case_dir, sub))
            write_json(os.path.join(case_dir, sub, "config.json"), cfg)
            write_safetensors(os.path.join(case_dir, sub, "model.safetensors"), W, dtype)
        info["sft"], info["aligned"] = sft, aligned
    else:
        P = {n: round_to(w, dtype) for n, w in raw.items()}
        write_json(os.path.join(case_dir, "config.json"), cfg)
        write_safetensors(os.path.join(case_dir, "model.safetensors"), P, dtype)

    prng = np.random.RandomState(case_seed(idx) + 1)
    prompt = random_prompt(prng, PROMPT_LEN, spec.V)
    logits = forward(spec, P, prompt, np.arange(PROMPT_LEN))
    write_npy(os.path.join(case_dir, "logits.npy"), logits.astype(np.float32))

    golden = {"case": name, "architecture": spec.arch, "dtype": dtype,
              "prompt": prompt, "logits_file": "logits.npy"}
    if dtype == "F32":
        golden["tolerance"] = {"kind": "abs", "value": 1e-4}
    else:
        golden["tolerance"] = {"kind": "nmse", "value": 1e-5}
    if "alpha" in extra:
        golden["alpha"] = float(extra["alpha"])
        golden["sft_dir"] = "sft"
        golden["aligned_dir"] = "aligned"
    if spec.seqcls:
        golden["reward"] = [float(v) for v in logits[-1]]
        margin = None
    else:
        gp, toks, rows, margin = pick_greedy_prompt(spec, P, case_seed(idx))
        golden["greedy_prompt"] = gp
        golden["greedy"] = toks
        golden["greedy_min_margin"] = round(margin, 6)
        info["greedy_rows"] = rows
    write_golden_json(os.path.join(case_dir, "golden.json"), golden)
    assert json.load(open(os.path.join(case_dir, "golden.json"))) == golden
    info.update(spec=spec, P=P, logits=logits, golden=golden, dir=case_dir, margin=margin)
    return info


# ---------------------------------------------------------------------------
# Verification (--verify): a second implementation written in the style of
# the transformers modules (torch, float64, repeat_kv, additive masks,
# fused-wqkv rearrange for InternLM2, HF-style KV cache), plus consistency
# checks of the numpy reference and of the written files.
# ---------------------------------------------------------------------------


def _t_inv_freq(spec, seq_len, torch):
    dim = spec.hd
    kind = rope_kind(spec)
    base = spec.theta
    s = spec.scaling or {}
    if kind == "dynamic":
        mp = s.get("original_max_position_embeddings", spec.max_pos)
        if seq_len > mp:
            base = base * ((s["factor"] * seq_len / mp) - (s["factor"] - 1)) ** (dim / (dim - 2))
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float64) / dim))
    if kind == "linear":
        inv = inv / s["factor"]
    elif kind == "llama3":
        factor, lo, hi = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
        old = s["original_max_position_embeddings"]
        low_wl, high_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        inv_l = torch.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        is_mid = ~(wl < high_wl) * ~(wl > low_wl)
        inv = torch.where(is_mid, smoothed, inv_l)
    return inv


def _t_rotate_half(x, torch):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def _t_forward(spec, Pt, ids, pos, past, torch):
    """ids, pos: 1-D long tensors. past: None or list of (k, v, kpos) with
    k, v: [nkv, S, hd]. Returns (head output [T, out], new past)."""
    F = torch.nn.functional
    T = ids.shape[0]
    nh, nkv, hd = spec.nh, spec.nkv, spec.hd
    g = nh // nkv
    inv = _t_inv_freq(spec, int(pos.max()) + 1, torch)
    freqs = pos[:, None].to(torch.float64) * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None], emb.sin()[None]  # [1, T, hd]

    def rms(x, w):
        var = x.pow(2).mean(-1, keepdim=True)
        return w * (x * torch.rsqrt(var + spec.eps))

    def lin(x, name):
        b = Pt.get(name[:-len("weight")] + "bias")
        return F.linear(x, Pt[name], b)

    ename = embed_name(spec)
    x = Pt[ename][ids]
    new_past = []
    for i in range(spec.L):
        p = "model.layers.%d." % i
        res = x
        if spec.model_type == "internlm2":
            h = rms(x, Pt[p + "attention_norm.weight"])
            qkv = lin(h, p + "attention.wqkv.weight").view(T, nkv, g + 2, hd)
            q = qkv[:, :, :g, :].reshape(T, nh, hd)
            k = qkv[:, :, -2, :]
            v = qkv[:, :, -1, :]
        else:
            h = rms(x, Pt[p + "input_layernorm.weight"])
            q = lin(h, p + "self_attn.q_proj.weight").view(T, nh, hd)
            k = lin(h, p + "self_attn.k_proj.weight").view(T, nkv, hd)
            v = lin(h, p + "self_attn.v_proj.weight").view(T, nkv, hd)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        q = q * cos + _t_rotate_half(q, torch) * sin
        k = k * cos + _t_rotate_half(k, torch) * sin
        kpos = pos
        if past is not None:
            pk, pv, pp = past[i]
            k = torch.cat([pk, k], dim=1)
            v = torch.cat([pv, v], dim=1)
            kpos = torch.cat([pp, pos])
        new_past.append((k, v, kpos))
        S = k.shape[1]
        kr = k[:, None].expand(nkv, g, S, hd).reshape(nh, S, hd)
        vr = v[:, None].expand(nkv, g, S, hd).reshape(nh, S, hd)
        masked = kpos[None, :] > pos[:, None]
        if spec.window is not None:
            masked = masked | (kpos[None, :] <= pos[:, None] - spec.window)
        mask = torch.zeros(T, S, dtype=torch.float64).masked_fill(masked, float("-inf"))
        w = torch.matmul(q, kr.transpose(1, 2)) / math.sqrt(hd) + mask[None]
        w = torch.softmax(w, dim=-1)
        o = torch.matmul(w, vr).transpose(0, 1).reshape(T, nh * hd)
        if spec.model_type == "internlm2":
            x = res + lin(o, p + "attention.wo.weight")
            h = rms(x, Pt[p + "ffn_norm.weight"])
            f = lin(F.silu(lin(h, p + "feed_forward.w1.weight")) * lin(h, p + "feed_forward.w3.weight"),
                    p + "feed_forward.w2.weight")
        else:
            x = res + lin(o, p + "self_attn.o_proj.weight")
            h = rms(x, Pt[p + "post_attention_layernorm.weight"])
            f = lin(F.silu(lin(h, p + "mlp.gate_proj.weight")) * lin(h, p + "mlp.up_proj.weight"),
                    p + "mlp.down_proj.weight")
        x = x + f
    x = rms(x, Pt["model.norm.weight"])
    if spec.seqcls:
        W = Pt["score.weight"]
    elif spec.tied:
        W = Pt[ename]
    else:
        W = Pt["output.weight" if spec.model_type == "internlm2" else "lm_head.weight"]
    return F.linear(x, W), new_past


def _bf16_bits_rne(x):
    """Independent bf16 RNE on float64 bit patterns (normal range)."""
    x = np.asarray(x, dtype=np.float64)
    b = x.view(np.uint64)
    lsb = (b >> np.uint64(45)) & np.uint64(1)
    b = (b + np.uint64((1 << 44) - 1) + lsb) & ~np.uint64((1 << 45) - 1)
    return b.view(np.float64)


def _mha_equivalent(spec, P):
    """Params of an equivalent model with num_kv_heads == num_heads, llama
    layout, kv heads explicitly repeated."""
    g = spec.nh // spec.nkv
    cfg = dict(spec.cfg)
    cfg["model_type"] = "llama"
    cfg["num_key_value_heads"] = spec.nh
    cfg["head_dim"] = spec.hd
    cfg["attention_bias"] = False
    cfg["mlp_bias"] = False
    s2 = Spec(cfg)
    Q = {}
    for i in range(spec.L):
        W = layer_weights(spec, P, i)
        assert all(W[b] is None for b in ("bq", "bk", "bv", "bo", "bgate", "bup", "bdown"))
        p = "model.layers.%d." % i
        Q[p + "self_attn.q_proj.weight"] = W["wq"]
        for n, key in (("k", "wk"), ("v", "wv")):
            w = W[key].reshape(spec.nkv, spec.hd, spec.H)
            Q[p + "self_attn.%s_proj.weight" % n] = np.repeat(w, g, axis=0).reshape(spec.nh * spec.hd, spec.H)
        Q[p + "self_attn.o_proj.weight"] = W["wo"]
        Q[p + "input_layernorm.weight"] = W["ln1"]
        Q[p + "post_attention_layernorm.weight"] = W["ln2"]
        Q[p + "mlp.gate_proj.weight"] = W["gate"]
        Q[p + "mlp.up_proj.weight"] = W["up"]
        Q[p + "mlp.down_proj.weight"] = W["down"]
    Q["model.embed_tokens.weight"] = P[embed_name(spec)]
    Q["model.norm.weight"] = P["model.norm.weight"]
    if not spec.tied:
        Q["lm_head.weight"] = head_weight(spec, P)
    return s2, Q


def run_verification(results):
    import torch
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    ok = []

    def check(cond, msg):
        if not cond:
            raise AssertionError("VERIFY FAILED: " + msg)
        ok.append(msg)

    # bf16 rounding: frexp method vs bit-pattern method vs torch (f32 inputs)
    rng = np.random.RandomState(7)
    x = rng.standard_normal(200000) * np.exp(rng.uniform(-20, 20, 200000))
    ties = round_bf16(x[:1000]) + np.ldexp(1.0, np.frexp(round_bf16(x[:1000]))[1] - 9)
    xx = np.concatenate([x, ties, -ties])
    check(np.array_equal(round_bf16(xx), _bf16_bits_rne(xx)), "bf16 RNE frexp == bit RNE (incl. exact ties)")
    x32 = x.astype(np.float32)
    tb = torch.from_numpy(x32).to(torch.bfloat16).to(torch.float64).numpy()
    check(np.array_equal(round_bf16(x32.astype(np.float64)), tb), "bf16 RNE == torch f32->bf16")

    for r in results:
        spec, P, g = r["spec"], r["P"], r["golden"]
        name = g["case"]
        d = r["dir"]
        # --- files round-trip
        if "alpha" in g:
            W_s, _ = read_safetensors(os.path.join(d, "sft", "model.safetensors"))
            W_a, hdr = read_safetensors(os.path.join(d, "aligned", "model.safetensors"))
            check(sorted(W_s) == sorted(P) == sorted(W_a), name + ": tensor names")
            check(all(np.array_equal(W_s[n], r["sft"][n]) and np.array_equal(W_a[n], r["aligned"][n])
                      for n in P), name + ": sft/aligned files round-trip")
            P2 = extrapolate(W_s, W_a, g["alpha"], g["dtype"])
            check(all(np.array_equal(P2[n], P[n]) for n in P), name + ": extrapolation from files")
            nd = sum(int(np.sum(P[n] != W_a[n])) for n in P)
            check(nd > 0.9 * sum(P[n].size for n in P), name + ": theta2 differs from aligned")
            if g["dtype"] != "F32":
                raw = {n: W_a[n] + g["alpha"] * (W_a[n] - W_s[n]) for n in P}
                nround = sum(int(np.sum(raw[n] != P[n])) for n in P)
                check(nround > 0, name + ": extrapolated values needed rounding (%d)" % nround)
        else:
            W, hdr = read_safetensors(os.path.join(d, "model.safetensors"))
            check(sorted(W) == sorted(P) and all(np.array_equal(W[n], P[n]) for n in P),
                  name + ": safetensors round-trip")
        hlen = struct.unpack("<Q", open(os.path.join(d, "sft" if "alpha" in g else "", "model.safetensors"), "rb").read(8))[0]
        check(hlen % 8 == 0, name + ": header length multiple of 8")
        check(all(v["dtype"] == g["dtype"] for k, v in hdr.items() if k != "__metadata__"), name + ": dtype")
        lg = np.load(os.path.join(d, "logits.npy"))
        check(lg.dtype == np.float32 and lg.shape == r["logits"].shape
              and np.array_equal(lg, r["logits"].astype(np.float32)), name + ": logits.npy")
        check(len(g["prompt"]) == PROMPT_LEN and PAD not in g["prompt"], name + ": prompt")

        # --- torch HF-style second implementation, one-shot
        Pt = {n: torch.from_numpy(np.ascontiguousarray(w)) for n, w in P.items()}
        ids = torch.tensor(g["prompt"], dtype=torch.long)
        pos = torch.arange(len(ids))
        with torch.no_grad():
            tl, _ = _t_forward(spec, Pt, ids, pos, None, torch)
        diff = float(np.abs(tl.numpy() - r["logits"]).max())
        check(diff < 1e-9, name + ": torch one-shot == numpy (max diff %.2e)" % diff)
        if spec.seqcls:
            check(np.allclose(g["reward"], r["logits"][-1], rtol=0, atol=0), name + ": reward == last row")
            check(tl.shape[1] == spec.num_labels, name + ": num_labels")
            continue

        # --- greedy: torch cached decode
        gp, toks = g["greedy_prompt"], g["greedy"]
        check(len(toks) == GREEDY_NEW and 8 <= len(gp) <= 12, name + ": greedy lengths")
        with torch.no_grad():
            out, past = _t_forward(spec, Pt, torch.tensor(gp), torch.arange(len(gp)), None, torch)
            trows = [out[-1]]
            for s in range(GREEDY_NEW - 1):
                out, past = _t_forward(spec, Pt, torch.tensor([toks[s]]),
                                       torch.tensor([len(gp) + s]), past, torch)
                trows.append(out[-1])
        trows = torch.stack(trows).numpy()
        rows = r["greedy_rows"]
        diff = float(np.abs(trows - rows).max())
        check(diff < 1e-9, name + ": torch cached greedy logits == numpy (%.2e)" % diff)
        check([int(np.argmax(t)) for t in trows] == toks, name + ": torch greedy tokens")
        # float32-rounded logits still give the same argmax
        check([int(np.argmax(t.astype(np.float32))) for t in rows] == toks, name + ": f32 argmax stable")
        check(min(top2_margin(t) for t in rows) >= GREEDY_MARGIN, name + ": greedy margin")

        # --- one-shot over prompt+generated vs cached steps
        full = list(gp) + toks[:-1]
        one = forward(spec, P, full, np.arange(len(full)))[len(gp) - 1:]
        diff = float(np.abs(one - rows).max())
        if rope_kind(spec) == "dynamic":
            check(diff > 1e-3, name + ": dynamic one-shot differs from cached decode (%.3f)" % diff)
            # the first greedy step (prompt <= max_pos) is unaffected by scaling
            check(np.abs(one[0] - rows[0]).max() > 1e-6, name + ": dynamic one-shot row0 uses scaled base")
        else:
            check(diff < 1e-10, name + ": one-shot == cached decode (%.2e)" % diff)

    byname = {r["golden"]["case"]: r for r in results}

    # --- GQA / MQA vs explicitly repeated kv heads
    for name in ("llama_f32_gqa", "llama_bf16_tied_mqa", "internlm2_bf16", "mistral_sliding_bf16",
                 "llama3_rope_bf16", "llama_f16_linear_headdim"):
        r = byname[name]
        s2, Q = _mha_equivalent(r["spec"], r["P"])
        s2.window = r["spec"].window
        l2 = forward(s2, Q, r["golden"]["prompt"], np.arange(PROMPT_LEN))
        diff = float(np.abs(l2 - r["logits"]).max())
        check(diff < 1e-10, name + ": GQA == repeated-kv MHA (%.2e)" % diff)

    # --- sliding window matters (mistral) / is ignored (qwen2 flag false)
    for name in ("mistral_sliding_bf16", "reward_mistral_bf16"):
        r = byname[name]
        s2 = Spec(r["spec"].cfg)
        s2.window = None
        l2 = forward(s2, r["P"], r["golden"]["prompt"], np.arange(PROMPT_LEN))
        w = r["spec"].window
        check(np.abs(l2[:w] - r["logits"][:w]).max() < 1e-12
              and np.abs(l2[w:] - r["logits"][w:]).min(axis=-1).max() > 0
              and np.abs(l2[w:] - r["logits"][w:]).max() > 1e-2,
              name + ": sliding window changes positions >= window only")
    r = byname["qwen2_bias_tied_f32"]
    s2 = Spec(r["spec"].cfg)
    s2.window = r["spec"].cfg["sliding_window"]
    l2 = forward(s2, r["P"], r["golden"]["prompt"], np.arange(PROMPT_LEN))
    check(np.abs(l2 - r["logits"]).max() > 1e-2, "qwen2: use_sliding_window=false matters (window 8 would change logits)")

    # --- rope scaling variants actually matter
    for name in ("llama_f16_linear_headdim", "llama3_rope_bf16", "llama_dynamic_f32"):
        r = byname[name]
        cfg = dict(r["spec"].cfg)
        cfg["rope_scaling"] = None
        l2 = forward(Spec(cfg), r["P"], r["golden"]["prompt"], np.arange(PROMPT_LEN))
        check(np.abs(l2 - r["logits"]).max() > 1e-2, name + ": rope_scaling changes logits")
    # linear == positions / factor
    r = byname["llama_f16_linear_headdim"]
    sp = r["spec"]
    xq = np.random.RandomState(3).standard_normal((30, 2, sp.hd))
    a1 = apply_rope(xq, np.arange(30), inv_freq_for_call(sp, 30))
    a2 = apply_rope(xq, np.arange(30) / 2.0, base_inv_freq(sp.theta, sp.hd))
    check(np.abs(a1 - a2).max() < 1e-12, "linear rope == positions/factor")
    check(set(llama3_branches(byname["llama3_rope_bf16"]["spec"])) == {"low", "mid", "high"},
          "llama3: all three frequency branches used")
    # dynamic: below/at max_pos no change
    sp = byname["llama_dynamic_f32"]["spec"]
    check(np.array_equal(inv_freq_for_call(sp, 16), base_inv_freq(sp.theta, sp.hd))
          and not np.array_equal(inv_freq_for_call(sp, 17), base_inv_freq(sp.theta, sp.hd)),
          "dynamic: scaling starts at seq_len 17")

    for m in ok:
        print("ok  " + m)
    print("verification passed: %d checks" % len(ok))



def dir_size(path):
    tot = 0
    for root, _, files in os.walk(path):
        for f in files:
            tot += os.path.getsize(os.path.join(root, f))
    return tot


def main(argv):
    verify = "--verify" in argv
    results = []
    for idx, (name, dtype, cfg, extra) in enumerate(CASES):
        r = build_case(idx, name, dtype, cfg, extra)
        results.append(r)
        lg = r["logits"]
        extra_s = ""
        if r["spec"].scaling and rope_kind(r["spec"]) == "llama3":
            extra_s = " llama3 branches=" + ",".join(llama3_branches(r["spec"]))
        print("%-26s %-5s logits std %.3f max|.| %.3f  greedy margin %s  size %d%s" % (
            name, dtype, lg.std(), np.abs(lg).max(),
            "%.4f" % r["margin"] if r["margin"] is not None else "-",
            dir_size(r["dir"]), extra_s))
    total = sum(dir_size(r["dir"]) for r in results)
    print("total bytes: %d" % total)
    assert total < 3 * 1024 * 1024, "goldens exceed 3 MB"
    if verify:
        run_verification(results)


if __name__ == "__main__":
    main(sys.argv[1:])
