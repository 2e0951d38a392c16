"""A Llama in PyTorch with transformers' parameter names and semantics, and safetensors I/O.

LlamaForCausalLM and LlamaForSequenceClassification as transformers computes them: RMSNorm in
float32 (x * rsqrt(mean(x^2) + eps) * weight), rotary embeddings with rotate_half on the two
halves of each head, grouped-query attention, SwiGLU MLP, untied lm_head. The reward model
reads its score head at the last token of each sequence (the demo's pad token never ends a
conversation, so this is transformers' "last non-pad token").
"""
import json
import math
import struct

import numpy as np
import torch
import torch.nn.functional as F


class Spec:
    def __init__(self, vocab, hidden=128, layers=4, heads=4, kv_heads=2, intermediate=384,
                 max_positions=256, rope_theta=10000.0, eps=1e-5):
        self.vocab, self.hidden, self.layers = vocab, hidden, layers
        self.heads, self.kv_heads, self.intermediate = heads, kv_heads, intermediate
        self.max_positions, self.rope_theta, self.eps = max_positions, rope_theta, eps
        self.head_dim = hidden // heads

    def config(self, bos, eos, pad, reward=False):
        c = {
            "architectures": ["LlamaForSequenceClassification" if reward else "LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": self.hidden,
            "intermediate_size": self.intermediate,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "vocab_size": self.vocab,
            "max_position_embeddings": self.max_positions,
            "rms_norm_eps": self.eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": None,
            "hidden_act": "silu",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "mlp_bias": False,
            "tie_word_embeddings": False,
            "initializer_range": 0.02,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": pad,
            "torch_dtype": "bfloat16",
            "use_cache": True,
        }
        if reward:
            c["num_labels"] = 1
            c["id2label"] = {"0": "LABEL_0"}
            c["label2id"] = {"LABEL_0": 0}
        return c


def init_params(spec, gen, reward=False):
    """Weights drawn as transformers initializes Llama: normal(0, 0.02), norms at 1."""
    def normal(*shape):
        return torch.randn(*shape, generator=gen) * 0.02

    h, d = spec.hidden, spec.head_dim
    p = {"model.embed_tokens.weight": normal(spec.vocab, h), "model.norm.weight": torch.ones(h)}
    for i in range(spec.layers):
        pre = f"model.layers.{i}."
        p[pre + "input_layernorm.weight"] = torch.ones(h)
        p[pre + "post_attention_layernorm.weight"] = torch.ones(h)
        p[pre + "self_attn.q_proj.weight"] = normal(spec.heads * d, h)
        p[pre + "self_attn.k_proj.weight"] = normal(spec.kv_heads * d, h)
        p[pre + "self_attn.v_proj.weight"] = normal(spec.kv_heads * d, h)
        p[pre + "self_attn.o_proj.weight"] = normal(h, spec.heads * d)
        p[pre + "mlp.gate_proj.weight"] = normal(spec.intermediate, h)
        p[pre + "mlp.up_proj.weight"] = normal(spec.intermediate, h)
        p[pre + "mlp.down_proj.weight"] = normal(h, spec.intermediate)
    if reward:
        p["score.weight"] = normal(1, h)
    else:
        p["lm_head.weight"] = normal(spec.vocab, h)
    return p


def _rms(x, w, eps):
    x32 = x.float()
    return w * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps))


def _rope(spec, positions):
    inv = 1.0 / (spec.rope_theta ** (torch.arange(0, spec.head_dim, 2).float() / spec.head_dim))
    freqs = positions.float()[..., None] * inv  # [B, T, d/2]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos()[:, None], emb.sin()[:, None]  # [B, 1, T, d]


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def _layer(p, spec, i, x, cos, sin, bias, cache=None):
    """Decoder layer i on x [B, T, H] (T new positions). bias [B, 1, T, K] masks the K keys
    attended to. cache: this layer's [k, v] of the earlier positions (before the grouped-query
    repeat), extended in place; None when all K keys are the T positions themselves."""
    b, t, _ = x.shape
    d, g = spec.head_dim, spec.heads // spec.kv_heads
    pre = f"model.layers.{i}."
    y = _rms(x, p[pre + "input_layernorm.weight"], spec.eps)
    q = (y @ p[pre + "self_attn.q_proj.weight"].T).view(b, t, spec.heads, d).transpose(1, 2)
    k = (y @ p[pre + "self_attn.k_proj.weight"].T).view(b, t, spec.kv_heads, d).transpose(1, 2)
    v = (y @ p[pre + "self_attn.v_proj.weight"].T).view(b, t, spec.kv_heads, d).transpose(1, 2)
    q = q * cos + _rotate_half(q) * sin
    k = k * cos + _rotate_half(k) * sin
    if cache is not None:
        if cache[0] is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        cache[0], cache[1] = k, v
    k = k.repeat_interleave(g, dim=1)
    v = v.repeat_interleave(g, dim=1)
    att = (q @ k.transpose(-1, -2)) / math.sqrt(d) + bias
    att = torch.softmax(att, dim=-1).nan_to_num(0.0)
    o = (att @ v).transpose(1, 2).reshape(b, t, spec.heads * d)
    x = x + o @ p[pre + "self_attn.o_proj.weight"].T
    y = _rms(x, p[pre + "post_attention_layernorm.weight"], spec.eps)
    gate = y @ p[pre + "mlp.gate_proj.weight"].T
    up = y @ p[pre + "mlp.up_proj.weight"].T
    return x + (F.silu(gate) * up) @ p[pre + "mlp.down_proj.weight"].T


