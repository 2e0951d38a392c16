#!/usr/bin/python3
"""Writes one synthetic Llama, Gemma 2 or Mixtral model (random weights) for benchmarking the engine.

    /usr/bin/python3 bench/make_model.py --out bench/work/llama-0.5b-bf16 --dtype bf16
    /usr/bin/python3 bench/make_model.py --arch gemma2 --out bench/work/gemma2-1b-bf16
    /usr/bin/python3 bench/make_model.py --arch mixtral --out bench/work/mixtral-1b-active-bf16

--perturb S adds normal(0, S) noise (from --perturb-seed) to the same weights: an "aligned"
model next to the "SFT" one of the same --seed. --reward writes a reward model
(LlamaForSequenceClassification, one label: score.weight instead of lm_head.weight).

Default shape: about 0.49B parameters (hidden 1024, 28 layers, intermediate 4096, 16 heads,
4 KV heads, vocab 32000, untied head). Weights are normal(0, 0.02), norms near 1, written a
chunk at a time from a random pool (seconds per GB, tens of MB of memory).

--arch gemma2 (Gemma2ForCausalLM) defaults to a Gemma-2-shaped ~1.0B: hidden 1536, 16 layers,
intermediate 6144, 8 heads / 4 KV heads of head_dim 256 (query_pre_attn_scalar 256), Gemma's
real vocab of 256000 with the embedding tied to the head (0.39B of the 1.0B parameters), GELU
(tanh), the four norms per layer (stored as w, used as 1 + w: near 0 here), soft-capping 50 on
attention scores and 30 on logits, every other layer a 4096-token sliding window.
--arch mixtral (MixtralForCausalLM) defaults to 8 experts, 2 per token: hidden 2048, 16
layers, expert intermediate 3584, 32 heads / 8 KV heads, vocab 32000, untied head: 3.1B
parameters in all, 1.0B active per token (embedding and head counted). The router weights
are random normal(0, 0.02) like the others, so the router's logits are small and tokens spread
over all experts. Every explicit --hidden etc. overrides the architecture's default.
Needs numpy (Debian's /usr/bin/python3 with python3-numpy).
"""

import argparse
import json
import os
import struct
import sys
import time

import numpy as np

POOL = 1 << 22


ARCHS = {
    "llama": dict(hidden=1024, intermediate=4096, layers=28, heads=16, kv_heads=4, vocab=32000,
                  head_dim=None, experts=0, experts_per_tok=0),
    "gemma2": dict(hidden=1536, intermediate=6144, layers=16, heads=8, kv_heads=4, vocab=256000,
                   head_dim=256, experts=0, experts_per_tok=0),
    "mixtral": dict(hidden=2048, intermediate=3584, layers=16, heads=32, kv_heads=8, vocab=32000,
                    head_dim=None, experts=8, experts_per_tok=2),
}


def gemma2_tensors(a):
    q, kv = a.heads * a.head_dim, a.kv_heads * a.head_dim
    out = [("model.embed_tokens.weight", [a.vocab, a.hidden])]
    for i in range(a.layers):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", [a.hidden]),
            (p + "self_attn.q_proj.weight", [q, a.hidden]),
            (p + "self_attn.k_proj.weight", [kv, a.hidden]),
            (p + "self_attn.v_proj.weight", [kv, a.hidden]),
            (p + "self_attn.o_proj.weight", [a.hidden, q]),
            (p + "post_attention_layernorm.weight", [a.hidden]),
            (p + "pre_feedforward_layernorm.weight", [a.hidden]),
            (p + "mlp.gate_proj.weight", [a.intermediate, a.hidden]),
            (p + "mlp.up_proj.weight", [a.intermediate, a.hidden]),
            (p + "mlp.down_proj.weight", [a.hidden, a.intermediate]),
            (p + "post_feedforward_layernorm.weight", [a.hidden]),
        ]
    out += [("model.norm.weight", [a.hidden])]
    if a.reward:
        out += [("score.weight", [1, a.hidden])]
    return out


