#!/usr/bin/python3
"""Writes one synthetic Llama model (random weights) for benchmarking the engine.

    /usr/bin/python3 bench/make_model.py --out bench/work/llama-0.5b-bf16 --dtype bf16

--perturb S adds normal(0, S) noise (from --perturb-seed) to the same weights: an "aligned"
model next to the "SFT" one of the same --seed. --reward writes a reward model
(LlamaForSequenceClassification, one label: score.weight instead of lm_head.weight).

Default shape: about 0.49B parameters (hidden 1024, 28 layers, intermediate 4096, 16 heads,
4 KV heads, vocab 32000, untied head). Weights are normal(0, 0.02), norms near 1, written a
chunk at a time from a random pool (seconds per GB, tens of MB of memory).
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


def tensors(a):
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
    ap.add_argument("--dtype", choices=["bf16", "f32", "f16"], default="bf16")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--intermediate", type=int, default=4096)
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--perturb", type=float, default=0.0)
    ap.add_argument("--perturb-seed", type=int, default=1)
    ap.add_argument("--reward", action="store_true")
    ap.add_argument("--bos", type=int, default=1)
    ap.add_argument("--eos", type=int, default=2)
    a = ap.parse_args()
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
    pools = {False: enc(weights), True: enc(norms)}

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
    config = {
        "architectures": ["LlamaForSequenceClassification" if a.reward else "LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": a.hidden, "intermediate_size": a.intermediate,
        "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads, "vocab_size": a.vocab,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "hidden_act": "silu", "tie_word_embeddings": False,
        "torch_dtype": {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[a.dtype],
        "bos_token_id": a.bos, "eos_token_id": a.eos,
    }
    if a.reward:
        config.update(num_labels=1, id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0}, pad_token_id=a.eos)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    params = sum(int(np.prod(s)) for _, s in ts)
    print(f"wrote {a.out}: {params / 1e9:.3f}B parameters, {offset / 1e9:.2f} GB {st}, "
          f"{time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
