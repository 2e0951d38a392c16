#!/usr/bin/env python3
"""GGUF written and read in plain Python, independently of expo's C++ (no `gguf` package here).

  gguf_reference.py read FILE     prints JSON: version, alignment, metadata (key -> [type, value]),
                              tensors (name, type, dims, offset, values as float64 lists)
  gguf_reference.py write FILE    writes a small fixture (the command-line tests inspect it)

Read from the GGUF spec (ggml's docs/gguf.md) and ggml's block layouts: little-endian, version
2 or 3, Q8_0 blocks of an F16 scale and 32 int8. Plain Python (struct decodes F16 as "e"), so
it runs wherever python3 does.
"""
import json
import math
import random
import struct
import sys

TYPES = {0: "uint8", 1: "int8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32", 6: "float32",
         7: "bool", 8: "string", 9: "array", 10: "uint64", 11: "int64", 12: "float64"}
FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
       11: "<q", 12: "<d"}
GGML = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 8: ("Q8_0", 32, 34), 28: ("F64", 1, 8),
        30: ("BF16", 1, 2), 12: ("Q4_K", 256, 144)}


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n]
        self.pos += n
        return s.decode("utf-8", errors="backslashreplace")

    def scalar(self, t):
        return self.string() if t == 8 else self.take(FMT[t])

    def value(self, t):
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            return "array[%s]" % TYPES[et], [self.scalar(et) for _ in range(n)]
        return TYPES[t], self.scalar(t)


def decode(kind, raw, n):
    if kind in ("F32", "F64", "F16"):
        return list(struct.unpack("<%d%s" % (n, {"F32": "f", "F64": "d", "F16": "e"}[kind]), raw))
    if kind == "BF16":
        bits = struct.unpack("<%dH" % n, raw)
        return [struct.unpack("<f", struct.pack("<I", b << 16))[0] for b in bits]
    if kind == "Q8_0":
        out = []
        for b in range(n // 32):
            block = raw[34 * b:34 * (b + 1)]
            (d,) = struct.unpack_from("<e", block, 0)
            out += [q * d for q in struct.unpack_from("<32b", block, 2)]
        return out
    return None


def read(path):
    data = open(path, "rb").read()
    r = Reader(data)
    assert data[:4] == b"GGUF", "magic"
    r.pos = 4
    version = r.take("<I")
    assert version in (2, 3), version
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    metadata = {}
    for _ in range(n_kv):
        key = r.string()
        metadata[key] = list(r.value(r.take("<I")))
    alignment = metadata.get("general.alignment", ["uint32", 32])[1]
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        dims = [r.take("<Q") for _ in range(r.take("<I"))]
        tensors.append({"name": name, "dims": dims, "type_id": r.take("<I"),
                        "offset": r.take("<Q")})
    start = (r.pos + alignment - 1) // alignment * alignment
    for t in tensors:
        kind, block, size = GGML[t.pop("type_id")]
        n = math.prod(t["dims"])
        nbytes = n // block * size
        raw = data[start + t["offset"]:start + t["offset"] + nbytes]
        assert len(raw) == nbytes, t["name"]
        values = decode(kind, raw, n)
        t.update(type=kind, bytes=nbytes,
                 values=None if values is None else [float(v) for v in values])
        t["shape"] = list(reversed(t["dims"]))
    print(json.dumps({"version": version, "alignment": alignment, "data_start": start,
                      "metadata": metadata, "tensors": tensors}))


def write(path):
    """A fixture with metadata of several types and F32, F16, Q8_0 and Q4_K tensors."""
    align = 32

    def s(text):
        b = text.encode()
        return struct.pack("<Q", len(b)) + b

    kvs = [("general.architecture", 8, s("llama")),
           ("general.name", 8, s("tiny \"fixture\"")),
           ("llama.block_count", 4, struct.pack("<I", 2)),
           ("llama.rope.freq_base", 6, struct.pack("<f", 10000.0)),
           ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 20) +
            b"".join(s("tok%d" % i) for i in range(20))),
           ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 3) + struct.pack("<3f", 0, -1, -2)),
           ("general.alignment", 4, struct.pack("<I", align))]
    rng = random.Random(7)
    embd = [rng.gauss(0, 1) for _ in range(192)]
    tensors = [("token_embd.weight", 1, [64, 3], struct.pack("<192e", *embd)),
               ("output_norm.weight", 0, [64], struct.pack("<64f", *[1.0] * 64)),
               ("blk.0.attn_q.weight", 8, [32, 2], bytes(68)),
               ("blk.0.ffn_down.weight", 12, [256, 1], bytes(144))]
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, t, v in kvs:
        out += s(key) + struct.pack("<I", t) + v
    offset, data = 0, b""
    for name, t, dims, raw in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + struct.pack("<%dQ" % len(dims), *dims)
        out += struct.pack("<IQ", t, offset)
        pad = -len(raw) % align
        data += raw + bytes(pad)
        offset += len(raw) + pad
    out += bytes(-len(out) % align)
    open(path, "wb").write(out + data)


if __name__ == "__main__":
    {"read": read, "write": write}[sys.argv[1]](sys.argv[2])
