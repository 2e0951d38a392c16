#!/usr/bin/env python3
"""A tiny llama-architecture GGUF, written independently of expo (numpy only), to check
tests/gguf/llama_cpp_ref.mjs against llama.cpp before expo writes GGUF itself.

    python3 tests/gguf/make_tiny_gguf.py OUT.gguf [--seed 7] [--tied]

The model: hidden 64, 2 layers, 4 heads of 16 (2 KV heads), SwiGLU 128, RMSNorm eps 1e-5,
RoPE theta 10000, F32 weights drawn from a seeded generator. The tokenizer: byte-level BPE
(GPT-2's byte-to-character map, its pre-tokenizer "gpt-2"): 256 byte tokens, merges learnt from
a fixed text, then <|begin_of_text|> (BOS) and <|end_of_text|> (EOS), both control tokens.

The weights are made in Hugging Face's layout (q/k rows in "rotate-half" order); llama.cpp's
llama architecture rotates adjacent pairs instead, so q_proj and k_proj rows are permuted
per head on the way out (permute_qk below), as llama.cpp's converter does.

Also a module: tiny_model(seed, tied) -> (config, weights, tokenizer), forward(...) and
tokenize(...) are the float64 reference that llama_cpp_agreement.py compares llama.cpp with.
"""
import argparse
import re
import struct

import numpy as np

CONFIG = dict(hidden=64, layers=2, heads=4, kv_heads=2, ffn=128, eps=1e-5, theta=10000.0,
              context=256)
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
MERGE_COUNT = 200
CORPUS = (
    "the quick brown fox jumps over the lazy dog. the lazy dog sleeps in the sun; "
    "a quick fox is a happy fox. hello world, hello expo! numbers 123 456 7890 and "
    "tokens, tokens, tokens: the tokenizer merges pairs of bytes into longer tokens. "
    "llama reads the model file and writes the next token, then the next, then the next. "
) * 3

# GGUF value types and tensor types (gguf-py/gguf/constants.py: GGUFValueType, GGMLQuantizationType)
GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY = 4, 5, 6, 7, 8, 9
GGML_F32 = 0
ALIGNMENT = 32  # general.alignment's default
# llama_token_type (llama.h): what tokenizer.ggml.token_type holds, as int32
TOKEN_NORMAL, TOKEN_CONTROL = 1, 3


