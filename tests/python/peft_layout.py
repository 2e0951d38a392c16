#!/usr/bin/python3
"""Write tiny (or not so tiny) Hugging Face Llama checkpoints and PEFT LoRA adapters with numpy.

No test logic here: tests/python/test_lora_reference.py and benchmarks use it to make inputs.

(a) A Llama checkpoint folder: config.json (LlamaForCausalLM) and model.safetensors with
    model.embed_tokens.weight [V,H], per layer input_layernorm / self_attn.{q,k,v,o}_proj /
    post_attention_layernorm / mlp.{gate,up,down}_proj, model.norm.weight, lm_head.weight.
(b) A PEFT LoRA adapter folder as PEFT's save_pretrained writes it: adapter_config.json and
    adapter_model.safetensors (metadata {"format": "pt"}) with
        base_model.model.<module>.lora_A.weight [r, in]     base_model.model.<module>.lora_B.weight [out, r]
    for a Linear <module> (model tensor <module>.weight [out, in]; with fan_in_fan_out the model
    tensor is stored [in, out]: in = shape[0], out = shape[1]),
        base_model.model.<module>.lora_embedding_A [r, V]   base_model.model.<module>.lora_embedding_B [H, r]
    for an embedding (model tensor [V, H]), and modules_to_save tensors as full tensors under
    base_model.model.<model tensor name>.

Tensors are written one at a time and in row chunks (never two full copies of a big tensor in
memory). Values: Linear/embedding weights ~ N(0, 0.02), norms ~ 1 + N(0, 0.02), lora_A ~ N(0, 0.05),
lora_B ~ N(0, 0.01) (nonzero), modules_to_save = the model's tensor + N(0, 0.002). Each tensor
has its own random stream (seed, crc32 of its name), so the values do not depend on the order
or on which other tensors are written. BF16 values are float32 samples rounded to nearest even.

CLI:
  python3 tests/python/peft_layout.py model OUT_DIR [--hidden 2048 --layers 16 --intermediate N
          --heads N --kv-heads N --vocab N --dtype bf16|f16|f32 --seed N --transpose q_proj,...]
  python3 tests/python/peft_layout.py adapter OUT_DIR --model MODEL_DIR [--rank 16 --lora-alpha 32
          --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --dtype bf16|f16|f32
          --rank-pattern 'down_proj=4,layers.1.self_attn.q_proj=2' --alpha-pattern 'down_proj=8'
          --rslora --fan-in-fan-out --modules-to-save lm_head --seed N --base-model-name NAME]
"""

import argparse
import json
import re
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

# ----------------------------------------------------------------------------------------------
# dtypes and safetensors
# ----------------------------------------------------------------------------------------------

DTYPE_NAMES = {"bf16": "BF16", "f16": "F16", "f32": "F32", "f64": "F64",
               "bfloat16": "BF16", "float16": "F16", "float32": "F32", "float64": "F64"}
TORCH_DTYPE = {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64"}
ITEMSIZE = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8}
CHUNK_ELEMENTS = 1 << 22   # elements generated / converted at a time


def st_dtype(dtype):
    """'bf16' / 'BF16' / 'bfloat16' -> safetensors dtype name."""
    if dtype.upper() in ITEMSIZE:
        return dtype.upper()
    return DTYPE_NAMES[dtype.lower()]