def mixtral_tensors(a):
    kv = a.kv_heads * (a.hidden // a.heads)
    out = [("model.embed_tokens.weight", [a.vocab, a.hidden])]
    for i in range(a.layers):
        p = f"model.layers.{i}."
        m = p + "block_sparse_moe."
        out += [
            (p + "input_layernorm.weight", [a.hidden]),
            (p + "self_attn.q_proj.weight", [a.hidden, a.hidden]),
            (p + "self_attn.k_proj.weight", [kv, a.hidden]),
            (p + "self_attn.v_proj.weight", [kv, a.hidden]),
            (p + "self_attn.o_proj.weight", [a.hidden, a.hidden]),
            (p + "post_attention_layernorm.weight", [a.hidden]),
            (m + "gate.weight", [a.experts, a.hidden]),
        ]
        for e in range(a.experts):
            x = f"{m}experts.{e}."
            out += [
                (x + "w1.weight", [a.intermediate, a.hidden]),
                (x + "w2.weight", [a.hidden, a.intermediate]),
                (x + "w3.weight", [a.intermediate, a.hidden]),
            ]
    out += [("model.norm.weight", [a.hidden])]
    out += [("score.weight", [1, a.hidden])] if a.reward else [("lm_head.weight", [a.vocab, a.hidden])]
    return out


def active_params(a, ts):
    """Parameters one token's forward pass uses: all but the experts it is not routed to."""
    total = sum(int(np.prod(s)) for _, s in ts)
    if not a.experts:
        return total
    expert = 3 * a.hidden * a.intermediate
    return total - a.layers * (a.experts - a.experts_per_tok) * expert


def tensors(a):
    if a.arch == "gemma2":
        return gemma2_tensors(a)
    if a.arch == "mixtral":
        return mixtral_tensors(a)
    kv = a.kv_heads * (a.hidden // a.heads)
    out = [("model.embed_tokens.weight", [a.vocab, a.hidden])]
    for i in range(a.layers):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", [a.hidden]),
            (p + "self_attn.q_proj.weight", [a.hidden, a.hidden]),
            (p + "self_attn.k_proj.weight", [kv, a.hidden]),
            (p + "self_attn.v_proj.weight", [kv, a.hidden]),
            (p + "self_attn.o_proj.weight", [a.hidden, a.hidden]),
            (p + "post_attention_layernorm.weight", [a.hidden]),
            (p + "mlp.gate_proj.weight", [a.intermediate, a.hidden]),
            (p + "mlp.up_proj.weight", [a.intermediate, a.hidden]),
            (p + "mlp.down_proj.weight", [a.hidden, a.intermediate]),
        ]
    out += [("model.norm.weight", [a.hidden])]
    out += [("score.weight", [1, a.hidden])] if a.reward else [("lm_head.weight", [a.vocab, a.hidden])]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", choices=sorted(ARCHS), default="llama")
    ap.add_argument("--dtype", choices=["bf16", "f32", "f16"], default="bf16")
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--intermediate", type=int, help="per expert for mixtral")
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--kv-heads", type=int)
    ap.add_argument("--head-dim", type=int, help="gemma2 only")
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--experts", type=int, help="mixtral only")
    ap.add_argument("--experts-per-tok", type=int, help="mixtral only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--perturb", type=float, default=0.0)
    ap.add_argument("--perturb-seed", type=int, default=1)
    ap.add_argument("--reward", action="store_true")
    ap.add_argument("--bos", type=int, default=1)
    ap.add_argument("--eos", type=int, default=2)
    a = ap.parse_args()
    for k, v in ARCHS[a.arch].items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.arch != "gemma2":
        a.head_dim = None
    if a.arch != "mixtral":
        a.experts = a.experts_per_tok = 0
    if a.reward and a.arch == "mixtral":
        ap.error("--reward is for llama and gemma2")
    t0 = time.time()
    rng = np.random.default_rng(a.seed)
    weights = (rng.standard_normal(2 * POOL, dtype=np.float32) * np.float32(0.02))
    norms = np.float32(1.0) + rng.standard_normal(2 * POOL, dtype=np.float32) * np.float32(0.05)
    if a.perturb:
        noise = np.random.default_rng(a.perturb_seed)
        weights += noise.standard_normal(2 * POOL, dtype=np.float32) * np.float32(a.perturb)
        norms += noise.standard_normal(2 * POOL, dtype=np.float32) * np.float32(a.perturb)
    if a.dtype == "bf16":
        def enc(x):
            u = x.view(np.uint32)
            return ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)
        st, size = "BF16", 2
    elif a.dtype == "f16":
        enc, st, size = (lambda x: x.astype(np.float16)), "F16", 2
    else:
        enc, st, size = (lambda x: x), "F32", 4
    # Gemma keeps norm weights as w and uses 1 + w: near 0 there, so 1 + w is near 1.
    pools = {False: enc(weights), True: enc(norms - np.float32(1.0) if a.arch == "gemma2" else norms)}

    ts = tensors(a)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in ts:
        n = int(np.prod(shape)) * size
        header[name] = {"dtype": st, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for name, shape in ts:
            pool = pools[name.endswith("norm.weight")]
            left = int(np.prod(shape))
            while left:
                n = min(left, POOL)
                o = int(rng.integers(0, POOL))
                f.write(pool[o:o + n].tobytes())
                left -= n
    torch_dtype = {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[a.dtype]
    if a.arch == "gemma2":
        config = {
            "architectures": ["Gemma2ForSequenceClassification" if a.reward else "Gemma2ForCausalLM"],
            "model_type": "gemma2",
            "hidden_size": a.hidden, "intermediate_size": a.intermediate,
            "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
            "num_key_value_heads": a.kv_heads, "head_dim": a.head_dim, "vocab_size": a.vocab,
            "max_position_embeddings": 8192, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
            "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh",
            "query_pre_attn_scalar": a.head_dim, "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0, "sliding_window": 4096,
            "attention_bias": False, "tie_word_embeddings": True, "torch_dtype": torch_dtype,
            "bos_token_id": a.bos, "eos_token_id": a.eos, "pad_token_id": 0,
        }
    elif a.arch == "mixtral":
        config = {
            "architectures": ["MixtralForCausalLM"],
            "model_type": "mixtral",
            "hidden_size": a.hidden, "intermediate_size": a.intermediate,
            "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
            "num_key_value_heads": a.kv_heads, "vocab_size": a.vocab,
            "num_local_experts": a.experts, "num_experts_per_tok": a.experts_per_tok,
            "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "rope_theta": 1000000.0,
            "hidden_act": "silu", "sliding_window": None, "tie_word_embeddings": False,
            "torch_dtype": torch_dtype, "bos_token_id": a.bos, "eos_token_id": a.eos,
        }
    else:
        config = {
            "architectures": ["LlamaForSequenceClassification" if a.reward else "LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": a.hidden, "intermediate_size": a.intermediate,
            "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
            "num_key_value_heads": a.kv_heads, "vocab_size": a.vocab,
            "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "hidden_act": "silu", "tie_word_embeddings": False,
            "torch_dtype": torch_dtype,
            "bos_token_id": a.bos, "eos_token_id": a.eos,
        }
    if a.reward:
        config.update(num_labels=1, id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0}, pad_token_id=a.eos)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    params = sum(int(np.prod(s)) for _, s in ts)
    active = active_params(a, ts)
    extra = f" ({active / 1e9:.3f}B active per token: {a.experts_per_tok} of {a.experts} experts)" if a.experts else ""
    print(f"wrote {a.out}: {a.arch}, {params / 1e9:.3f}B parameters{extra}, {offset / 1e9:.2f} GB {st}, "
          f"{time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
