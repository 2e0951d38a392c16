#!/usr/bin/python3
"""Writes a synthetic SFT/aligned pair of a Llama-shaped BF16 model for benchmarking expo.

    /usr/bin/python3 bench/make_pair.py --out bench/work/pair-2 --size-gb 2 --shard-gb 0.5

Creates OUT/sft and OUT/aligned, each a sharded Hugging Face folder (model-0000i-of-0000n
.safetensors, model.safetensors.index.json, config.json) holding the same tensor names and
shapes. sft holds random BF16 weights (normal, std 0.02; norms near 1); aligned = sft plus
a few BF16 ulps of noise, so every tensor is really extrapolated. The data is made from a
small pool of random values sliced at random offsets, so 2 GB per model takes seconds, and
it is written a chunk at a time (memory stays at a few tens of MB whatever the size).

Needs numpy: Debian's /usr/bin/python3 with python3-numpy.
GB here means 10^9 bytes. The layer count is chosen so one model is close to --size-gb.
"""

import argparse
import json
import os
import struct
import sys
import time

import numpy as np

HIDDEN = 2048
INTERMEDIATE = 5632
VOCAB = 32000
HEADS = 32
KV_HEADS = 4
HEAD_DIM = HIDDEN // HEADS
KV_DIM = KV_HEADS * HEAD_DIM
BF16_BYTES = 2

POOL = 1 << 22  # elements per random pool (8 MB of BF16)
CHUNK = 1 << 22  # elements written per step


def layer_tensors(i):
    p = f"model.layers.{i}."
    return [
        (p + "input_layernorm.weight", [HIDDEN]),
        (p + "self_attn.q_proj.weight", [HIDDEN, HIDDEN]),
        (p + "self_attn.k_proj.weight", [KV_DIM, HIDDEN]),
        (p + "self_attn.v_proj.weight", [KV_DIM, HIDDEN]),
        (p + "self_attn.o_proj.weight", [HIDDEN, HIDDEN]),
        (p + "post_attention_layernorm.weight", [HIDDEN]),
        (p + "mlp.gate_proj.weight", [INTERMEDIATE, HIDDEN]),
        (p + "mlp.up_proj.weight", [INTERMEDIATE, HIDDEN]),
        (p + "mlp.down_proj.weight", [HIDDEN, INTERMEDIATE]),
    ]


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def model_tensors(size_bytes):
    head = [("model.embed_tokens.weight", [VOCAB, HIDDEN])]
    tail = [("model.norm.weight", [HIDDEN]), ("lm_head.weight", [VOCAB, HIDDEN])]
    fixed = sum(numel(s) for _, s in head + tail) * BF16_BYTES
    per_layer = sum(numel(s) for _, s in layer_tensors(0)) * BF16_BYTES
    layers = max(1, round((size_bytes - fixed) / per_layer))
    tensors = list(head)
    for i in range(layers):
        tensors += layer_tensors(i)
    return tensors + tail, layers


def plan_shards(tensors, shard_bytes):
    shards, current, current_bytes = [], [], 0
    for name, shape in tensors:
        size = numel(shape) * BF16_BYTES
        if current and current_bytes + size > shard_bytes:
            shards.append(current)
            current, current_bytes = [], 0
        current.append((name, shape))
        current_bytes += size
    if current:
        shards.append(current)
    return shards


def header_bytes(tensors):
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors:
        size = numel(shape) * BF16_BYTES
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text


def bf16_bits(values_f32):
    """Round-to-nearest-even float32 -> BF16 bit patterns (finite inputs only)."""
    u = values_f32.astype(np.float32).view(np.uint32)
    rounded = u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype(np.uint16)


class Pools:
    def __init__(self, rng):
        weights = rng.standard_normal(2 * POOL, dtype=np.float32) * np.float32(0.02)
        # No zeros or subnormals: keep |w| >= 1e-6 so "aligned = sft + ulps" never crosses 0.
        weights = np.where(np.abs(weights) < 1e-6, np.float32(1e-6), weights)
        self.weights = bf16_bits(weights)
        norms = np.float32(1.0) + rng.standard_normal(2 * POOL, dtype=np.float32) * np.float32(0.05)
        self.norms = bf16_bits(norms)
        # Aligned = sft moved by -2..+2 BF16 ulps (the bit patterns of same-sign finite BF16
        # values are ordered, so adding a small integer moves the value by that many ulps).
        self.noise = rng.integers(-2, 3, size=2 * POOL, dtype=np.int16).view(np.uint16)
        self.rng = rng

    def chunk(self, is_norm, count):
        source = self.norms if is_norm else self.weights
        o = int(self.rng.integers(0, POOL))
        o2 = int(self.rng.integers(0, POOL))
        sft = source[o:o + count]
        aligned = sft + self.noise[o2:o2 + count]  # uint16 wraps like int16 addition
        return sft, aligned


def write_shard(pools, tensors, sft_path, aligned_path):
    head = header_bytes(tensors)
    with open(sft_path, "wb") as fs, open(aligned_path, "wb") as fa:
        fs.write(head)
        fa.write(head)
        for name, shape in tensors:
            is_norm = name.endswith("norm.weight")
            left = numel(shape)
            while left > 0:
                n = min(CHUNK, left, POOL)
                sft, aligned = pools.chunk(is_norm, n)
                fs.write(sft.tobytes())
                fa.write(aligned.tobytes())
                left -= n


def config(layers):
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": layers,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "vocab_size": VOCAB,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": 1,
        "eos_token_id": 2,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder to create; gets sft/ and aligned/")
    ap.add_argument("--size-gb", type=float, default=2.0, help="size of ONE model (10^9 bytes)")
    ap.add_argument("--shard-gb", type=float, default=0.5, help="largest shard (10^9 bytes)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.time()
    tensors, layers = model_tensors(args.size_gb * 1e9)
    shards = plan_shards(tensors, args.shard_gb * 1e9)
    total = sum(numel(s) for _, s in tensors) * BF16_BYTES
    pools = Pools(np.random.default_rng(args.seed))

    dirs = {k: os.path.join(args.out, k) for k in ("sft", "aligned")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    weight_map = {}
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        write_shard(pools, shard, os.path.join(dirs["sft"], fname),
                    os.path.join(dirs["aligned"], fname))
        for name, _ in shard:
            weight_map[name] = fname
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    for d in dirs.values():
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=2)
            f.write("\n")
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config(layers), f, indent=2)
            f.write("\n")
    print(f"wrote {args.out}/{{sft,aligned}}: {layers} layers, {len(tensors)} tensors, "
          f"{total / 1e9:.2f} GB per model in {len(shards)} shards, "
          f"{time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