def to_raw(dtype, x):
    """Float array -> little-endian bytes of dtype (bf16: from float32, round to nearest even)."""
    if dtype == "BF16":
        b = np.asarray(x, dtype=np.float32).view(np.uint32)
        # round to nearest even on the upper 16 bits (inputs here are finite)
        b = (b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
        return b.astype("<u2").tobytes()
    np_dt = {"F16": "<f2", "F32": "<f4", "F64": "<f8"}[dtype]
    return np.asarray(x).astype(np_dt).tobytes()


def from_raw(dtype, buf):
    """Little-endian bytes (or uint8 array) of dtype -> float64 array."""
    if dtype == "BF16":
        u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << np.uint32(16)
        return u.view(np.float32).astype(np.float64)
    np_dt = {"F16": "<f2", "F32": "<f4", "F64": "<f8"}[dtype]
    return np.frombuffer(buf, dtype=np_dt).astype(np.float64)


class Source:
    """One tensor to write: name, safetensors dtype, shape, and rows(start, stop) -> float array
    of rows [start, stop) (the first dimension), or a whole array."""

    def __init__(self, name, dtype, shape, rows):
        self.name, self.dtype, self.shape = name, st_dtype(dtype), [int(d) for d in shape]
        self._rows = rows

    def nbytes(self):
        return int(np.prod(self.shape, dtype=np.int64)) * ITEMSIZE[self.dtype]

    def chunks(self):
        if not callable(self._rows):
            yield to_raw(self.dtype, np.asarray(self._rows).reshape(-1))
            return
        n_rows = self.shape[0] if self.shape else 1
        row = int(np.prod(self.shape[1:], dtype=np.int64)) if len(self.shape) > 1 else 1
        step = max(1, CHUNK_ELEMENTS // max(1, row))
        for start in range(0, n_rows, step):
            stop = min(n_rows, start + step)
            yield to_raw(self.dtype, np.asarray(self._rows(start, stop)).reshape(-1))


def write_safetensors(path, sources, metadata=None):
    """Write Source objects to path, streaming: the header first, then one chunk at a time."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for s in sources:
        header[s.name] = {"dtype": s.dtype, "shape": s.shape,
                          "data_offsets": [offset, offset + s.nbytes()]}
        offset += s.nbytes()
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((-len(hb)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for s in sources:
            written = 0
            for c in s.chunks():
                f.write(c)
                written += len(c)
            if written != s.nbytes():
                raise RuntimeError(f"{s.name}: wrote {written} bytes, expected {s.nbytes()}")


def read_header(path):
    """-> (dict name -> {"dtype", "shape", "data_offsets"}, metadata, data start offset)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    meta = header.pop("__metadata__", None)
    return header, meta, 8 + n


def checkpoint_files(model):
    """A model folder (model.safetensors or a sharded index) or a lone .safetensors file ->
    list of safetensors files."""
    model = Path(model)
    if model.is_file():
        return [model]
    index = model / "model.safetensors.index.json"
    if index.exists():
        wm = json.loads(index.read_text())["weight_map"]
        return [model / f for f in sorted(set(wm.values()))]
    return [model / "model.safetensors"]


def model_tensors(model):
    """-> dict name -> (dtype, shape, file, absolute byte offset), in file / offset order."""
    out = {}
    for fn in checkpoint_files(model):
        header, _, base = read_header(fn)
        for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            out[name] = (e["dtype"], list(e["shape"]), fn, base + e["data_offsets"][0])
    return out


def tensor_rows(entry, start, stop):
    """Rows [start, stop) of a model tensor (from model_tensors) as float64."""
    dtype, shape, fn, off = entry
    row = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    isz = ITEMSIZE[dtype]
    with open(fn, "rb") as f:
        f.seek(off + start * row * isz)
        buf = f.read((stop - start) * row * isz)
    return from_raw(dtype, buf).reshape([stop - start] + list(shape[1:]))


def rng_for(seed, name):
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def normal_rows(seed, name, shape, std, mean=0.0, dtype="F32"):
    """rows(start, stop) for a tensor of i.i.d. N(mean, std). Deterministic for a given shape
    (rows are drawn in a fixed chunking, in order; calls must come in increasing order)."""
    row = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    state = {"rng": None, "next": 0}
    gen_dt = np.float64 if dtype == "F64" else np.float32

    def rows(start, stop):
        if state["rng"] is None or start != state["next"]:
            if start != 0:
                raise RuntimeError("normal_rows: rows must be requested in order from 0")
            state["rng"] = rng_for(seed, name)
        state["next"] = stop
        x = state["rng"].standard_normal((stop - start) * row, dtype=gen_dt)
        x *= gen_dt(std)
        if mean:
            x += gen_dt(mean)
        return x.reshape([stop - start] + list(shape[1:]))

    return rows


# ----------------------------------------------------------------------------------------------
# (a) Llama checkpoint
# ----------------------------------------------------------------------------------------------

LINEAR_SHORT = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def llama_config(hidden=64, intermediate=None, layers=2, heads=None, kv_heads=None, vocab=320,
                 dtype="bf16", rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=2048):
    intermediate = intermediate or 4 * hidden
    heads = heads or max(1, hidden // 64)
    kv_heads = kv_heads or max(1, heads // 4)
    if hidden % heads or heads % kv_heads:
        raise ValueError(f"hidden {hidden}, heads {heads}, kv_heads {kv_heads}: need "
                         "hidden % heads == 0 and heads % kv_heads == 0")
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": hidden // heads,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "max_position_embeddings": max_position_embeddings,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "pretraining_tp": 1,
        "rms_norm_eps": rms_norm_eps,
        "rope_scaling": None,
        "rope_theta": rope_theta,
        "tie_word_embeddings": False,
        "torch_dtype": TORCH_DTYPE[st_dtype(dtype)],
        "transformers_version": "4.44.0",
        "use_cache": True,
        "vocab_size": vocab,
    }


def llama_shapes(cfg, transpose=()):
    """[(name, shape)] of a Llama checkpoint in Hugging Face order. transpose: short names
    (e.g. "q_proj") of Linear weights to store as [in, out] (a fan_in_fan_out layout)."""
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * hd
    lin = {"q_proj": ("self_attn", [H, H]), "k_proj": ("self_attn", [kv, H]),
           "v_proj": ("self_attn", [kv, H]), "o_proj": ("self_attn", [H, H]),
           "gate_proj": ("mlp", [I, H]), "up_proj": ("mlp", [I, H]), "down_proj": ("mlp", [H, I])}
    out = [("model.embed_tokens.weight", [V, H])]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out.append((p + "input_layernorm.weight", [H]))
        for short in LINEAR_SHORT:
            group, shape = lin[short]
            out.append((f"{p}{group}.{short}.weight", shape[::-1] if short in transpose else shape))
        out.append((p + "post_attention_layernorm.weight", [H]))
    out.append(("model.norm.weight", [H]))
    out.append(("lm_head.weight", [V, H]))
    return out


def write_model(out_dir, hidden=64, intermediate=None, layers=2, heads=None, kv_heads=None,
                vocab=320, dtype="bf16", seed=0, transpose=(), std=0.02, config_extra=None):
    """Write a Llama checkpoint folder (config.json + model.safetensors). -> its Path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = llama_config(hidden, intermediate, layers, heads, kv_heads, vocab, dtype)
    cfg.update(config_extra or {})
    dt = st_dtype(dtype)
    sources = []
    for name, shape in llama_shapes(cfg, transpose):
        if name.endswith("norm.weight"):
            rows = normal_rows(seed, name, shape, std, mean=1.0, dtype=dt)
        else:
            rows = normal_rows(seed, name, shape, std, dtype=dt)
        sources.append(Source(name, dt, shape, rows))
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    write_safetensors(out_dir / "model.safetensors", sources, {"format": "pt"})
    return out_dir


# ----------------------------------------------------------------------------------------------
# (b) PEFT LoRA adapter
# ----------------------------------------------------------------------------------------------

PREFIX = "base_model.model."


def pattern_value(patterns, module, default):
    """PEFT's rank_pattern / alpha_pattern rule: the first key k (in order) with
    re.fullmatch(rf"(.*\\.)?({k})", module) gives the value."""
    for k, v in (patterns or {}).items():
        if re.fullmatch(rf"(.*\.)?({k})", module):
            return v
    return default


def module_matches(module, key):
    """PEFT's target_modules / modules_to_save rule for a list entry: the module's name is the
    key or ends with "." + key."""
    return module == key or module.endswith("." + key)


def is_embedding(module):
    return module.split(".")[-1] in ("embed_tokens", "wte", "word_embeddings", "embed_in")


def lora_modules(model, targets, rank, rank_pattern=None, fan_in_fan_out=False):
    """-> {module: {"rank", "in", "out", "embedding", "weight": (dtype, shape)}} for the 2-D
    .weight tensors of model whose module matches one of targets (in checkpoint order)."""
    tensors = model_tensors(model) if not isinstance(model, dict) else model
    mods = {}
    for name, (dtype, shape, *_rest) in tensors.items():
        if not name.endswith(".weight") or len(shape) != 2:
            continue
        module = name[: -len(".weight")]
        if not any(module_matches(module, t) for t in targets):
            continue
        emb = is_embedding(module)
        transposed = emb or fan_in_fan_out
        n_in, n_out = (shape[0], shape[1]) if transposed else (shape[1], shape[0])
        mods[module] = {"rank": int(pattern_value(rank_pattern, module, rank)), "in": n_in,
                        "out": n_out, "embedding": emb, "weight": (dtype, shape)}
    return mods


def peft_config(rank=8, lora_alpha=16, targets=("q_proj", "v_proj"), rank_pattern=None,
                alpha_pattern=None, use_rslora=False, fan_in_fan_out=False, modules_to_save=None,
                base_model_name_or_path=None, use_dora=False, lora_dropout=0.05):
    """adapter_config.json as PEFT (0.12-0.13) writes it."""
    return {
        "alpha_pattern": dict(alpha_pattern or {}),
        "auto_mapping": None,
        "base_model_name_or_path": base_model_name_or_path,
        "bias": "none",
        "fan_in_fan_out": bool(fan_in_fan_out),
        "inference_mode": True,
        "init_lora_weights": True,
        "layer_replication": None,
        "layers_pattern": None,
        "layers_to_transform": None,
        "loftq_config": {},
        "lora_alpha": lora_alpha,
        "lora_dropout": lora_dropout,
        "megatron_config": None,
        "megatron_core": "megatron.core",
        "modules_to_save": list(modules_to_save) if modules_to_save else None,
        "peft_type": "LORA",
        "r": rank,
        "rank_pattern": dict(rank_pattern or {}),
        "revision": None,
        "target_modules": list(targets),
        "task_type": "CAUSAL_LM",
        "use_dora": bool(use_dora),
        "use_rslora": bool(use_rslora),
    }


def write_adapter(out_dir, model, rank=8, lora_alpha=16, targets=("q_proj", "v_proj"),
                  dtype="bf16", rank_pattern=None, alpha_pattern=None, use_rslora=False,
                  fan_in_fan_out=False, modules_to_save=None, mts_dtype=None, seed=1,
                  base_model_name_or_path=None, a_std=0.05, b_std=0.01, mts_std=0.002,
                  config_extra=None):
    """Write a PEFT LoRA adapter folder for the checkpoint at model. -> (Path, config dict, modules).

    targets: target_modules entries (short names like "q_proj", or "embed_tokens" for an
    embedding LoRA). rank_pattern / alpha_pattern: {pattern: value} in the order to write.
    modules_to_save: module names (e.g. ["lm_head"]) whose tensors are stored in full: the
    model's tensor + N(0, mts_std), in mts_dtype (default: the model tensor's dtype).
    config_extra: keys to add to / replace in adapter_config.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = model_tensors(model)
    dt = st_dtype(dtype)
    mods = lora_modules(tensors, targets, rank, rank_pattern, fan_in_fan_out)
    if not mods:
        raise ValueError(f"no module of {model} matches target_modules {list(targets)}")
    sources = []
    for module, m in mods.items():
        r = m["rank"]
        if m["embedding"]:
            ka, kb = PREFIX + module + ".lora_embedding_A", PREFIX + module + ".lora_embedding_B"
        else:
            ka, kb = PREFIX + module + ".lora_A.weight", PREFIX + module + ".lora_B.weight"
        sources.append(Source(ka, dt, [r, m["in"]], normal_rows(seed, ka, [r, m["in"]], a_std, dtype=dt)))
        sources.append(Source(kb, dt, [m["out"], r], normal_rows(seed, kb, [m["out"], r], b_std, dtype=dt)))
    for key in modules_to_save or ():
        names = [n for n in tensors if "." in n and module_matches(n.rsplit(".", 1)[0], key)]
        if not names:
            raise ValueError(f"modules_to_save {key!r}: no tensor of {model} belongs to it")
        for name in names:
            entry = tensors[name]
            mdt = st_dtype(mts_dtype) if mts_dtype else entry[0]
            shape = entry[1]
            noise = normal_rows(seed, PREFIX + name, shape, mts_std, dtype="F64")

            def rows(start, stop, entry=entry, noise=noise):
                return tensor_rows(entry, start, stop) + noise(start, stop)

            sources.append(Source(PREFIX + name, mdt, shape, rows))
    cfg = peft_config(rank, lora_alpha, targets, rank_pattern, alpha_pattern, use_rslora,
                      fan_in_fan_out, modules_to_save,
                      base_model_name_or_path if base_model_name_or_path is not None else str(model))
    cfg.update(config_extra or {})
    write_adapter_config(out_dir, cfg)
    write_safetensors(out_dir / "adapter_model.safetensors", sources, {"format": "pt"})
    return out_dir, cfg, mods


def write_adapter_config(out_dir, cfg):
    """PEFT writes json.dumps(indent=2, sort_keys=True); the top-level keys are sorted here too,
    but the pattern dicts keep the order they were given in (so a test can choose it)."""
    ordered = {k: cfg[k] for k in sorted(cfg)}
    (Path(out_dir) / "adapter_config.json").write_text(json.dumps(ordered, indent=2))


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------

def parse_patterns(text, cast):
    out = {}
    for item in filter(None, (text or "").split(",")):
        k, _, v = item.rpartition("=")
        if not k:
            raise SystemExit(f"pattern {item!r} is not PATTERN=VALUE")
        out[k] = cast(v)
    return out


def number(text):
    v = float(text)
    return int(v) if v.is_integer() and "." not in text and "e" not in text.lower() else v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    m = sub.add_parser("model", help="write a Llama checkpoint folder")
    m.add_argument("out")
    m.add_argument("--hidden", type=int, default=64)
    m.add_argument("--intermediate", type=int, default=None, help="default: 4 * hidden")
    m.add_argument("--layers", type=int, default=2)
    m.add_argument("--heads", type=int, default=None, help="default: hidden / 64")
    m.add_argument("--kv-heads", type=int, default=None, help="default: heads / 4")
    m.add_argument("--vocab", type=int, default=32000)
    m.add_argument("--dtype", default="bf16")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--transpose", default="", help="Linear short names stored [in, out]")
    a = sub.add_parser("adapter", help="write a PEFT LoRA adapter folder for a model")
    a.add_argument("out")
    a.add_argument("--model", required=True)
    a.add_argument("--rank", type=int, default=16)
    a.add_argument("--lora-alpha", type=number, default=None, help="default: 2 * rank")
    a.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    a.add_argument("--dtype", default="bf16")
    a.add_argument("--rank-pattern", default="")
    a.add_argument("--alpha-pattern", default="")
    a.add_argument("--rslora", action="store_true")
    a.add_argument("--fan-in-fan-out", action="store_true")
    a.add_argument("--modules-to-save", default="")
    a.add_argument("--mts-dtype", default=None)
    a.add_argument("--seed", type=int, default=1)
    a.add_argument("--base-model-name", default=None, help="default: the --model path")
    args = ap.parse_args(argv)
    if args.what == "model":
        p = write_model(args.out, args.hidden, args.intermediate, args.layers, args.heads,
                        args.kv_heads, args.vocab, args.dtype, args.seed,
                        tuple(filter(None, args.transpose.split(","))))
        print(p)
    else:
        mts = list(filter(None, args.modules_to_save.split(","))) or None
        p, _, mods = write_adapter(
            args.out, args.model, args.rank,
            args.lora_alpha if args.lora_alpha is not None else 2 * args.rank,
            list(filter(None, args.targets.split(","))), args.dtype,
            parse_patterns(args.rank_pattern, int), parse_patterns(args.alpha_pattern, number),
            args.rslora, args.fan_in_fan_out, mts, args.mts_dtype, args.seed,
            args.base_model_name)
        print(f"{p} ({len(mods)} LoRA modules)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
