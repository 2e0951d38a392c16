#!/usr/bin/python3
"""Generate golden test cases for expo's built-in CPU inference engine.

Independent float64 reference implementation of the Hugging Face
transformers semantics for Llama-family decoder models (Llama, Mistral,
Qwen2, Qwen3, Gemma2, Gemma3 text, Olmo2, Phi3, Mixtral, InternLM2,
*ForSequenceClassification, InternLM2ForRewardModel) and of expo's weight
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
# Chosen so that all cases together stay under 8 MB.
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


NEW_TYPES = ("qwen3", "gemma2", "gemma3_text", "olmo2", "phi3", "mixtral")


class Spec:
    """Normalised view of an HF config used by the reference."""

    def __init__(self, cfg):
        self.cfg = cfg
        mt = cfg["model_type"]
        self.model_type = mt
        self.arch = cfg["architectures"][0]
        # "seqcls": any model whose head gives per-position scores instead of LM logits
        self.reward_model = self.arch == "InternLM2ForRewardModel"
        self.seqcls = self.arch.endswith("ForSequenceClassification") or self.reward_model
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
        # defaults shared by the Llama family; the newer families override below
        self.layout = "internlm2" if mt == "internlm2" else "llama"
        self.norm_plus1 = False      # Gemma RMSNorm: x_normed * (1 + w)
        self.embed_scale = None      # Gemma: embeddings * sqrt(hidden)
        self.act = "silu"
        self.qk_norm = None          # "head" (Qwen3, Gemma3: per head over head_dim) or "full" (Olmo2)
        self.attn_scale = 1.0 / math.sqrt(self.hd)
        self.attn_cap = None
        self.final_cap = None
        self.moe = None              # (num_experts, top_k)
        self.rot_dim = self.hd
        self.layer_windows = None    # per-layer window list; None -> self.window for every layer
        self.layer_rope = None       # per-layer (theta, rope_scaling); None -> (self.theta, self.scaling)
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
        elif mt == "qwen3":
            self.qkv_bias = self.o_bias = bool(cfg.get("attention_bias", False))
            self.mlp_bias = False
            self.qk_norm = "head"
        elif mt in ("gemma2", "gemma3_text"):
            self.layout = "gemma"
            self.qkv_bias = self.o_bias = bool(cfg.get("attention_bias", False))
            self.mlp_bias = False
            self.norm_plus1 = True
            self.embed_scale = math.sqrt(self.H)
            assert cfg["hidden_activation"] == "gelu_pytorch_tanh"
            self.act = "gelu_tanh"
            self.attn_scale = float(cfg["query_pre_attn_scalar"]) ** -0.5
            self.attn_cap = cfg.get("attn_logit_softcapping")
            self.final_cap = cfg.get("final_logit_softcapping")
            if mt == "gemma3_text":
                self.qk_norm = "head"
        elif mt == "olmo2":
            self.layout = "olmo2"
            self.qkv_bias = self.o_bias = bool(cfg.get("attention_bias", False))
            self.mlp_bias = False
            self.qk_norm = "full"
        elif mt == "phi3":
            self.layout = "phi3"
            self.qkv_bias = self.o_bias = self.mlp_bias = False
            self.rot_dim = int(self.hd * float(cfg.get("partial_rotary_factor", 1.0)))
        elif mt == "mixtral":
            self.qkv_bias = self.o_bias = self.mlp_bias = False
            self.moe = (int(cfg["num_local_experts"]), int(cfg["num_experts_per_tok"]))
        else:
            raise ValueError(mt)
        # sliding window
        self.window = None
        if mt in ("mistral", "mixtral", "phi3"):
            # every layer (Phi3Attention passes config.sliding_window in every layer)
            self.window = cfg.get("sliding_window")
        elif mt in ("qwen2", "qwen3"):
            # Qwen2Config/Qwen3Config: sliding_window only if use_sliding_window; layer_types
            # default: layer i slides iff i >= max_window_layers (default 28)
            if cfg.get("use_sliding_window", False):
                w = cfg.get("sliding_window", 4096)
                types = cfg.get("layer_types") or [
                    "sliding_attention" if (w is not None and i >= cfg.get("max_window_layers", 28))
                    else "full_attention" for i in range(self.L)]
                self.layer_windows = [w if t == "sliding_attention" else None for t in types]
        elif mt == "gemma2":
            types = cfg.get("layer_types") or [
                "sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(self.L)]
            self.layer_windows = [cfg["sliding_window"] if t == "sliding_attention" else None for t in types]
        elif mt == "gemma3_text":
            pat = cfg.get("sliding_window_pattern", 6)
            types = cfg.get("layer_types") or [
                "sliding_attention" if (i + 1) % pat else "full_attention" for i in range(self.L)]
            self.layer_windows = [cfg["sliding_window"] if t == "sliding_attention" else None for t in types]
            local = (float(cfg.get("rope_local_base_freq", 10000.0)), None)
            self.layer_rope = [local if t == "sliding_attention" else (self.theta, self.scaling) for t in types]
        if self.layer_windows is not None:
            assert len(self.layer_windows) == self.L
        if self.seqcls:
            self.num_labels = 1 if self.reward_model else len(cfg["id2label"])

    def win(self, i):
        return self.layer_windows[i] if self.layer_windows is not None else self.window

    def rope(self, i):
        return self.layer_rope[i] if self.layer_rope is not None else (self.theta, self.scaling)


def base_inv_freq(theta, d):
    i = np.arange(d // 2, dtype=np.float64)
    return 1.0 / theta ** (2.0 * i / d)


def _kind(s):
    if not s:
        return "default"
    return s.get("rope_type", s.get("type"))


def rope_kind(spec):
    return _kind(spec.scaling)


def longrope_orig(spec):
    """Phi3: top-level original_max_position_embeddings wins over rope_scaling's."""
    s = spec.scaling
    return int(spec.cfg.get("original_max_position_embeddings",
                            s.get("original_max_position_embeddings", spec.max_pos)))


def rope_attention_factor(spec, scaling):
    """cos/sin multiplier (longrope only; 1 otherwise)."""
    if _kind(scaling) != "longrope":
        return 1.0
    if scaling.get("attention_factor") is not None:
        return float(scaling["attention_factor"])
    orig = longrope_orig(spec)
    factor = scaling.get("factor")
    factor = float(factor) if factor is not None else spec.max_pos / orig
    if factor <= 1.0:
        return 1.0
    return math.sqrt(1.0 + math.log(factor) / math.log(orig))