def bytes_to_unicode():
    """GPT-2's map from each byte to a printable character (the byte tokens' text)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = {}
    extra = 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


BYTE_CHAR = bytes_to_unicode()
# GPT-2's pre-tokenizer, for ASCII text (\p{L} and \p{N} narrowed to ASCII letters and digits).
GPT2_SPLIT = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")


def learn_merges(text, count):
    words = {}
    for piece in GPT2_SPLIT.findall(text):
        key = tuple(BYTE_CHAR[b] for b in piece.encode())
        words[key] = words.get(key, 0) + 1
    merges = []
    for _ in range(count):
        pairs = {}
        for word, freq in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + freq
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))  # most frequent, then the smallest pair
        merges.append(best)
        merged = {}
        for word, freq in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + freq
        words = merged
    return merges


def make_tokenizer():
    merges = learn_merges(CORPUS, MERGE_COUNT)
    tokens = [BYTE_CHAR[b] for b in range(256)] + [a + b for a, b in merges] + [BOS, EOS]
    types = [TOKEN_NORMAL] * (len(tokens) - 2) + [TOKEN_CONTROL, TOKEN_CONTROL]
    assert len(set(tokens)) == len(tokens)
    return dict(tokens=tokens, types=types, merges=merges, bos=tokens.index(BOS), eos=tokens.index(EOS))


def tokenize(tok, text, parse_special):
    """Byte-level BPE as GPT-2 does it (lowest-rank pair first), ASCII text only."""
    ids = {t: i for i, t in enumerate(tok["tokens"])}
    rank = {pair: r for r, pair in enumerate(tok["merges"])}
    parts = re.split("(" + re.escape(BOS) + "|" + re.escape(EOS) + ")", text) if parse_special else [text]
    out = []
    for part in parts:
        if parse_special and part in (BOS, EOS):
            out.append(ids[part])
            continue
        for piece in GPT2_SPLIT.findall(part):
            word = [BYTE_CHAR[b] for b in piece.encode()]
            while len(word) > 1:
                ranked = [(rank.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(word, word[1:]))]
                r, i = min(ranked)
                if r == 1 << 30:
                    break
                word[i:i + 2] = [word[i] + word[i + 1]]
            out.extend(ids[w] for w in word)
    return out


def tiny_model(seed=7, tied=False):
    c = dict(CONFIG)
    tok = make_tokenizer()
    c["vocab"] = len(tok["tokens"])
    c["head_dim"] = c["hidden"] // c["heads"]
    rng = np.random.default_rng(seed)
    h, f, v, hd = c["hidden"], c["ffn"], c["vocab"], c["head_dim"]

    def lin(out_dim, in_dim):  # HF layout: [out, in]
        return (rng.standard_normal((out_dim, in_dim)) / np.sqrt(in_dim)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)

    w = {"embed": rng.standard_normal((v, h)).astype(np.float32)}
    for i in range(c["layers"]):
        w[f"{i}.attn_norm"] = norm(h)
        w[f"{i}.q"] = lin(c["heads"] * hd, h)
        w[f"{i}.k"] = lin(c["kv_heads"] * hd, h)
        w[f"{i}.v"] = lin(c["kv_heads"] * hd, h)
        w[f"{i}.o"] = lin(h, c["heads"] * hd)
        w[f"{i}.ffn_norm"] = norm(h)
        w[f"{i}.gate"] = lin(f, h)
        w[f"{i}.up"] = lin(f, h)
        w[f"{i}.down"] = lin(h, f)
    w["norm"] = norm(h)
    w["lm_head"] = w["embed"] if tied else lin(v, h) * 4.0
    c["tied"] = tied
    return c, w, tok


def permute_qk(weight, heads):
    """HF's rotate-half row order -> llama.cpp's adjacent pairs, per head: the rows of each head,
    [first half | second half], become interleaved (row j of the first half, then row j of the
    second). For k, heads is the number of KV heads."""
    rows, cols = weight.shape
    half = rows // heads // 2
    return weight.reshape(heads, 2, half, cols).swapaxes(1, 2).reshape(rows, cols)


def forward(c, w, ids):
    """Logits [len(ids), vocab] in float64, Hugging Face's LlamaForCausalLM semantics."""
    x = w["embed"].astype(np.float64)[ids]
    n, hd = len(ids), c["head_dim"]
    inv_freq = 1.0 / (c["theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    angles = np.outer(np.arange(n, dtype=np.float64), inv_freq)
    cos = np.concatenate([np.cos(angles)] * 2, axis=1)
    sin = np.concatenate([np.sin(angles)] * 2, axis=1)

    def rms(t, weight):
        return t / np.sqrt(np.mean(t * t, axis=-1, keepdims=True) + c["eps"]) * weight.astype(np.float64)

    def rope(t):  # t: [heads, n, hd]
        rotated = np.concatenate([-t[..., hd // 2:], t[..., :hd // 2]], axis=-1)
        return t * cos + rotated * sin

    def mm(t, weight):
        return t @ weight.astype(np.float64).T

    mask = np.triu(np.full((n, n), -np.inf), 1)
    group = c["heads"] // c["kv_heads"]
    for i in range(c["layers"]):
        t = rms(x, w[f"{i}.attn_norm"])
        q = rope(mm(t, w[f"{i}.q"]).reshape(n, c["heads"], hd).transpose(1, 0, 2))
        k = rope(mm(t, w[f"{i}.k"]).reshape(n, c["kv_heads"], hd).transpose(1, 0, 2))
        v = mm(t, w[f"{i}.v"]).reshape(n, c["kv_heads"], hd).transpose(1, 0, 2)
        k, v = np.repeat(k, group, axis=0), np.repeat(v, group, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attn = (scores / scores.sum(axis=-1, keepdims=True)) @ v
        x = x + mm(attn.transpose(1, 0, 2).reshape(n, c["heads"] * hd), w[f"{i}.o"])
        t = rms(x, w[f"{i}.ffn_norm"])
        gate = mm(t, w[f"{i}.gate"])
        x = x + mm(gate / (1.0 + np.exp(-gate)) * mm(t, w[f"{i}.up"]), w[f"{i}.down"])
    return mm(rms(x, w["norm"]), w["lm_head"])


def greedy(c, w, prompt, n):
    ids, steps = list(prompt), []
    for _ in range(n):
        logits = forward(c, w, ids)[-1]
        token = int(np.argmax(logits))
        steps.append((token, logits))
        ids.append(token)
    return steps


# --- GGUF (version 3, little-endian) ---

def _string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(kind, value):
    if kind == GGUF_UINT32:
        return struct.pack("<I", value)
    if kind == GGUF_INT32:
        return struct.pack("<i", value)
    if kind == GGUF_FLOAT32:
        return struct.pack("<f", value)
    if kind == GGUF_BOOL:
        return struct.pack("<?", value)
    if kind == GGUF_STRING:
        return _string(value)
    raise ValueError(kind)


def _kv(key, kind, value, item_kind=None):
    out = _string(key) + struct.pack("<I", kind)
    if kind == GGUF_ARRAY:
        out += struct.pack("<IQ", item_kind, len(value)) + b"".join(_value(item_kind, x) for x in value)
    else:
        out += _value(kind, value)
    return out


def gguf_metadata(c, tok):
    a = "llama"
    return [
        ("general.architecture", GGUF_STRING, a),
        ("general.name", GGUF_STRING, "expo tiny llama"),
        ("general.file_type", GGUF_UINT32, 0),  # LLAMA_FTYPE_ALL_F32
        (f"{a}.vocab_size", GGUF_UINT32, c["vocab"]),
        (f"{a}.context_length", GGUF_UINT32, c["context"]),
        (f"{a}.embedding_length", GGUF_UINT32, c["hidden"]),
        (f"{a}.block_count", GGUF_UINT32, c["layers"]),
        (f"{a}.feed_forward_length", GGUF_UINT32, c["ffn"]),
        (f"{a}.attention.head_count", GGUF_UINT32, c["heads"]),
        (f"{a}.attention.head_count_kv", GGUF_UINT32, c["kv_heads"]),
        (f"{a}.rope.freq_base", GGUF_FLOAT32, c["theta"]),
        (f"{a}.rope.dimension_count", GGUF_UINT32, c["head_dim"]),
        (f"{a}.attention.layer_norm_rms_epsilon", GGUF_FLOAT32, c["eps"]),
        ("tokenizer.ggml.model", GGUF_STRING, "gpt2"),
        ("tokenizer.ggml.pre", GGUF_STRING, "gpt-2"),
        ("tokenizer.ggml.tokens", GGUF_ARRAY, tok["tokens"], GGUF_STRING),
        ("tokenizer.ggml.token_type", GGUF_ARRAY, tok["types"], GGUF_INT32),
        ("tokenizer.ggml.merges", GGUF_ARRAY, [f"{x} {y}" for x, y in tok["merges"]], GGUF_STRING),
        ("tokenizer.ggml.bos_token_id", GGUF_UINT32, tok["bos"]),
        ("tokenizer.ggml.eos_token_id", GGUF_UINT32, tok["eos"]),
        ("tokenizer.ggml.add_bos_token", GGUF_BOOL, True),
        ("tokenizer.ggml.add_eos_token", GGUF_BOOL, False),
        ("tokenizer.chat_template", GGUF_STRING,
         "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
         "{% if add_generation_prompt %}assistant: {% endif %}"),
    ]


def gguf_tensors(c, w, permute=True):
    """(name, array in [rows, cols] row-major order); GGUF lists dims innermost first.
    permute=False leaves q/k in HF's order: a wrong file, for the tests to see it fail."""
    qk = permute_qk if permute else (lambda weight, heads: weight)
    out = [("token_embd.weight", w["embed"])]
    for i in range(c["layers"]):
        b = f"blk.{i}"
        out += [
            (f"{b}.attn_norm.weight", w[f"{i}.attn_norm"]),
            (f"{b}.attn_q.weight", qk(w[f"{i}.q"], c["heads"])),
            (f"{b}.attn_k.weight", qk(w[f"{i}.k"], c["kv_heads"])),
            (f"{b}.attn_v.weight", w[f"{i}.v"]),
            (f"{b}.attn_output.weight", w[f"{i}.o"]),
            (f"{b}.ffn_norm.weight", w[f"{i}.ffn_norm"]),
            (f"{b}.ffn_gate.weight", w[f"{i}.gate"]),
            (f"{b}.ffn_up.weight", w[f"{i}.up"]),
            (f"{b}.ffn_down.weight", w[f"{i}.down"]),
        ]
    out.append(("output_norm.weight", w["norm"]))
    if not c["tied"]:  # without output.weight llama.cpp reads token_embd.weight
        out.append(("output.weight", w["lm_head"]))
    return out


def write_gguf(path, c, w, tok, permute=True):
    meta = gguf_metadata(c, tok)
    tensors = gguf_tensors(c, w, permute)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta))
    head += b"".join(_kv(*item) for item in meta)
    data, offset = [], 0
    for name, array in tensors:
        array = np.ascontiguousarray(array, dtype="<f4")
        dims = array.shape[::-1]
        head += _string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        head += struct.pack("<IQ", GGML_F32, offset)
        blob = array.tobytes()
        pad = (-len(blob)) % ALIGNMENT
        data.append(blob + b"\0" * pad)
        offset += len(blob) + pad
    head += b"\0" * ((-len(head)) % ALIGNMENT)
    with open(path, "wb") as f:
        f.write(head)
        f.write(b"".join(data))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--tied", action="store_true", help="no output.weight: the LM head is token_embd")
    args = p.parse_args()
    c, w, tok = tiny_model(args.seed, args.tied)
    write_gguf(args.out, c, w, tok)


if __name__ == "__main__":
    main()