def hidden_states(p, spec, ids, mask, positions=None):
    """Final normed hidden states [B, T, H]. mask [B, T] is 1 for real tokens; attention is
    causal and never attends to masked keys. positions default to 0..T-1."""
    b, t = ids.shape
    if positions is None:
        positions = torch.arange(t).expand(b, t)
    cos, sin = _rope(spec, positions)
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    allowed = causal[None, None] & mask.bool()[:, None, None, :]
    bias = torch.zeros(b, 1, t, t).masked_fill(~allowed, float("-inf"))
    x = p["model.embed_tokens.weight"][ids]
    for i in range(spec.layers):
        x = _layer(p, spec, i, x, cos, sin, bias)
    return _rms(x, p["model.norm.weight"], spec.eps)


def logits(p, spec, ids, mask, positions=None):
    return hidden_states(p, spec, ids, mask, positions) @ p["lm_head.weight"].T


def rewards(p, spec, ids, mask):
    """Score at each sequence's last real token (sequences right-padded)."""
    h = hidden_states(p, spec, ids, mask)
    last = mask.sum(1) - 1
    return (h[torch.arange(ids.shape[0]), last] @ p["score.weight"].T)[:, 0]


def to_bf16(p):
    """Round every tensor to bfloat16 (nearest even) and back to float32."""
    return {k: v.to(torch.bfloat16).float() for k, v in p.items()}


def write_safetensors(path, tensors, dtype="BF16"):
    """tensors: name -> float tensor, written in `dtype` (BF16 or F32), names sorted."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        if dtype == "BF16":
            raw = t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            raw = t.float().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[a:b], dtype="<u2").astype(np.uint32) << 16
            arr = raw.view(np.float32)
        elif info["dtype"] == "F32":
            arr = np.frombuffer(data[a:b], dtype="<f4")
        else:
            raise ValueError(f"{path}: {name}: dtype {info['dtype']}")
        out[name] = torch.from_numpy(arr.copy()).view(*info["shape"])
    return out


@torch.no_grad()
def generate(p, spec, prompts, eos, max_new, gen, temperature=1.0):
    """Samples answers for lists of prompt ids (left-padded together, KV cache), at
    `temperature` (0: greedy), until eos or max_new tokens. Returns the new ids per prompt,
    without the eos."""
    b = len(prompts)
    t = max(len(x) for x in prompts)
    ids = torch.zeros(b, t, dtype=torch.long)
    mask = torch.zeros(b, t, dtype=torch.long)
    for i, x in enumerate(prompts):
        ids[i, t - len(x):] = torch.tensor(x)
        mask[i, t - len(x):] = 1
    cache = [[None, None] for _ in range(spec.layers)]
    out = [[] for _ in range(b)]
    done = torch.zeros(b, dtype=torch.bool)
    step_ids, step_pos = ids, (mask.cumsum(1) - 1).clamp(min=0)
    for step in range(max_new):
        n = step_ids.shape[1]
        cos, sin = _rope(spec, step_pos)
        total = mask.shape[1]
        # query j (absolute column total - n + j) may see keys up to its own column
        cols = torch.arange(total)
        rows = torch.arange(total - n, total)
        allowed = (cols[None, :] <= rows[:, None])[None, None] & mask.bool()[:, None, None, :]
        bias = torch.zeros(b, 1, n, total).masked_fill(~allowed, float("-inf"))
        x = p["model.embed_tokens.weight"][step_ids]
        for i in range(spec.layers):
            x = _layer(p, spec, i, x, cos, sin, bias, cache[i])
        last = _rms(x[:, -1], p["model.norm.weight"], spec.eps) @ p["lm_head.weight"].T
        if temperature == 0:
            nxt = last.argmax(-1)
        else:
            probs = torch.softmax(last.double() / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=gen)[:, 0]
        for i in range(b):
            if not done[i]:
                if nxt[i].item() == eos:
                    done[i] = True
                else:
                    out[i].append(nxt[i].item())
        if bool(done.all()):
            break
        step_ids = nxt[:, None]
        step_pos = step_pos[:, -1:] + 1
        mask = torch.cat([mask, torch.ones(b, 1, dtype=torch.long)], dim=1)
    return out