def inv_freq_for_call(spec, seq_len, theta=None, scaling=None, use_spec=True):
    """inv_freq used for all positions of one forward call whose largest
    position id + 1 is seq_len (only 'dynamic' and 'longrope' depend on seq_len)."""
    if use_spec:
        theta, scaling = spec.theta, spec.scaling
    d = spec.rot_dim
    kind = _kind(scaling)
    if kind == "default":
        return base_inv_freq(theta, d)
    s = scaling
    if kind == "linear":
        return base_inv_freq(theta, d) / float(s["factor"])
    if kind == "llama3":
        inv = base_inv_freq(theta, d)
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
        base = theta
        if seq_len > mp:
            base = theta * ((factor * seq_len / mp) - (factor - 1.0)) ** (d / (d - 2.0))
        return base_inv_freq(base, d)
    if kind == "longrope":
        ext = np.asarray(s["long_factor"] if seq_len > longrope_orig(spec) else s["short_factor"],
                         dtype=np.float64)
        assert ext.shape == (d // 2,)
        return base_inv_freq(theta, d) / ext
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


def norm(spec, x, w):
    """The model's RMSNorm: plain weight, or (1 + weight) for Gemma."""
    return rms_norm(x, 1.0 + w if spec.norm_plus1 else w, spec.eps)


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def apply_rope(x, pos, inv_freq, mscale=1.0):
    """x: [T, heads, d]; pos: [T] ints.  Rotates the first 2*len(inv_freq)
    dims (rotate_half within them); the rest pass through (partial rotary).
    cos and sin are multiplied by mscale (longrope attention factor)."""
    r = 2 * len(inv_freq)
    if r < x.shape[-1]:
        return np.concatenate([apply_rope(x[..., :r], pos, inv_freq, mscale), x[..., r:]], axis=-1)
    ang = np.asarray(pos, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos = np.cos(np.concatenate([ang, ang], axis=-1))[:, None, :]
    sin = np.sin(np.concatenate([ang, ang], axis=-1))[:, None, :]
    if mscale != 1.0:
        cos, sin = cos * mscale, sin * mscale
    return x * cos + rotate_half(x) * sin


def silu(x):
    return x / (1.0 + np.exp(-x))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


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
    if spec.layout == "phi3":
        qd, kd = spec.nh * spec.hd, spec.nkv * spec.hd
        qkv = P[a + "qkv_proj.weight"]
        L["wq"], L["wk"], L["wv"] = qkv[:qd], qkv[qd:qd + kd], qkv[qd + kd:]
        assert L["wv"].shape[0] == kd
        L["wo"] = P[a + "o_proj.weight"]
        gu = P[m + "gate_up_proj.weight"]
        L["gate"], L["up"] = gu[:spec.I], gu[spec.I:]
        L["down"] = P[m + "down_proj.weight"]
        for k in ("bq", "bk", "bv", "bo", "bgate", "bup", "bdown"):
            L[k] = None
        L["ln1"] = P[p + "input_layernorm.weight"]
        L["ln2"] = P[p + "post_attention_layernorm.weight"]
        return L
    L["wq"], L["wk"], L["wv"], L["wo"] = (P[a + n + "_proj.weight"] for n in "qkvo")
    L["bq"], L["bk"], L["bv"] = (P[a + n + "_proj.bias"] if spec.qkv_bias else None for n in "qkv")
    L["bo"] = P[a + "o_proj.bias"] if spec.o_bias else None
    if spec.qk_norm:
        L["q_norm"] = P[a + "q_norm.weight"]
        L["k_norm"] = P[a + "k_norm.weight"]
    if spec.layout != "olmo2":
        L["ln1"] = P[p + "input_layernorm.weight"]
    if spec.layout == "gemma":
        L["post_attn"] = P[p + "post_attention_layernorm.weight"]
        L["pre_ff"] = P[p + "pre_feedforward_layernorm.weight"]
        L["post_ff"] = P[p + "post_feedforward_layernorm.weight"]
    elif spec.layout == "olmo2":
        L["post_attn"] = P[p + "post_attention_layernorm.weight"]
        L["post_ff"] = P[p + "post_feedforward_layernorm.weight"]
    else:
        L["ln2"] = P[p + "post_attention_layernorm.weight"]
    if spec.moe:
        E = spec.moe[0]
        b = p + "block_sparse_moe."
        L["router"] = P[b + "gate.weight"]
        L["experts"] = [(P[b + "experts.%d.w1.weight" % e], P[b + "experts.%d.w3.weight" % e],
                         P[b + "experts.%d.w2.weight" % e]) for e in range(E)]
        return L
    for n in ("gate", "up", "down"):
        L[n] = P[m + n + "_proj.weight"]
        L["b" + n] = P[m + n + "_proj.bias"] if spec.mlp_bias else None
    return L


def embed_name(spec):
    return "model.tok_embeddings.weight" if spec.model_type == "internlm2" else "model.embed_tokens.weight"


def head_weight(spec, P):
    if spec.reward_model:
        return P["v_head.weight"]
    if spec.seqcls:
        return P["score.weight"]
    if spec.tied:
        return P[embed_name(spec)]
    return P["output.weight" if spec.model_type == "internlm2" else "lm_head.weight"]


def new_cache(spec):
    return [{"k": np.zeros((0, spec.nkv, spec.hd)), "v": np.zeros((0, spec.nkv, spec.hd)),
             "pos": np.zeros((0,), dtype=np.int64)} for _ in range(spec.L)]


ROUTER_GAP_REL = 1e-3


def moe_mlp(spec, W, h, record=None):
    """Mixtral sparse MoE: softmax over router logits, top-k, renormalise."""
    E, k = spec.moe
    r = h @ W["router"].T
    p = np.exp(r - r.max(axis=-1, keepdims=True))
    p = p / p.sum(axis=-1, keepdims=True)
    out = np.zeros_like(h)
    for t in range(h.shape[0]):
        order = np.argsort(-p[t], kind="stable")
        sel = order[:k]
        if record is not None:
            pk, pk1 = p[t, order[k - 1]], p[t, order[k]]
            record["gaps"].append((pk - pk1) / pk)
            record["chosen"].update((int(record.get("layer", 0)), int(e)) for e in sel)
        w = p[t, sel] / p[t, sel].sum()
        for wj, e in zip(w, sel):
            w1, w3, w2 = W["experts"][e]
            out[t] += wj * linear(silu(linear(h[t], w1)) * linear(h[t], w3), w2)
    return out


def forward(spec, P, tokens, positions, cache=None, record=None):
    """One forward call.  Returns the head output (logits / scores) [T, out].
    cache (list per layer) is extended in place when given.  record (dict with
    'gaps' list and 'chosen' set) collects MoE routing statistics."""
    tokens = np.asarray(tokens, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.int64)
    T = len(tokens)
    if cache is None:
        cache = new_cache(spec)
    seq_len = int(positions.max()) + 1
    if spec.layer_rope is None:
        inv_freq = inv_freq_for_call(spec, seq_len)
        mscale = rope_attention_factor(spec, spec.scaling)
    x = P[embed_name(spec)][tokens]
    if spec.embed_scale is not None:
        x = x * spec.embed_scale
    g = spec.nh // spec.nkv
    scale = spec.attn_scale
    for i in range(spec.L):
        if spec.layer_rope is not None:
            th, sc = spec.rope(i)
            inv_freq = inv_freq_for_call(spec, seq_len, th, sc, use_spec=False)
            mscale = rope_attention_factor(spec, sc)
        W = layer_weights(spec, P, i)
        h = x if spec.layout == "olmo2" else norm(spec, x, W["ln1"])
        q = linear(h, W["wq"], W["bq"])
        k = linear(h, W["wk"], W["bk"])
        v = linear(h, W["wv"], W["bv"])
        if spec.qk_norm == "full":
            q = rms_norm(q, W["q_norm"], spec.eps)
            k = rms_norm(k, W["k_norm"], spec.eps)
        q = q.reshape(T, spec.nh, spec.hd)
        k = k.reshape(T, spec.nkv, spec.hd)
        v = v.reshape(T, spec.nkv, spec.hd)
        if spec.qk_norm == "head":
            q = norm(spec, q, W["q_norm"])
            k = norm(spec, k, W["k_norm"])
        q = apply_rope(q, positions, inv_freq, mscale)
        k = apply_rope(k, positions, inv_freq, mscale)
        c = cache[i]
        c["k"] = np.concatenate([c["k"], k], axis=0)
        c["v"] = np.concatenate([c["v"], v], axis=0)
        c["pos"] = np.concatenate([c["pos"], positions])
        K, Vv, kp = c["k"], c["v"], c["pos"]
        allowed = kp[None, :] <= positions[:, None]
        win = spec.win(i)
        if win is not None:
            allowed &= (positions[:, None] - kp[None, :]) < win
        out = np.zeros((T, spec.nh, spec.hd))
        for hq in range(spec.nh):
            hk = hq // g
            s = (q[:, hq, :] @ K[:, hk, :].T) * scale
            if spec.attn_cap is not None:
                s = spec.attn_cap * np.tanh(s / spec.attn_cap)
            s = np.where(allowed, s, -np.inf)
            s = s - s.max(axis=-1, keepdims=True)
            p = np.exp(s)
            p = p / p.sum(axis=-1, keepdims=True)
            out[:, hq, :] = p @ Vv[:, hk, :]
        a = linear(out.reshape(T, spec.nh * spec.hd), W["wo"], W["bo"])
        if spec.layout in ("gemma", "olmo2"):
            a = norm(spec, a, W["post_attn"])
        x = x + a
        if spec.layout == "gemma":
            h = norm(spec, x, W["pre_ff"])
        elif spec.layout == "olmo2":
            h = x
        else:
            h = norm(spec, x, W["ln2"])
        if spec.moe:
            if record is not None:
                record["layer"] = i
            f = moe_mlp(spec, W, h, record)
        else:
            gt = linear(h, W["gate"], W["bgate"])
            act = (gelu_tanh(gt) if spec.act == "gelu_tanh" else silu(gt)) * linear(h, W["up"], W["bup"])
            f = linear(act, W["down"], W["bdown"])
        if spec.layout in ("gemma", "olmo2"):
            f = norm(spec, f, W["post_ff"])
        x = x + f
    x = norm(spec, x, P["model.norm.weight"])
    out = x @ head_weight(spec, P).T
    if spec.final_cap is not None and not spec.seqcls:
        out = spec.final_cap * np.tanh(out / spec.final_cap)
    return out


def top2_margin(row):
    s = np.sort(row)
    return s[-1] - s[-2]


def greedy(spec, P, prompt, n_new=GREEDY_NEW, record=None):
    """Cached greedy decoding. Returns (tokens, per-step logits, min margin)."""
    cache = new_cache(spec)
    n = len(prompt)
    logits = forward(spec, P, prompt, np.arange(n), cache, record)[-1]
    toks, rows, margins = [], [], []
    for step in range(n_new):
        t = int(np.argmax(logits))  # first max = lowest index
        toks.append(t)
        rows.append(logits)
        margins.append(top2_margin(logits))
        if step + 1 == n_new:
            break
        logits = forward(spec, P, [t], [n + step], cache, record)[-1]
    return toks, np.array(rows), float(min(margins))


# ---------------------------------------------------------------------------
# Weight generation
# ---------------------------------------------------------------------------


def gen_params_new(spec, rng):
    """float64 (unrounded) parameters with HF tensor names, for the families
    added later (qwen3, gemma2, gemma3_text, olmo2, phi3, mixtral).  Kept
    apart from gen_params so that the older cases' random streams are
    untouched."""
    H, I, V, hd, nh, nkv = spec.H, spec.I, spec.V, spec.hd, spec.nh, spec.nkv
    P = {}

    def nrm(shape, std):
        return rng.standard_normal(shape) * std

    def norm_w(n, gemma_offset=0.0):
        # Gemma stores w with the norm applying (1 + w).  Its post-attention /
        # post-feedforward norms get w near 3 so that the block outputs are
        # not swamped by the sqrt(hidden)-scaled embedding (with tied random
        # embeddings greedy decoding would otherwise repeat the last token).
        if spec.norm_plus1:
            return gemma_offset + 0.1 * rng.standard_normal(n)
        return 1.0 + 0.1 * rng.standard_normal(n)

    P["model.embed_tokens.weight"] = nrm((V, H), 0.25)
    for i in range(spec.L):
        p = "model.layers.%d." % i
        a = p + "self_attn."
        m = p + "mlp."
        if spec.layout != "olmo2":
            P[p + "input_layernorm.weight"] = norm_w(H)
        if spec.layout == "phi3":
            P[a + "qkv_proj.weight"] = nrm(((nh + 2 * nkv) * hd, H), H ** -0.5)
        else:
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
        if spec.qk_norm == "head":
            P[a + "q_norm.weight"] = norm_w(hd)
            P[a + "k_norm.weight"] = norm_w(hd)
        elif spec.qk_norm == "full":
            P[a + "q_norm.weight"] = norm_w(nh * hd)
            P[a + "k_norm.weight"] = norm_w(nkv * hd)
        P[p + "post_attention_layernorm.weight"] = norm_w(H, 3.0)
        if spec.layout == "gemma":
            P[p + "pre_feedforward_layernorm.weight"] = norm_w(H)
        if spec.layout in ("gemma", "olmo2"):
            P[p + "post_feedforward_layernorm.weight"] = norm_w(H, 3.0)
        if spec.moe:
            b = p + "block_sparse_moe."
            P[b + "gate.weight"] = nrm((spec.moe[0], H), 1.5 * H ** -0.5)
            for e in range(spec.moe[0]):
                P[b + "experts.%d.w1.weight" % e] = nrm((I, H), H ** -0.5)
                P[b + "experts.%d.w3.weight" % e] = nrm((I, H), H ** -0.5)
                P[b + "experts.%d.w2.weight" % e] = nrm((H, I), I ** -0.5)
        elif spec.layout == "phi3":
            P[m + "gate_up_proj.weight"] = nrm((2 * I, H), H ** -0.5)
            P[m + "down_proj.weight"] = nrm((H, I), I ** -0.5)
        else:
            P[m + "gate_proj.weight"] = nrm((I, H), H ** -0.5)
            P[m + "up_proj.weight"] = nrm((I, H), H ** -0.5)
            P[m + "down_proj.weight"] = nrm((H, I), I ** -0.5)
    P["model.norm.weight"] = norm_w(H)
    if spec.seqcls:
        P["score.weight"] = nrm((spec.num_labels, H), 0.25)
    elif not spec.tied:
        P["lm_head.weight"] = nrm((V, H), 0.25)
    return P


def gen_params(spec, rng):
    """float64 (unrounded) parameters with HF tensor names."""
    if spec.model_type in NEW_TYPES:
        return gen_params_new(spec, rng)
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
    if spec.reward_model:
        P["v_head.weight"] = nrm((1, H), 0.25)
    elif spec.seqcls:
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


def gemma_config(model_type, arch, dtype, **over):
    cfg = base_config(model_type, arch, dtype, hidden_act="gelu_pytorch_tanh",
                      hidden_activation="gelu_pytorch_tanh", head_dim=16,
                      rms_norm_eps=1e-6, tie_word_embeddings=True, attention_bias=False,
                      pad_token_id=PAD, sliding_window=8)
    cfg.update(over)
    return cfg


LONGROPE_SHORT = [1.0, 1.25, 1.5, 2.0]
LONGROPE_LONG = [1.5, 3.0, 6.0, 12.0]

# Appended after the original 14 so that case_seed(idx) of those is unchanged.
CASES += [
    ("qwen3_headdim_bias_f32", "F32",
     base_config("qwen3", "Qwen3ForCausalLM", "F32", num_key_value_heads=2, head_dim=32,
                 attention_bias=True, rms_norm_eps=1e-6, rope_theta=1000000.0,
                 use_sliding_window=True, sliding_window=8, max_window_layers=1), {}),
    ("qwen3_layertypes_tied_bf16", "BF16",
     base_config("qwen3", "Qwen3ForCausalLM", "BF16", num_key_value_heads=1, head_dim=16,
                 attention_bias=False, rms_norm_eps=1e-6, tie_word_embeddings=True,
                 use_sliding_window=True, sliding_window=8, max_window_layers=28,
                 layer_types=["sliding_attention", "full_attention"]), {}),
    ("gemma2_softcap_bf16", "BF16",
     gemma_config("gemma2", "Gemma2ForCausalLM", "BF16", num_key_value_heads=2,
                  query_pre_attn_scalar=32, attn_logit_softcapping=3.0,
                  final_logit_softcapping=4.0), {}),
    ("gemma3_pattern_linear_f32", "F32",
     gemma_config("gemma3_text", "Gemma3ForCausalLM", "F32", num_hidden_layers=3,
                  num_key_value_heads=2, query_pre_attn_scalar=24, rope_theta=1000000.0,
                  rope_local_base_freq=10000.0, sliding_window_pattern=2,
                  rope_scaling={"rope_type": "linear", "factor": 8.0},
                  attn_logit_softcapping=None, final_logit_softcapping=None,
                  max_position_embeddings=1024), {}),
    ("gemma3_layertypes_bf16", "BF16",
     gemma_config("gemma3_text", "Gemma3ForCausalLM", "BF16", num_key_value_heads=1,
                  query_pre_attn_scalar=16, rope_theta=1000000.0, rope_local_base_freq=100.0,
                  layer_types=["full_attention", "sliding_attention"],
                  attn_logit_softcapping=None, final_logit_softcapping=None), {}),
    ("olmo2_gqa_f32", "F32",
     base_config("olmo2", "Olmo2ForCausalLM", "F32", num_key_value_heads=2, head_dim=16,
                 rope_theta=500000.0, rms_norm_eps=1e-6, attention_bias=False,
                 pad_token_id=PAD), {}),
    ("phi3_longrope_partial_f32", "F32",
     base_config("phi3", "Phi3ForCausalLM", "F32", num_key_value_heads=2, head_dim=16,
                 partial_rotary_factor=0.5, max_position_embeddings=64,
                 original_max_position_embeddings=16, sliding_window=None,
                 rope_scaling={"type": "longrope", "short_factor": LONGROPE_SHORT,
                               "long_factor": LONGROPE_LONG,
                               "original_max_position_embeddings": 16},
                 pad_token_id=PAD, resid_pdrop=0.0, embd_pdrop=0.0), {}),
    ("phi3_sliding_bf16", "BF16",
     base_config("phi3", "Phi3ForCausalLM", "BF16", num_key_value_heads=4, head_dim=16,
                 original_max_position_embeddings=128, sliding_window=8,
                 pad_token_id=PAD, resid_pdrop=0.0, embd_pdrop=0.0), {}),
    ("mixtral_e4k2_f32", "F32",
     base_config("mixtral", "MixtralForCausalLM", "F32", num_key_value_heads=2, head_dim=16,
                 num_local_experts=4, num_experts_per_tok=2, sliding_window=None,
                 router_aux_loss_coef=0.02, output_router_logits=False,
                 router_jitter_noise=0.0), {}),
    ("mixtral_e8k3_bf16", "BF16",
     base_config("mixtral", "MixtralForCausalLM", "BF16", num_key_value_heads=4, head_dim=16,
                 num_local_experts=8, num_experts_per_tok=3, sliding_window=None,
                 router_aux_loss_coef=0.02, output_router_logits=False,
                 router_jitter_noise=0.0, tie_word_embeddings=True), {}),
    ("internlm2_reward_bf16", "BF16",
     base_config("internlm2", "InternLM2ForRewardModel", "BF16", num_key_value_heads=2,
                 rope_theta=1000000.0, bias=False, pad_token_id=PAD, reward_token_id=93,
                 attn_implementation="eager",
                 auto_map={"AutoConfig": "configuration_internlm2.InternLM2Config",
                           "AutoModel": "modeling_internlm2.InternLM2ForRewardModel"}),
     {}),
    ("reward_qwen3_bf16", "BF16",
     base_config("qwen3", "Qwen3ForSequenceClassification", "BF16", num_key_value_heads=2,
                 head_dim=16, rms_norm_eps=1e-6, use_sliding_window=False, sliding_window=None,
                 max_window_layers=28, pad_token_id=PAD, **seqcls_labels(1)),
     {"pad_positions": [9, 22, 23]}),
    ("reward_gemma2_f32", "F32",
     gemma_config("gemma2", "Gemma2ForSequenceClassification", "F32", num_key_value_heads=2,
                  query_pre_attn_scalar=16, attn_logit_softcapping=4.0,
                  final_logit_softcapping=2.0, **seqcls_labels(2)), {}),
    ("qwen2_sliding_default_f32", "F32",
     base_config("qwen2", "Qwen2ForCausalLM", "F32", num_key_value_heads=2, rms_norm_eps=1e-6,
                 use_sliding_window=True, sliding_window=8), {}),
    ("qwen2_sliding_mwl1_bf16", "BF16",
     base_config("qwen2", "Qwen2ForCausalLM", "BF16", num_key_value_heads=2, rms_norm_eps=1e-6,
                 use_sliding_window=True, sliding_window=8, max_window_layers=1), {}),
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
        record = new_record() if spec.moe else None
        toks, rows, margin = greedy(spec, P, gp, record=record)
        if margin < GREEDY_MARGIN:
            continue
        if record is not None and min(record["gaps"]) < ROUTER_GAP_REL:
            continue
        if best is None or len(set(toks)) > len(set(best[1])):
            best = (gp, toks, rows, margin)
        if len(set(toks)) >= 10:
            break
    if best is None:
        raise RuntimeError("no greedy prompt with sufficient margin")
    return best


def new_record():
    return {"gaps": [], "chosen": set()}


def reward_position(spec, prompt):
    """Position whose score is the reward.  *ForSequenceClassification
    (transformers' generic seq-cls head): the rightmost token that is not
    config.pad_token_id (argmax of arange * non_pad_mask), or the last token
    when pad_token_id is None.  InternLM2ForRewardModel (remote code): always
    the last token, which must be config.reward_token_id."""
    if spec.reward_model:
        assert prompt[-1] == spec.cfg["reward_token_id"]
        return len(prompt) - 1
    pad = spec.cfg.get("pad_token_id")
    if pad is None:
        return len(prompt) - 1
    mask = np.array([t != pad for t in prompt], dtype=np.int64)
    return int(np.argmax(np.arange(len(prompt)) * mask))


def make_prompt(spec, P, idx, extra):
    """The 24-token golden prompt.  Older cases: one draw.  MoE cases redraw
    until every routing decision has a relative top-k gap >= ROUTER_GAP_REL."""
    for attempt in range(200):
        seed = case_seed(idx) + 1 + 7919 * attempt
        prompt = random_prompt(np.random.RandomState(seed), PROMPT_LEN, spec.V)
        for i in extra.get("pad_positions", ()):
            prompt[i] = PAD
        if spec.reward_model:
            prompt[-1] = spec.cfg["reward_token_id"]
        if not spec.moe:
            return prompt, None
        record = new_record()
        forward(spec, P, prompt, np.arange(PROMPT_LEN), record=record)
        if min(record["gaps"]) >= ROUTER_GAP_REL:
            return prompt, record
    raise RuntimeError("no prompt with clear MoE routing")


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

    prompt, info["router"] = make_prompt(spec, P, idx, extra)
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
        ri = reward_position(spec, prompt)
        golden["reward_index"] = ri
        golden["reward"] = [float(v) for v in logits[ri]]
        margin = None
    else:
        gp, toks, rows, margin = pick_greedy_prompt(spec, P, case_seed(idx))
        if spec.moe:
            rec = new_record()
            greedy(spec, P, gp, record=rec)
            info["router_greedy"] = rec
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


def _t_layer_types(cfg):
    """Layer types the way the transformers configs derive them (written from
    the config classes, independently of Spec)."""
    mt, L = cfg["model_type"], cfg["num_hidden_layers"]
    if mt in ("qwen2", "qwen3"):
        sw = cfg.get("sliding_window") if cfg.get("use_sliding_window", False) else None
        types = cfg.get("layer_types") or [
            "sliding_attention" if sw is not None and i >= cfg.get("max_window_layers", 28)
            else "full_attention" for i in range(L)]
        return types, sw
    if mt == "gemma2":
        return cfg.get("layer_types") or [
            "sliding_attention" if bool((i + 1) % 2) else "full_attention" for i in range(L)], cfg["sliding_window"]
    if mt == "gemma3_text":
        pat = cfg.get("sliding_window_pattern", 6)
        return cfg.get("layer_types") or [
            "sliding_attention" if bool((i + 1) % pat) else "full_attention" for i in range(L)], cfg["sliding_window"]
    sw = cfg.get("sliding_window") if mt in ("mistral", "mixtral", "phi3") else None
    return ["sliding_attention" if sw is not None else "full_attention"] * L, sw


def _t_rope_params(cfg, layer_type):
    """(theta, rope_scaling dict or None) for a layer type (Gemma3: local layers
    use rope_local_base_freq and no scaling)."""
    if cfg["model_type"] == "gemma3_text" and layer_type == "sliding_attention":
        return cfg.get("rope_local_base_freq", 10000.0), None
    return cfg.get("rope_theta", 10000.0), cfg.get("rope_scaling")


def _t_inv_freq(cfg, theta, s, seq_len, torch):
    """(inv_freq, attention_scaling) as transformers' ROPE_INIT_FUNCTIONS."""
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    prf = cfg.get("partial_rotary_factor", 1.0) if cfg["model_type"] == "phi3" else 1.0
    dim = int(hd * prf)
    kind = (s.get("rope_type", s.get("type")) if s else "default")
    s = s or {}
    base = theta
    att = 1.0
    if kind == "dynamic":
        mp = s.get("original_max_position_embeddings", cfg["max_position_embeddings"])
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
    elif kind == "longrope":
        # top-level original_max_position_embeddings (Phi3) takes priority
        orig = cfg.get("original_max_position_embeddings", s.get("original_max_position_embeddings"))
        factor = s.get("factor") or cfg["max_position_embeddings"] / orig
        att = s.get("attention_factor") or (
            1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig)))
        ext = torch.tensor(s["long_factor"] if seq_len > orig else s["short_factor"], dtype=torch.float64)
        inv = 1.0 / (ext * base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float64) / dim))
    return inv, att


