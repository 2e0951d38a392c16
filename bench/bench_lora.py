#!/usr/bin/python3
"""Helper of bench/bench_lora.sh: sizes of the inputs, and a numpy check of expo's outputs.

  bench_lora.py info SFT_DIR ADAPTER_DIR
      -> "PARAMS MODEL_BYTES ADAPTER_BYTES"
  bench_lora.py verify-full SFT_DIR ADAPTER_DIR OUT_DIR ALPHA
      every SFT tensor is in OUT with its shape and dtype; layer 0 q_proj (adapted) is
      W + (1 + alpha) * s * (B @ A) rounded once to bf16, within 1 bf16 ulp; layer 0
      input_layernorm and embed_tokens (untouched) are bit-identical to the SFT's.
  bench_lora.py verify-adapter ADAPTER_DIR OUT_DIR ALPHA
      same tensor names and shapes; layer 0 q_proj lora_B = (1 + alpha) * B within 1 bf16 ulp;
      lora_A bit-identical; r and lora_alpha unchanged.
Exits non-zero (with a message) when a check fails.
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))
import peft_layout as pl  # noqa: E402

PREFIX = "base_model.model."


def whole(entry):
    return pl.tensor_rows(entry, 0, entry[1][0])


def raw_bf16(entry):
    """The stored bf16 bits of a tensor (entry from model_tensors) as uint16."""
    dtype, shape, fn, off = entry
    if dtype != "BF16":
        sys.exit(f"expected BF16, got {dtype}")
    n = int(np.prod(shape, dtype=np.int64))
    with open(fn, "rb") as f:
        f.seek(off)
        return np.frombuffer(f.read(2 * n), dtype="<u2").reshape(shape)


def to_bf16_bits(x):
    """float64 -> bf16 bits, rounded once to nearest even (exact: no float32 step)."""
    m, e = np.frexp(x)                       # x = m * 2^e, 0.5 <= |m| < 1
    r = np.ldexp(np.rint(np.ldexp(m, 8)), e - 8)   # 8 significant bits, RNE
    return (r.astype(np.float32).view(np.uint32) >> np.uint32(16)).astype(np.uint16)


def ordered(bits):
    b = bits.astype(np.int32)
    return np.where(b & 0x8000, -(b & 0x7FFF), b)


def compare(name, got_bits, want_f64):
    want = to_bf16_bits(want_f64)
    ulps = np.abs(ordered(got_bits) - ordered(want))
    exact = float(np.mean(ulps == 0))
    worst = int(ulps.max())
    print(f"  {name}: {got_bits.size} values, {100 * exact:.4f}% correctly rounded, "
          f"max {worst} bf16 ulp")
    if worst > 1:
        sys.exit(f"FAILED: {name} is off by {worst} bf16 ulp")


def same_bits(name, a, b):
    if a.shape != b.shape or not np.array_equal(a, b):
        sys.exit(f"FAILED: {name} is not bit-identical to the input")
    print(f"  {name}: bit-identical ({a.size} values)")


def adapter_scale(adapter_dir, module):
    cfg = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    r = pl.pattern_value(cfg.get("rank_pattern"), module, cfg["r"])
    a = pl.pattern_value(cfg.get("alpha_pattern"), module, cfg["lora_alpha"])
    return a / (r ** 0.5 if cfg.get("use_rslora") else r)


def info(sft, adapter):
    t = pl.model_tensors(sft)
    params = sum(int(np.prod(s, dtype=np.int64)) for _, s, _, _ in t.values())
    model_bytes = sum(f.stat().st_size for f in Path(sft).iterdir() if f.is_file())
    adapter_bytes = sum(f.stat().st_size for f in Path(adapter).iterdir() if f.is_file())
    print(params, model_bytes, adapter_bytes)


def verify_full(sft, adapter, out, alpha):
    st, ot = pl.model_tensors(sft), pl.model_tensors(out)
    at = pl.model_tensors(Path(adapter) / "adapter_model.safetensors")
    if set(st) != set(ot):
        sys.exit(f"FAILED: output tensors differ from the SFT's: missing "
                 f"{sorted(set(st) - set(ot))[:5]}, extra {sorted(set(ot) - set(st))[:5]}")
    bad = [n for n in st if st[n][:2] != ot[n][:2]]
    if bad:
        sys.exit(f"FAILED: dtype/shape differ for {bad[:5]}")
    print(f"  {len(ot)} tensors, names, shapes and dtypes match the SFT model")
    module = "model.layers.0.self_attn.q_proj"
    s = adapter_scale(adapter, module)
    W = whole(st[module + ".weight"])
    A = whole(at[PREFIX + module + ".lora_A.weight"])
    B = whole(at[PREFIX + module + ".lora_B.weight"])
    want = W + (1.0 + alpha) * s * (B @ A)
    compare(module + ".weight (adapted)", raw_bf16(ot[module + ".weight"]), want)
    for name in ("model.layers.0.input_layernorm.weight", "model.embed_tokens.weight"):
        same_bits(name + " (untouched)", raw_bf16(ot[name]), raw_bf16(st[name]))


def verify_adapter(adapter, out, alpha):
    at = pl.model_tensors(Path(adapter) / "adapter_model.safetensors")
    ot = pl.model_tensors(Path(out) / "adapter_model.safetensors")
    if {n: v[:2] for n, v in at.items()} != {n: v[:2] for n, v in ot.items()}:
        sys.exit("FAILED: output adapter tensors (names/dtypes/shapes) differ from the input's")
    ci = json.loads((Path(adapter) / "adapter_config.json").read_text())
    co = json.loads((Path(out) / "adapter_config.json").read_text())
    if (ci["r"], ci["lora_alpha"]) != (co["r"], co["lora_alpha"]):
        sys.exit("FAILED: r / lora_alpha changed in adapter_config.json")
    print(f"  {len(ot)} tensors and r / lora_alpha match the input adapter")
    k = PREFIX + "model.layers.0.self_attn.q_proj"
    compare(k + ".lora_B.weight (scaled)", raw_bf16(ot[k + ".lora_B.weight"]),
            (1.0 + alpha) * whole(at[k + ".lora_B.weight"]))
    same_bits(k + ".lora_A.weight", raw_bf16(ot[k + ".lora_A.weight"]),
              raw_bf16(at[k + ".lora_A.weight"]))


def main(argv):
    what = argv[0]
    if what == "info":
        info(argv[1], argv[2])
    elif what == "verify-full":
        verify_full(argv[1], argv[2], argv[3], float(argv[4]))
    elif what == "verify-adapter":
        verify_adapter(argv[1], argv[2], float(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