def _t_rotate_half(x, torch):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def _t_forward(spec, Pt, ids, pos, past, torch):
    """ids, pos: 1-D long tensors. past: None or list of (k, v, kpos) with
    k, v: [nkv, S, hd]. Returns (head output [T, out], new past).
    Reads the raw config (spec.cfg) for everything except the dims."""
    F = torch.nn.functional
    cfg = spec.cfg
    mt = cfg["model_type"]
    T = ids.shape[0]
    nh, nkv, hd = spec.nh, spec.nkv, spec.hd
    eps = cfg["rms_norm_eps"]
    g = nh // nkv
    gemma = mt in ("gemma2", "gemma3_text")
    ltypes, sw = _t_layer_types(cfg)
    seq_len = int(pos.max()) + 1

    def cos_sin(layer_type):
        th, sc = _t_rope_params(cfg, layer_type)
        inv, att = _t_inv_freq(cfg, th, sc, seq_len, torch)
        freqs = pos[:, None].to(torch.float64) * inv[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos()[None] * att, emb.sin()[None] * att  # [1, T, rot]

    def rope(x, cs):
        cos, sin = cs
        r = cos.shape[-1]
        xr, xp = x[..., :r], x[..., r:]
        return torch.cat([xr * cos + _t_rotate_half(xr, torch) * sin, xp], dim=-1)

    def rms(x, w):
        var = x.pow(2).mean(-1, keepdim=True)
        if gemma:
            return (x * torch.rsqrt(var + eps)) * (1.0 + w)
        return w * (x * torch.rsqrt(var + eps))

    def lin(x, name):
        b = Pt.get(name[:-len("weight")] + "bias")
        return F.linear(x, Pt[name], b)

    def act(x):
        return F.gelu(x, approximate="tanh") if gemma else F.silu(x)

    ename = embed_name(spec)
    x = Pt[ename][ids]
    if gemma:
        x = x * torch.tensor(cfg["hidden_size"] ** 0.5, dtype=x.dtype)
    new_past = []
    for i in range(spec.L):
        p = "model.layers.%d." % i
        a = p + "self_attn."
        res = x
        cs = cos_sin(ltypes[i])
        if mt == "internlm2":
            h = rms(x, Pt[p + "attention_norm.weight"])
            qkv = lin(h, p + "attention.wqkv.weight").view(T, nkv, g + 2, hd)
            q = qkv[:, :, :g, :].reshape(T, nh, hd)
            k = qkv[:, :, -2, :]
            v = qkv[:, :, -1, :]
        else:
            h = x if mt == "olmo2" else rms(x, Pt[p + "input_layernorm.weight"])
            if mt == "phi3":
                qkv = lin(h, a + "qkv_proj.weight")
                qp = nh * hd
                q, k, v = qkv[..., :qp], qkv[..., qp:qp + nkv * hd], qkv[..., qp + nkv * hd:]
            else:
                q = lin(h, a + "q_proj.weight")
                k = lin(h, a + "k_proj.weight")
                v = lin(h, a + "v_proj.weight")
            if mt == "olmo2":
                q = rms(q, Pt[a + "q_norm.weight"])
                k = rms(k, Pt[a + "k_norm.weight"])
            q, k, v = q.view(T, -1, hd), k.view(T, -1, hd), v.view(T, -1, hd)
            if mt in ("qwen3", "gemma3_text"):
                q = rms(q, Pt[a + "q_norm.weight"])
                k = rms(k, Pt[a + "k_norm.weight"])
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        q, k = rope(q, cs), rope(k, cs)
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
        if ltypes[i] == "sliding_attention":
            masked = masked | ~(kpos[None, :] > pos[:, None] - sw)
        mask = torch.zeros(T, S, dtype=torch.float64).masked_fill(masked, float("-inf"))
        scaling = cfg["query_pre_attn_scalar"] ** -0.5 if gemma else hd ** -0.5
        w = torch.matmul(q, kr.transpose(1, 2)) * scaling
        cap = cfg.get("attn_logit_softcapping") if gemma else None
        if cap is not None:
            w = torch.tanh(w / cap) * cap
        w = torch.softmax(w + mask[None], dim=-1)
        o = torch.matmul(w, vr).transpose(0, 1).reshape(T, nh * hd)
        if mt == "internlm2":
            x = res + lin(o, p + "attention.wo.weight")
            h = rms(x, Pt[p + "ffn_norm.weight"])
            f = lin(act(lin(h, p + "feed_forward.w1.weight")) * lin(h, p + "feed_forward.w3.weight"),
                    p + "feed_forward.w2.weight")
            x = x + f
            continue
        o = lin(o, a + "o_proj.weight")
        if gemma or mt == "olmo2":
            o = rms(o, Pt[p + "post_attention_layernorm.weight"])
        x = res + o
        res = x
        if gemma:
            h = rms(x, Pt[p + "pre_feedforward_layernorm.weight"])
        elif mt == "olmo2":
            h = x
        else:
            h = rms(x, Pt[p + "post_attention_layernorm.weight"])
        if mt == "mixtral":
            b = p + "block_sparse_moe."
            E, topk = cfg["num_local_experts"], cfg["num_experts_per_tok"]
            rw = F.softmax(F.linear(h, Pt[b + "gate.weight"]), dim=1)
            rw, sel = torch.topk(rw, topk, dim=-1)
            rw = rw / rw.sum(dim=-1, keepdim=True)
            f = torch.zeros_like(h)
            emask = F.one_hot(sel, num_classes=E).permute(2, 1, 0)
            for e in range(E):
                idx, top_x = torch.where(emask[e])
                if top_x.numel() == 0:
                    continue
                cur = h[top_x]
                eo = F.linear(act(F.linear(cur, Pt[b + "experts.%d.w1.weight" % e]))
                              * F.linear(cur, Pt[b + "experts.%d.w3.weight" % e]),
                              Pt[b + "experts.%d.w2.weight" % e])
                f.index_add_(0, top_x, eo * rw[top_x, idx, None])
        elif mt == "phi3":
            gate, up = lin(h, p + "mlp.gate_up_proj.weight").chunk(2, dim=-1)
            f = lin(up * act(gate), p + "mlp.down_proj.weight")
        else:
            f = lin(act(lin(h, p + "mlp.gate_proj.weight")) * lin(h, p + "mlp.up_proj.weight"),
                    p + "mlp.down_proj.weight")
        if gemma or mt == "olmo2":
            f = rms(f, Pt[p + "post_feedforward_layernorm.weight"])
        x = res + f
    x = rms(x, Pt["model.norm.weight"])
    if spec.arch == "InternLM2ForRewardModel":
        return F.linear(x, Pt["v_head.weight"]), new_past
    if spec.arch.endswith("ForSequenceClassification"):
        return F.linear(x, Pt["score.weight"]), new_past
    if cfg.get("tie_word_embeddings", False):
        W = Pt[ename]
    else:
        W = Pt["output.weight" if mt == "internlm2" else "lm_head.weight"]
    logits = F.linear(x, W)
    fcap = cfg.get("final_logit_softcapping") if gemma else None
    if fcap is not None:
        logits = torch.tanh(logits / fcap) * fcap
    return logits, new_past


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
        check(len(g["prompt"]) == PROMPT_LEN and g["prompt"][0] == BOS
              and (PAD not in g["prompt"] or name == "reward_qwen3_bf16"), name + ": prompt")

        # --- torch HF-style second implementation, one-shot
        Pt = {n: torch.from_numpy(np.ascontiguousarray(w)) for n, w in P.items()}
        ids = torch.tensor(g["prompt"], dtype=torch.long)
        pos = torch.arange(len(ids))
        with torch.no_grad():
            tl, _ = _t_forward(spec, Pt, ids, pos, None, torch)
        diff = float(np.abs(tl.numpy() - r["logits"]).max())
        check(diff < 1e-9, name + ": torch one-shot == numpy (max diff %.2e)" % diff)
        if spec.seqcls:
            ri = g["reward_index"]
            if spec.reward_model:
                want = len(g["prompt"]) - 1
            else:  # transformers: (arange * (ids != pad)).argmax(-1)
                idt = torch.tensor(g["prompt"])
                want = int((torch.arange(len(idt)) * (idt != spec.cfg["pad_token_id"]).int()).argmax(-1))
            check(ri == want, name + ": reward_index %d" % ri)
            check(g["reward"] == [float(v) for v in r["logits"][ri]]
                  and np.abs(tl.numpy()[ri] - r["logits"][ri]).max() < 1e-9, name + ": reward == row reward_index")
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
        if rope_kind(spec) in ("dynamic", "longrope"):
            check(diff > 1e-3, name + ": dynamic/longrope one-shot differs from cached decode (%.3f)" % diff)
            # the first greedy step (prompt <= max_pos) is unaffected by scaling
            check(np.abs(one[0] - rows[0]).max() > 1e-6, name + ": dynamic/longrope one-shot row0 uses the scaled rope")
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


    # ------------------------------------------------------------------
    # Checks for the families added later: each feature changes the logits
    # ------------------------------------------------------------------
    import copy

    def alt_logits(name, **attrs):
        r = byname[name]
        s2 = copy.copy(r["spec"])
        for k_, v_ in attrs.items():
            setattr(s2, k_, v_)
        return forward(s2, r["P"], r["golden"]["prompt"], np.arange(PROMPT_LEN))

    def diff(name, **attrs):
        return float(np.abs(alt_logits(name, **attrs) - byname[name]["logits"]).max())

    expected_windows = {
        "qwen3_headdim_bias_f32": [None, 8], "qwen3_layertypes_tied_bf16": [8, None],
        "gemma2_softcap_bf16": [8, None], "reward_gemma2_f32": [8, None],
        "gemma3_pattern_linear_f32": [8, None, 8], "gemma3_layertypes_bf16": [None, 8],
        "phi3_sliding_bf16": [8, 8], "qwen2_sliding_mwl1_bf16": [None, 8],
        "qwen2_sliding_default_f32": [None, None], "reward_qwen3_bf16": [None, None],
        "phi3_longrope_partial_f32": [None, None],
    }
    for name, wins in expected_windows.items():
        sp = byname[name]["spec"]
        t_types, t_sw = _t_layer_types(sp.cfg)
        check([sp.win(i) for i in range(sp.L)] == wins
              and [t_sw if t == "sliding_attention" else None for t in t_types] == wins,
              name + ": per-layer windows %s" % wins)
        if any(w is not None for w in wins):
            w = 8
            l2 = alt_logits(name, layer_windows=[None] * sp.L, window=None)
            lg = byname[name]["logits"]
            check(np.abs(l2[:w] - lg[:w]).max() < 1e-12 and np.abs(l2[w:] - lg[w:]).max() > 1e-2,
                  name + ": sliding window changes positions >= window only")
        if None in wins:
            check(diff(name, layer_windows=[8] * sp.L) > 1e-2,
                  name + ": the full-attention layers really are full (window there changes logits)")
    check(diff("qwen2_sliding_default_f32", layer_windows=[None, 8]) > 1e-2,
          "qwen2: max_window_layers default 28 matters (sliding layer 1 would change logits)")

    # softcaps, embedding scale, (1 + w) norms
    for name in ("gemma2_softcap_bf16", "reward_gemma2_f32"):
        check(diff(name, attn_cap=None) > 1e-2, name + ": attn_logit_softcapping active")
        check(diff(name, embed_scale=None) > 1e-2, name + ": sqrt(hidden) embedding scale matters")
        check(diff(name, norm_plus1=False) > 1e-2, name + ": (1 + w) RMSNorm matters")
    check(diff("gemma2_softcap_bf16", final_cap=None) > 1e-2, "gemma2: final_logit_softcapping active")
    lg = byname["reward_gemma2_f32"]["logits"]
    fc = byname["reward_gemma2_f32"]["spec"].cfg["final_logit_softcapping"]
    check(np.abs(fc * np.tanh(lg / fc) - lg).max() > 1e-2,
          "reward_gemma2: final_logit_softcapping is not applied to the seq-cls score (it would matter)")

    # q/k norms
    for name in ("qwen3_headdim_bias_f32", "qwen3_layertypes_tied_bf16", "reward_qwen3_bf16",
                 "gemma3_pattern_linear_f32", "gemma3_layertypes_bf16", "olmo2_gqa_f32"):
        check(diff(name, qk_norm=None) > 1e-2, name + ": q_norm/k_norm change logits")
    # Olmo2 norms over the whole projection differ from per-head norms
    sp = byname["olmo2_gqa_f32"]["spec"]
    check(sp.qk_norm == "full" and byname["olmo2_gqa_f32"]["P"]["model.layers.0.self_attn.k_norm.weight"].shape
          == (sp.nkv * sp.hd,), "olmo2: k_norm over num_kv_heads*head_dim")

    # Gemma3: local rope base and global linear scaling
    for name in ("gemma3_pattern_linear_f32", "gemma3_layertypes_bf16"):
        sp = byname[name]["spec"]
        glob = [(sp.theta, sp.scaling)] * sp.L
        check(diff(name, layer_rope=glob) > 1e-2, name + ": rope_local_base_freq on local layers matters")
    sp = byname["gemma3_pattern_linear_f32"]["spec"]
    check(diff("gemma3_pattern_linear_f32",
               layer_rope=[(th, None) for th, _ in sp.layer_rope]) > 1e-2,
          "gemma3: linear rope_scaling on global layers matters")
    check(sp.layer_rope[0] == (10000.0, None) and sp.layer_rope[1][1]["factor"] == 8.0,
          "gemma3: local layers default rope, global layers linear x8")

    # Phi3: partial rotary, longrope short/long and attention factor
    name = "phi3_longrope_partial_f32"
    sp = byname[name]["spec"]
    sc = sp.scaling
    check(sp.rot_dim == 8 and abs(rope_attention_factor(sp, sc) - math.sqrt(1.5)) < 1e-15,
          "phi3: rotary dim 8, attention factor sqrt(1 + ln4/ln16)")
    t_inv, t_att = _t_inv_freq(sp.cfg, sp.theta, sc, 17, torch)
    check(np.abs(t_inv.numpy() - inv_freq_for_call(sp, 17)).max() < 1e-15 and abs(t_att - math.sqrt(1.5)) < 1e-15
          and np.array_equal(inv_freq_for_call(sp, 16), base_inv_freq(sp.theta, 8) / np.array(LONGROPE_SHORT))
          and np.array_equal(inv_freq_for_call(sp, 17), base_inv_freq(sp.theta, 8) / np.array(LONGROPE_LONG)),
          "phi3 longrope: short factors up to seq_len 16, long from 17")
    xq = np.random.RandomState(5).standard_normal((20, 2, sp.hd))
    xr = apply_rope(xq, np.arange(20), inv_freq_for_call(sp, 20), 1.3)
    check(np.array_equal(xr[..., 8:], xq[..., 8:]) and np.abs(xr[..., :8] - xq[..., :8]).max() > 1e-2,
          "phi3: partial rotary leaves dims >= rotary_dim untouched")
    full = dict(sc, short_factor=LONGROPE_SHORT + [1.0] * 4, long_factor=LONGROPE_LONG + [1.0] * 4)
    check(diff(name, rot_dim=sp.hd, scaling=full) > 1e-2, name + ": partial rotary matters")
    check(diff(name, scaling=dict(sc, long_factor=LONGROPE_SHORT)) > 1e-2,
          name + ": long factors used for the 24-token prompt")
    check(diff(name, scaling=dict(sc, attention_factor=1.0)) > 1e-2, name + ": attention factor matters")

    # Mixtral routing: clear top-k gaps, many experts used
    for name in ("mixtral_e4k2_f32", "mixtral_e8k3_bf16"):
        r = byname[name]
        E, k_ = r["spec"].moe
        gaps = r["router"]["gaps"] + r["router_greedy"]["gaps"]
        chosen = r["router"]["chosen"] | r["router_greedy"]["chosen"]
        check(min(gaps) >= ROUTER_GAP_REL and len(gaps) == r["spec"].L * (PROMPT_LEN + len(r["golden"]["greedy_prompt"]) + GREEDY_NEW - 1),
              name + ": every routing has relative top-k gap >= %g (min %.2e over %d)" % (ROUTER_GAP_REL, min(gaps), len(gaps)))
        per_layer = [len({e for (l_, e) in chosen if l_ == i}) for i in range(r["spec"].L)]
        check(all(n >= min(E, 6) for n in per_layer), name + ": experts used per layer %s of %d" % (per_layer, E))

    # reward positions
    g = byname["reward_qwen3_bf16"]["golden"]
    first_pad = g["prompt"].index(PAD)
    check(g["prompt"][-1] == PAD and 0 < first_pad < g["reward_index"] < PROMPT_LEN - 1
          and g["reward_index"] != first_pad - 1
          and np.abs(byname["reward_qwen3_bf16"]["logits"][g["reward_index"]]
                     - byname["reward_qwen3_bf16"]["logits"][-1]).max() > 1e-2,
          "reward_qwen3: rightmost non-pad index %d differs from last token and first-pad-1 (%d)"
          % (g["reward_index"], first_pad - 1))
    g = byname["internlm2_reward_bf16"]["golden"]
    check(g["prompt"][-1] == byname["internlm2_reward_bf16"]["spec"].cfg["reward_token_id"]
          and g["reward_index"] == PROMPT_LEN - 1, "internlm2 reward: prompt ends with reward_token_id, read there")

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
    assert total < 8 * 1024 * 1024, "goldens exceed 8 MB"
    if verify:
        run_verification(results)


if __name__ == "__main__":
    main(sys.argv[1:])
