#!/usr/bin/python3
"""Bit-exact reference test of `expo extrapolate`.

The contract: for every floating tensor (BF16, F16, F32, F64)

    out = round(a + alpha * (a - s))        a = aligned, s = sft

evaluated in IEEE float64 as separate operations (d = a - s; t = alpha * d; r = a + t; no FMA)
and rounded once, from float64, to the output dtype with round-to-nearest-even. Integer and bool
tensors pass through from aligned. A finite-input result that overflows the output dtype is an
error; so is NaN/Inf in an input unless --allow-nonfinite.

This script writes safetensors checkpoints itself, runs build/expo on them, reads the outputs
back and compares them bit for bit with an independent numpy implementation.

Usage:  /usr/bin/python3 tests/python/test_extrapolate_reference.py [path/to/expo]
        (or EXPO_BIN=path/to/expo; default: build/expo under the repository root)
Needs numpy (Debian's python3-numpy); without it, exits 77 (a skip for ctest). Prints a final line "N passed, M failed" and exits
non-zero if anything failed. EXPO_TEST_SEED changes the random seed; EXPO_TEST_KEEP=1 keeps
the temporary folder; EXPO_TEST_VERBOSE=1 lists the checks that pass too.
"""

import bisect
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

try:
    import numpy as np
except ImportError:  # e.g. a pyenv python3 instead of Debian's /usr/bin/python3
    print(f"skipped: numpy is not available to {sys.executable}; run with /usr/bin/python3 "
          "(Debian package python3-numpy)")
    # In CI (CI=true) every test must run: a skip is a failure there.
    sys.exit(1 if os.environ.get("CI") == "true" else 77)

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("EXPO_TEST_SEED", "20240611"))
VERBOSE = bool(os.environ.get("EXPO_TEST_VERBOSE"))

# ----------------------------------------------------------------------------------------------
# Bookkeeping
# ----------------------------------------------------------------------------------------------

PASSED = 0
FAILED = 0
FAILURES = []


def check(name, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        if VERBOSE:
            print(f"ok: {name}", flush=True)
    else:
        FAILED += 1
        FAILURES.append(name)
        print(f"FAIL: {name}" + (f"\n      {detail}" if detail else ""), flush=True)
    return ok


def info(msg):
    print(msg, flush=True)


# ----------------------------------------------------------------------------------------------
# Dtypes: every floating tensor is kept as an array of its raw bits (unsigned ints)
# ----------------------------------------------------------------------------------------------

FLOATS = ["BF16", "F16", "F32", "F64"]
UINT = {"BF16": np.uint16, "F16": np.uint16, "F32": np.uint32, "F64": np.uint64}
WIDTH = {"BF16": 16, "F16": 16, "F32": 32, "F64": 64}
INTS = {"I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
        "U16": np.uint16, "U32": np.uint32, "U64": np.uint64, "BOOL": np.uint8}
ITEMSIZE = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
            "U8": 1, "U16": 2, "U32": 4, "U64": 8, "BOOL": 1}


class Fmt:
    """A binary floating-point format: p fraction bits, normal exponents [emin, emax]."""

    def __init__(self, mant, emin, emax):
        self.mant, self.emin, self.emax = mant, emin, emax
        self.max = (2.0 - 2.0 ** -mant) * 2.0 ** emax
        self.min_normal = 2.0 ** emin
        self.min_sub = 2.0 ** (emin - mant)


FMT = {"BF16": Fmt(7, -126, 127), "F16": Fmt(10, -14, 15), "F32": Fmt(23, -126, 127),
       "F64": Fmt(52, -1022, 1023)}


def rne(x, fmt):
    """Round float64 array x to the nearest value of fmt, ties to even, working in float64
    arithmetic on exact quantities (truncate to the format's quantum, compare the distances
    to both neighbours). Returns (value as float64 -- +-inf on overflow --, tie mask).
    Independent of expo's bit-trick rounding."""
    x = np.asarray(x, dtype=np.float64)
    out = x.copy()
    tie = np.zeros(x.shape, dtype=bool)
    sel = np.isfinite(x) & (x != 0)
    xf = x[sel]
    _, e = np.frexp(xf)                    # xf = m * 2**e, 0.5 <= |m| < 1
    e = e.astype(np.int64) - 1             # floor(log2 |xf|), also for float64 subnormals
    q = np.ldexp(1.0, (np.maximum(e, fmt.emin) - fmt.mant).astype(np.int32))  # quantum
    n = np.trunc(xf / q)                   # exact: q is a power of two
    lo = n * q                             # truncation toward zero (keeps the sign of zero)
    hi = lo + np.copysign(q, xf)           # next value away from zero
    dlo = np.abs(xf - lo)                  # exact (Sterbenz / same quantum)
    dhi = np.abs(hi - xf)                  # exact
    is_tie = dlo == dhi
    odd = np.fmod(np.abs(n), 2.0) == 1.0
    r = np.where((dhi < dlo) | (is_tie & odd), hi, lo)
    r = np.where(np.abs(r) > fmt.max, np.copysign(np.inf, xf), r)
    out[sel] = r
    tie[sel] = is_tie
    return out, tie


def encode(dt, x):
    """float64 array -> raw bits of dt, rounded to nearest even."""
    x = np.asarray(x, dtype=np.float64)
    if dt == "BF16":
        v, _ = rne(x, FMT["BF16"])         # exactly representable in float32 now
        return (v.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    if dt == "F16":
        return x.astype(np.float16).view(np.uint16)   # numpy rounds float64->float16 directly
    if dt == "F32":
        return x.astype(np.float32).view(np.uint32)
    if dt == "F64":
        return x.copy().view(np.uint64)
    raise ValueError(dt)


def decode(dt, bits):
    """raw bits of dt -> float64 (exact)."""
    bits = np.asarray(bits, dtype=UINT[dt])
    if dt == "BF16":
        return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
    if dt == "F16":
        return bits.view(np.float16).astype(np.float64)
    if dt == "F32":
        return bits.view(np.float32).astype(np.float64)
    return bits.view(np.float64).copy()


def is_nan_bits(dt, bits):
    return np.isnan(decode(dt, bits))


def step(dt, x, k):
    """x (representable in dt) moved k representable values up (k < 0: down)."""
    bits = encode(dt, x)
    w = WIDTH[dt]
    sign = np.uint64(1) << np.uint64(w - 1)
    b = bits.astype(np.uint64)
    mag = (b & ~sign).astype(np.int64)
    ordv = np.where((b & sign) != 0, -mag, mag) + np.asarray(k, dtype=np.int64)
    nb = np.where(ordv < 0, (-ordv).astype(np.uint64) | sign, ordv.astype(np.uint64))
    return decode(dt, nb.astype(UINT[dt]))


def expected_result(a_dt, a_bits, s_dt, s_bits, alpha, out_dt):
    """-> (out bits, float64 r, overflow mask, tie mask, nonfinite-input mask)."""
    a = decode(a_dt, a_bits)
    s = decode(s_dt, s_bits)
    d = a - s                      # three separate float64 operations, no FMA
    t = np.float64(alpha) * d
    r = a + t
    finite_in = np.isfinite(a) & np.isfinite(s)
    if out_dt == "F64":
        bits = r.view(np.uint64).copy()
        tie = np.zeros(r.shape, dtype=bool)
        rounded = r
    else:
        rounded, tie = rne(r, FMT[out_dt])
        if out_dt == "BF16":
            bits = encode("BF16", r)
        elif out_dt == "F16":
            bits = r.astype(np.float16).view(np.uint16)
        else:
            bits = r.astype(np.float32).view(np.uint32)
    overflow = finite_in & ~np.isfinite(rounded)
    return bits, r, overflow, tie & finite_in, ~finite_in


# ----------------------------------------------------------------------------------------------
# Self-test of the rounders against brute force with fractions.Fraction
# ----------------------------------------------------------------------------------------------

def brute_force_table(dt):
    fmt = FMT[dt]
    inf_bits = ((1 << (WIDTH[dt] - 1 - fmt.mant)) - 1) << fmt.mant
    finite = decode(dt, np.arange(inf_bits, dtype=UINT[dt]))   # index == bit pattern
    table = [Fraction(float(v)) for v in finite]
    table.append(Fraction(2) ** (fmt.emax + 1))  # "infinity": where overflowing values go
    return table


def brute_force_round(table, dt, x):
    """Nearest-even search over all non-negative values of dt: returns (bits, is_tie)."""
    neg = x < 0 or (x == 0 and np.signbit(x))
    X = Fraction(abs(float(x)))
    i = bisect.bisect_right(table, X) - 1
    tie = False
    if i < len(table) - 1:
        lo, hi = table[i], table[i + 1]
        dlo, dhi = X - lo, hi - X
        if dhi < dlo or (dhi == dlo and i % 2 == 1):
            i += 1
        tie = dhi == dlo and X != lo
    return i | ((1 << (WIDTH[dt] - 1)) if neg else 0), tie


def rounding_samples(rng, dt, n):
    fmt = FMT[dt]
    xs = []
    # random doubles across (and a little past) the format's whole range, subnormals included
    e = rng.integers(fmt.emin - fmt.mant - 3 + 1023, fmt.emax + 2 + 1023, size=n).astype(np.uint64)
    mant = rng.integers(0, 1 << 52, size=n, dtype=np.uint64)
    sgn = rng.integers(0, 2, size=n).astype(np.uint64) << np.uint64(63)
    xs.append((sgn | (e << np.uint64(52)) | mant).view(np.float64))
    # exact midpoints between neighbours, and one float64 ulp either side of them
    inf_bits = ((1 << (WIDTH[dt] - 1 - fmt.mant)) - 1) << fmt.mant
    v = rng.integers(0, inf_bits, size=n // 3).astype(UINT[dt])
    lo, hi = decode(dt, v), decode(dt, (v + 1).astype(UINT[dt]))
    hi = np.where(np.isinf(hi), 2.0 ** (fmt.emax + 1), hi)
    mid = (lo + hi) / 2 * np.where(rng.random(v.size) < 0.5, -1.0, 1.0)
    xs += [mid, np.nextafter(mid, np.inf), np.nextafter(mid, -np.inf), lo]
    half_ulp_max = 2.0 ** (fmt.emax - fmt.mant - 1)
    specials = [0.0, -0.0, fmt.max, -fmt.max, fmt.max + half_ulp_max, -(fmt.max + half_ulp_max),
                np.nextafter(fmt.max + half_ulp_max, 0), 2.0 ** (fmt.emax + 1), 1e300, 5e-324,
                -5e-324, fmt.min_sub, fmt.min_sub / 2, -fmt.min_sub / 2,
                np.nextafter(fmt.min_sub / 2, 1), 1.5 * fmt.min_sub, 2.5 * fmt.min_sub,
                fmt.min_normal, fmt.min_normal - fmt.min_sub / 2, 1.0, 1.0 + 2.0 ** -(fmt.mant + 1),
                1.0 + 3 * 2.0 ** -(fmt.mant + 1)]
    xs.append(np.array(specials))
    return np.concatenate(xs)


def self_test_rounders(rng):
    t0 = time.time()
    for dt in ["BF16", "F16"]:
        table = brute_force_table(dt)
        xs = rounding_samples(rng, dt, 1500)
        bf = [brute_force_round(table, dt, x) for x in xs]
        want = np.array([b for b, _ in bf], dtype=UINT[dt])
        want_tie = np.array([t for _, t in bf])
        mine_v, mine_tie = rne(xs, FMT[dt])
        if dt == "BF16":
            mine = encode(dt, xs)
        else:
            mine = mine_v.astype(np.float16).view(np.uint16)  # exact: already representable
            numpy_direct = xs.astype(np.float16).view(np.uint16)
            bad = np.nonzero(numpy_direct != want)[0]
            check(f"numpy float64->float16 astype vs Fraction brute force ({xs.size} values)",
                  bad.size == 0,
                  "" if bad.size == 0 else f"x={xs[bad[0]]!r} numpy={numpy_direct[bad[0]]:#06x} "
                                           f"brute={want[bad[0]]:#06x}")
        bad = np.nonzero(mine != want)[0]
        check(f"{dt} rounder vs Fraction brute force ({xs.size} values, "
              f"{int(want_tie.sum())} ties)", bad.size == 0,
              "" if bad.size == 0 else f"x={xs[bad[0]]!r} mine={int(mine[bad[0]]):#06x} "
                                       f"brute={int(want[bad[0]]):#06x}")
        nz = xs != 0
        check(f"{dt} tie detection vs Fraction brute force",
              np.array_equal(mine_tie[nz], want_tie[nz]))
    # F32: the rne() rounder against the hardware conversion numpy uses
    fmt = FMT["F32"]
    xs = rounding_samples(rng, "F32", 20000)
    v, _ = rne(xs, fmt)
    check("F32 rounder vs numpy astype(float32)",
          np.array_equal(v.astype(np.float32).view(np.uint32), xs.astype(np.float32).view(np.uint32)))
    # double rounding through float32 must differ from a direct bf16 rounding somewhere
    x = np.array([1.0 + 2.0 ** -8 + 2.0 ** -30])   # just above a bf16 tie; float32 rounds it onto the tie
    via_f32 = (x.astype(np.float32).view(np.uint32) >> 16)  # truncation after f32: shows the tie
    check("bf16 rounder does not double-round through float32",
          int(encode("BF16", x)[0]) == 0x3f81 and
          int(encode("BF16", x.astype(np.float32).astype(np.float64))[0]) == 0x3f80 and
          int(via_f32[0]) == 0x3f80)
    info(f"rounder self-test: {time.time() - t0:.2f}s")


# ----------------------------------------------------------------------------------------------
# safetensors writing and reading
# ----------------------------------------------------------------------------------------------

class Tensor:
    def __init__(self, name, dtype, shape, data):
        self.name, self.dtype, self.shape = name, dtype, list(shape)
        self.data = np.ascontiguousarray(data)   # raw bits / integer values, flat

    def nbytes(self):
        return self.data.size * ITEMSIZE[self.dtype]

    def raw(self):
        if self.dtype == "BOOL":
            return self.data.astype(np.uint8).tobytes()
        if self.dtype in UINT:
            return self.data.astype(np.dtype(UINT[self.dtype]).newbyteorder("<")).tobytes()
        return self.data.astype(np.dtype(INTS[self.dtype]).newbyteorder("<")).tobytes()


def write_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for t in tensors:
        raw = t.raw()
        header[t.name] = {"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((-len(hb)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """-> (dict name -> (dtype, shape, uint/int array), metadata, order of names by offset)."""
    blob = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        dt = e["dtype"]
        np_dt = UINT[dt] if dt in UINT else INTS[dt]
        arr = np.frombuffer(blob, dtype=np.dtype(np_dt).newbyteorder("<"), count=(end - b) // ITEMSIZE[dt],
                            offset=base + b)
        out[name] = (dt, list(e["shape"]), arr.astype(np_dt))
    return out, meta


def write_checkpoint(root, tensors, form, name="model"):
    """form: 'dir' (folder/model.safetensors), 'file' (a lone .safetensors), 'sharded'
    (folder with model.safetensors.index.json + 3 shards). Returns the path to pass to expo."""
    root = Path(root)
    if form == "file":
        root.mkdir(parents=True, exist_ok=True)
        p = root / f"{name}.safetensors"
        write_safetensors(p, tensors, {"format": "pt"})
        return str(p)
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps({"model_type": "llama", "tie_word_embeddings": False}))
    if form == "dir":
        write_safetensors(d / "model.safetensors", tensors, {"format": "pt"})
        return str(d)
    k = 3
    groups = [tensors[i::k] for i in range(k)]
    weight_map = {}
    for i, g in enumerate(groups):
        fn = f"model-{i + 1:05d}-of-{k:05d}.safetensors"
        write_safetensors(d / fn, g, {"format": "pt"})
        for t in g:
            weight_map[t.name] = fn
    (d / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": sum(t.nbytes() for t in tensors)}, "weight_map": weight_map}))
    return str(d)


def read_checkpoint(path):
    path = Path(path)
    index = path / "model.safetensors.index.json"
    if index.exists():
        wm = json.loads(index.read_text())["weight_map"]
        out = {}
        for fn in sorted(set(wm.values())):
            part, _ = read_safetensors(path / fn)
            out.update(part)
        if set(out) != set(wm):
            raise RuntimeError(f"{index}: weight_map and shards disagree")
        return out
    out, _ = read_safetensors(path / "model.safetensors")
    return out


# ----------------------------------------------------------------------------------------------
# Test data
# ----------------------------------------------------------------------------------------------

def exp_range(*dts):
    """Normal binary exponents representable in every dtype of dts."""
    return max(FMT[d].emin for d in dts), min(FMT[d].emax for d in dts)


def random_values(rng, dt, n, lo_e, hi_e):
    e = rng.integers(lo_e, hi_e + 1, size=n)
    m = rng.random(n) + 1.0
    sg = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return decode(dt, encode(dt, sg * np.ldexp(m, e.astype(np.int32))))


def random_subnormals(rng, dt, n):
    fmt = FMT[dt]
    if dt == "F64":
        bits = rng.integers(1, 1 << 52, size=n, dtype=np.uint64)
    else:
        bits = rng.integers(1, 1 << fmt.mant, size=n).astype(UINT[dt])
    v = decode(dt, bits)
    return np.where(rng.random(n) < 0.5, -v, v)


def tie_candidates(rng, sdt, adt, odt, alpha):
    """Pairs (a, s), representable in adt / sdt, many of whose float64 results are exact
    midpoints between two neighbours of odt (and the rest sit at binade boundaries)."""
    lo_e, hi_e = exp_range(sdt, adt, odt)
    A, S = [], []
    # (1) a and s a few ulps either side of a power of two: a binade boundary.
    exps = list(rng.integers(lo_e, hi_e, size=8)) + [lo_e, lo_e + 1, hi_e - 1, hi_e]
    for e in exps:
        for sign in (1.0, -1.0):
            B = np.array([sign * 2.0 ** int(e)])
            a = step(adt, B, np.arange(-4, 5))
            s = step(sdt, B, np.arange(-8, 9))
            aa, ss = np.meshgrid(a, s)
            A.append(aa.ravel())
            S.append(ss.ravel())
    # (2) aimed at a midpoint m of odt: a near m, s solving a + alpha*(a - s) = m, and its neighbours.
    if odt != "F64":
        fmt = FMT[odt]
        n = 300
        e = rng.integers(lo_e, hi_e + 1, size=n)
        v = random_values(rng, odt, n, lo_e, hi_e)
        v = np.concatenate([v, random_subnormals(rng, odt, 40),
                            np.array([fmt.max, -fmt.max, fmt.max / 2])])
        v = decode(odt, encode(odt, v))
        nxt = step(odt, v, np.where(v < 0, -1, 1))
        m = (v + nxt) / 2
        m = m[np.isfinite(m)]
        for ja in (-1, 0, 1):
            a = step(adt, decode(adt, encode(adt, m)), ja)
            if alpha == 0:
                A.append(a)
                S.append(decode(sdt, encode(sdt, m * (1 + rng.random(m.size)))))
                continue
            s0 = a - (m - a) / alpha
            s0 = decode(sdt, encode(sdt, s0))
            for js in range(-3, 4):
                A.append(a)
                S.append(step(sdt, s0, js))
    a = np.concatenate(A)
    s = np.concatenate(S)
    ok = np.isfinite(a) & np.isfinite(s)
    return a[ok], s[ok]


def make_pair(rng, name, sdt, adt, odt, alpha, also=(), normal_only=False):
    """One floating tensor pair with all the hard cases; overflowing elements are replaced,
    so that the run succeeds (for alpha and the alphas in also). Returns (Tensor sft, Tensor aligned)."""
    lo_e, hi_e = exp_range(sdt, adt, odt)
    segs_a, segs_s = [], []

    def add(a, s):
        a, s = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(s, dtype=np.float64))
        segs_a.append(a)
        segs_s.append(s)

    # realistic weights: aligned = sft + a small update
    s = rng.normal(0.0, 0.05, 400)
    add(s + rng.normal(0.0, 0.004, 400), s)
    # unrelated random values over many binades
    add(random_values(rng, adt, 200, max(lo_e, -14), min(hi_e, 14)),
        random_values(rng, sdt, 200, max(lo_e, -14), min(hi_e, 14)))
    # equal inputs, and inputs one ulp apart
    x = random_values(rng, adt, 50, max(lo_e, -10), min(hi_e, 10))
    add(x, x)
    add(x, step(sdt, decode(sdt, encode(sdt, x)), 1))
    # signed zeros and their neighbours
    tiny = [FMT[d].min_sub for d in (sdt, adt)]
    zs = [0.0, -0.0, tiny[0], -tiny[0], tiny[1], -tiny[1], 1.0, -1.0]
    za, zb = np.meshgrid(zs, zs)
    add(za.ravel(), zb.ravel())
    # subnormal inputs of both dtypes, against each other and against zero / normals
    add(random_subnormals(rng, adt, 60), random_subnormals(rng, sdt, 60))
    add(random_subnormals(rng, adt, 30), 0.0)
    add(0.0, random_subnormals(rng, sdt, 30))
    add(random_values(rng, adt, 30, lo_e, lo_e + 2), random_subnormals(rng, sdt, 30))
    # results in the output dtype's subnormal range
    fo = FMT[odt]
    k1 = rng.integers(0, 1 << (fo.mant + 1), size=150)
    k2 = k1 + rng.integers(-40, 41, size=150)
    add(k1 * fo.min_sub, k2 * fo.min_sub * rng.choice([1.0, 0.5, 0.25, 1.5], size=150))
    add(-k1 * fo.min_sub, -k2 * fo.min_sub)
    # large magnitudes near the top of the narrowest range, not overflowing
    top = min(FMT[d].max for d in (sdt, adt, odt))
    big = top * rng.uniform(0.25, 1.0, 120) * np.where(rng.random(120) < 0.5, -1, 1)
    bigs = big * (1 + rng.uniform(-2.0 ** -6, 2.0 ** -6, 120))
    add(big, bigs)
    add(big, big)
    sgn_alpha = 1.0 if alpha >= 0 else -1.0
    add(big, big * (1 + sgn_alpha * rng.uniform(0, 2.0 ** -3, 120)))   # result moves toward zero
    # ties of the output dtype (and binade-boundary neighbours)
    ta, ts = tie_candidates(rng, sdt, adt, odt, alpha)
    if ta.size:
        ab = encode(adt, ta)
        sb = encode(sdt, ts)
        _, _, ovf, tie, _ = expected_result(adt, ab, sdt, sb, alpha, odt)
        keep = ~ovf
        idx_tie = np.nonzero(tie & keep)[0]
        idx_other = np.nonzero(~tie & keep)[0]
        idx_tie = rng.permutation(idx_tie)[:400]
        idx_other = rng.permutation(idx_other)[:150]
        pick = np.concatenate([idx_tie, idx_other])
        add(ta[pick], ts[pick])

    a = np.concatenate(segs_a)
    s = np.concatenate(segs_s)
    perm = rng.permutation(a.size)   # interleave the cases: blocks of 512 see a mix
    a_bits = encode(adt, a[perm])
    s_bits = encode(sdt, s[perm])
    # non-finite after rounding to a narrower input dtype: make it 0
    bad = ~(np.isfinite(decode(adt, a_bits)) & np.isfinite(decode(sdt, s_bits)))
    a_bits[bad] = encode(adt, np.zeros(1))[0]
    s_bits[bad] = encode(sdt, np.zeros(1))[0]
    # overflowing results (the error case is tested separately): replace by a = s = 1
    for al in (alpha, *also):
        _, _, ovf, _, _ = expected_result(adt, a_bits, sdt, s_bits, al, odt)
        a_bits[ovf] = encode(adt, np.ones(1))[0]
        s_bits[ovf] = encode(sdt, np.ones(1))[0]
    if normal_only:
        # Only elements whose result is a normal number of odt: expo's blocked kernel redoes a
        # whole 512-element block in its reference routine when one element is zero, subnormal
        # or out of range, so its fast rounding path is only exercised by blocks without any.
        keep = np.ones(a_bits.size, dtype=bool)
        for al in (alpha, *also):
            _, r, _, _, _ = expected_result(adt, a_bits, sdt, s_bits, al, odt)
            keep &= (np.abs(r) >= FMT[odt].min_normal) & (np.abs(r) <= FMT[odt].max)
        a_bits, s_bits = a_bits[keep], s_bits[keep]
    return (Tensor(name, sdt, [a_bits.size], s_bits), Tensor(name, adt, [a_bits.size], a_bits))


def int_pair(rng, name, dt, shape):
    n = int(np.prod(shape))
    if dt == "BOOL":
        a, s = rng.integers(0, 2, size=n).astype(np.uint8), rng.integers(0, 2, size=n).astype(np.uint8)
    else:
        info_ = np.iinfo(INTS[dt])
        a = rng.integers(info_.min, info_.max, size=n, dtype=INTS[dt], endpoint=True)
        s = rng.integers(info_.min, info_.max, size=n, dtype=INTS[dt], endpoint=True)
    return Tensor(name, dt, shape, s), Tensor(name, dt, shape, a)


def build_models(rng, alpha, override=None, big=True, also=()):
    sft, aligned = [], []
    for sdt in FLOATS:
        for adt in FLOATS:
            odt = override or adt
            s, a = make_pair(rng, f"model.layers.{len(sft)}.w_{sdt}_{adt}", sdt, adt, odt, alpha, also)
            sft.append(s)
            aligned.append(a)
            s, a = make_pair(rng, f"model.layers.{len(sft)}.fast_{sdt}_{adt}", sdt, adt, odt, alpha,
                             also, normal_only=True)
            sft.append(s)
            aligned.append(a)
    for dt, shape in [("I64", [7, 3]), ("I32", [33]), ("U8", [5, 5]), ("BOOL", [17]),
                      ("I8", [9]), ("U16", [4]), ("I16", [6]), ("U32", [3]), ("U64", [2])]:
        s, a = int_pair(rng, f"model.buffers.{dt.lower()}", dt, shape)
        sft.append(s)
        aligned.append(a)
    if big:  # more than one 64Ki-element task and a ragged last 512-element block
        n = 7 * 10001
        x = rng.normal(0, 0.02, n)
        adt = "BF16"
        odt = override or adt
        s_bits = encode("F32", x)
        a_bits = encode(adt, x + rng.normal(0, 0.002, n))
        for al in (alpha, *also):
            _, _, ovf, _, _ = expected_result(adt, a_bits, "F32", s_bits, al, odt)
            a_bits[ovf] = encode(adt, np.zeros(1))[0]
            s_bits[ovf] = encode("F32", np.zeros(1))[0]
        sft.append(Tensor("model.big.weight", "F32", [7, 10001], s_bits))
        aligned.append(Tensor("model.big.weight", adt, [7, 10001], a_bits))
    return sft, aligned


# ----------------------------------------------------------------------------------------------
# Running expo and comparing
# ----------------------------------------------------------------------------------------------

EXPO = None
STATS = {"elements": 0, "ties": 0, "subnormal_out": 0, "neg_zero_out": 0, "runs": 0,
         "fma_distinct": 0, "double_round_distinct": 0}


def run_expo(sft, aligned, alpha, output, extra=()):
    cmd = [EXPO, "extrapolate", "--sft", sft, "--aligned", aligned, f"--alpha={alpha}",
           "--output", output, "--no-progress", *extra]
    STATS["runs"] += 1
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return p


def fmt_bits(dt, b):
    return f"{int(b):#0{WIDTH[dt] // 4 + 2}x}"


def count_discriminating(at, st, alpha, odt, r, want):
    """Statistics that show the data can tell the contract from near misses: how many expected
    values differ from a fused multiply-add (a sample, exact with Fraction), and, for bf16
    outputs, from rounding through float32 first."""
    fin = np.nonzero(np.isfinite(r))[0]
    av = decode(at.dtype, at.data)
    sv = decode(st.dtype, st.data)
    fa = Fraction(float(alpha))
    for i in fin[:: max(1, fin.size // 60)]:
        a, s_ = Fraction(float(av[i])), Fraction(float(sv[i]))
        d = float(a - s_)                              # the subtraction, rounded
        fused = np.array([float(a + fa * Fraction(d))])  # multiply-add rounded once
        if np.isfinite(fused[0]) and np.abs(fused[0]) <= np.finfo(np.float64).max:
            fb = fused.view(np.uint64) if odt == "F64" else encode(odt, fused)
            STATS["fma_distinct"] += int(fb[0] != want[i])
    if odt == "BF16":
        via32 = encode("BF16", r[fin].astype(np.float32).astype(np.float64))
        STATS["double_round_distinct"] += int((via32 != want[fin]).sum())


def compare_outputs(label, out_dir, sft_t, aligned_t, alpha, override=None, allow_nonfinite=False):
    """Every tensor of out_dir against the reference; one check per tensor."""
    try:
        got = read_checkpoint(out_dir)
    except Exception as e:  # noqa: BLE001
        check(f"{label}: read output", False, repr(e))
        return
    check(f"{label}: output has exactly the aligned model's tensors",
          set(got) == {t.name for t in aligned_t},
          f"missing {sorted({t.name for t in aligned_t} - set(got))[:5]} "
          f"extra {sorted(set(got) - {t.name for t in aligned_t})[:5]}")
    sft_by_name = {t.name: t for t in sft_t}
    for at in aligned_t:
        if at.name not in got:
            continue
        gdt, gshape, gdata = got[at.name]
        st = sft_by_name[at.name]
        if at.dtype not in UINT:   # integers / bool: byte-identical pass-through
            ok = gdt == at.dtype and gshape == at.shape and gdata.tobytes() == at.raw()
            check(f"{label}: {at.name} ({at.dtype}) passes through unchanged", ok,
                  f"dtype {gdt} shape {gshape}")
            continue
        odt = override or at.dtype
        want, r, ovf, tie, nonfin = expected_result(at.dtype, at.data, st.dtype, st.data, alpha, odt)
        if gdt != odt or gshape != at.shape:
            check(f"{label}: {at.name}", False, f"dtype/shape {gdt}{gshape}, want {odt}{at.shape}")
            continue
        gdata = gdata.astype(UINT[odt])
        same = (gdata == want) | (is_nan_bits(odt, gdata) & is_nan_bits(odt, want))
        if not allow_nonfinite:
            assert not nonfin.any() and not ovf.any(), "test data must be finite and in range here"
        STATS["elements"] += want.size
        STATS["ties"] += int(tie.sum())
        wv = decode(odt, want)
        STATS["subnormal_out"] += int(((wv != 0) & (np.abs(wv) < FMT[odt].min_normal)).sum())
        STATS["neg_zero_out"] += int(((wv == 0) & np.signbit(wv)).sum())
        count_discriminating(at, st, alpha, odt, r, want)
        bad = np.nonzero(~same)[0]
        detail = ""
        if bad.size:
            lines = [f"{bad.size} of {want.size} elements differ (sft {st.dtype}, aligned "
                     f"{at.dtype}, out {odt}, alpha {alpha}); first ones:"]
            av = decode(at.dtype, at.data)
            sv = decode(st.dtype, st.data)
            for i in bad[:6]:
                lines.append(f"  [{i}] a={av[i]!r} ({fmt_bits(at.dtype, at.data[i])}) "
                             f"s={sv[i]!r} ({fmt_bits(st.dtype, st.data[i])}) r={r[i]!r} "
                             f"tie={bool(tie[i])}: expected {fmt_bits(odt, want[i])} "
                             f"({decode(odt, want[i:i + 1])[0]!r}) got {fmt_bits(odt, gdata[i])} "
                             f"({decode(odt, gdata[i:i + 1])[0]!r})")
            detail = "\n      ".join(lines)
        check(f"{label}: {at.name} ({st.dtype}->{at.dtype}, out {odt}, {want.size} el, "
              f"{int(tie.sum())} ties)", bad.size == 0, detail)


def no_leftovers(parent, out_name):
    entries = os.listdir(parent)
    hidden = [e for e in entries if e.startswith(".")]
    return out_name not in entries and not hidden, f"entries in {parent}: {entries}"


class Work:
    def __init__(self, root):
        self.root = Path(root)
        self.n = 0

    def dir(self, tag):
        self.n += 1
        d = self.root / f"{self.n:02d}-{tag}"
        d.mkdir(parents=True)
        return d


FORMS = [("dir", "dir"), ("file", "sharded"), ("sharded", "file"), ("dir", "sharded")]


def success_run(work, label, alpha_text, sft_t, aligned_t, override=None, extra=(), form_i=0,
                allow_nonfinite=False):
    d = work.dir(label.replace(" ", "_").replace("=", ""))
    sf, af = FORMS[form_i % len(FORMS)]
    sp = write_checkpoint(d / "in", sft_t, sf, "sft")
    ap = write_checkpoint(d / "in", aligned_t, af, "aligned")
    out = d / "out"
    args = list(extra)
    if override:
        args += ["--dtype", override.lower()]
    if allow_nonfinite:
        args.append("--allow-nonfinite")
    p = run_expo(sp, ap, alpha_text, str(out), args)
    if not check(f"{label}: expo exits 0 ({sf} sft, {af} aligned)", p.returncode == 0,
                 f"rc={p.returncode} stderr: {p.stderr.strip()[:2000]}"):
        return None
    compare_outputs(label, out, sft_t, aligned_t, float(alpha_text), override, allow_nonfinite)
    ok, det = no_leftovers(d, "__none__")
    check(f"{label}: no temporary folders left", ok, det)
    return out


def error_run(work, label, alpha_text, sft_t, aligned_t, extra=(), expect_in_stderr=None):
    d = work.dir(label.replace(" ", "_"))
    sp = write_checkpoint(d / "in", sft_t, "dir", "sft")
    ap = write_checkpoint(d / "in", aligned_t, "dir", "aligned")
    out_parent = d / "outs"
    out_parent.mkdir()
    out = out_parent / "out"
    p = run_expo(sp, ap, alpha_text, str(out), list(extra))
    check(f"{label}: expo fails cleanly (exit 1..127)", 0 < p.returncode < 128,
          f"rc={p.returncode} stdout: {p.stdout.strip()[:500]} stderr: {p.stderr.strip()[:500]}")
    if expect_in_stderr:
        check(f"{label}: message mentions {expect_in_stderr!r}", expect_in_stderr in p.stderr,
              p.stderr.strip()[:500])
    ok, det = no_leftovers(out_parent, "out")
    check(f"{label}: no output folder and no temporary folder", ok, det)
    return p


def f_tensor(name, dt, values):
    return Tensor(name, dt, [len(values)], encode(dt, np.array(values, dtype=np.float64)))


# ----------------------------------------------------------------------------------------------
# The tests
# ----------------------------------------------------------------------------------------------

def test_alphas(rng, work):
    alphas = ["0.1", "0.3", "2.5", "25", "-0.7", "0", "1", "0.5", "-1", "1e-3"]
    for i, alpha in enumerate(alphas):
        sft_t, al_t = build_models(rng, float(alpha), big=(i % 3 == 0))
        extra = ["--max-shard-size", "40KB"] if alpha == "0.3" else []
        success_run(work, f"alpha={alpha}", alpha, sft_t, al_t, form_i=i, extra=extra)
    # the plain "--alpha -0.7" spelling (a negative number as a separate argument)
    sft_t, al_t = build_models(rng, -0.7, big=False)
    d = work.dir("alpha_negative_separate_arg")
    sp = write_checkpoint(d / "in", sft_t, "dir", "sft")
    ap = write_checkpoint(d / "in", al_t, "dir", "aligned")
    p = subprocess.run([EXPO, "extrapolate", "--sft", sp, "--aligned", ap, "--alpha", "-0.7",
                        "--output", str(d / "out"), "--no-progress"], capture_output=True, text=True)
    if check("'--alpha -0.7' (separate argument) is accepted", p.returncode == 0, p.stderr.strip()):
        compare_outputs("--alpha -0.7", d / "out", sft_t, al_t, -0.7)


def test_overrides(rng, work):
    i = 0
    for override, alphas in [("BF16", ["1", "0.5", "0.3", "0"]), ("F16", ["1", "0.5", "2.5"]),
                             ("F32", ["1", "0.5", "0.1"]), ("F64", ["0.3", "25"])]:
        for alpha in alphas:
            sft_t, al_t = build_models(rng, float(alpha), override=override, big=(i == 0))
            success_run(work, f"--dtype {override.lower()} alpha={alpha}", alpha, sft_t, al_t,
                        override=override, form_i=i)
            i += 1


def test_multi_alpha(rng, work):
    for alphas, override, pattern in [(["0.1", "0.5"], None, "out-{alpha}"),
                                      (["1", "0.3", "25"], "F32", "m{alpha}/x")]:
        sft_t, al_t = build_models(rng, float(alphas[1]), override=override, big=override is None,
                                   also=[float(a) for a in alphas])
        d = work.dir("multi_alpha")
        sp = write_checkpoint(d / "in", sft_t, "sharded", "sft")
        ap = write_checkpoint(d / "in", al_t, "dir", "aligned")
        extra = ["--dtype", override.lower()] if override else []
        p = run_expo(sp, ap, ",".join(alphas), str(d / pattern), extra)
        label = f"multi-alpha {','.join(alphas)}" + (f" --dtype {override.lower()}" if override else "")
        if not check(f"{label}: expo exits 0", p.returncode == 0, p.stderr.strip()[:2000]):
            continue
        for a in alphas:
            out = d / pattern.replace("{alpha}", a)
            if check(f"{label}: {out.relative_to(d)} exists", out.is_dir()):
                compare_outputs(f"{label} [{a}]", out, sft_t, al_t, float(a), override)
        parents = {(d / pattern.replace("{alpha}", a)).parent for a in alphas}
        hidden = [str(q / e) for q in parents for e in os.listdir(q) if e.startswith(".")]
        check(f"{label}: no temporary folders", not hidden, str(hidden))


def test_edge_layouts(rng, work):
    # tensors whose data is not aligned to their element size (an odd-sized U8 tensor first),
    # scalar and empty shapes, and multi-dimensional shapes
    sft, al = [], []
    s, a = int_pair(rng, "a.first.odd_bytes", "U8", [3])
    sft.append(s)
    al.append(a)
    for j, (sdt, adt) in enumerate([("BF16", "F32"), ("F32", "F64"), ("F16", "F16"), ("F64", "BF16")]):
        s, a = make_pair(rng, f"b.misaligned.{j}", sdt, adt, adt, 0.3)
        s.shape = a.shape = [s.data.size]
        sft.append(s)
        al.append(a)
        s, a = int_pair(rng, f"b.misaligned.{j}.pad", "U8", [1 + 2 * j])
        sft.append(s)
        al.append(a)
    success_run(work, "misaligned tensor data", "0.3", sft, al)

    sft, al = [], []
    s, a = make_pair(rng, "c.matrix", "F32", "BF16", "BF16", 0.3)
    n = s.data.size - s.data.size % 12
    for t in (s, a):
        t.data = t.data[:n]
        t.shape = [n // 12, 3, 4]
    sft.append(s)
    al.append(a)
    sft.append(f_tensor("c.scalar", "F32", [1.5]))
    al.append(f_tensor("c.scalar", "BF16", [2.0]))
    sft[-1].shape = al[-1].shape = []
    sft.append(Tensor("c.empty", "F16", [0, 4], np.zeros(0, np.uint16)))
    al.append(Tensor("c.empty", "F16", [0, 4], np.zeros(0, np.uint16)))
    success_run(work, "scalar, empty and 3-d shapes", "0.3", sft, al)


def test_hand_picked(rng, work):
    """A few cases spelled out by hand, so a failure reads directly."""
    bf = FMT["BF16"]
    half = 2.0 ** (bf.emax - bf.mant - 1)   # half an ulp at the top of bf16
    cases_sft = [
        # r = 2a - s: exact ties of bf16 at alpha = 1
        f_tensor("h.ties_bf16", "BF16", [1.0 - 2 ** -8, 1.0 - 3 * 2 ** -8, -(1.0 - 2 ** -8), 0.0, 0.0]),
        # results just below the overflow threshold of bf16, from float64 inputs (-> max)
        f_tensor("h.near_max_bf16", "F64", [bf.max - (half - 2.0 ** 80), -(bf.max - (half - 2.0 ** 80))]),
        # double rounding trap: r = 1 + 2^-8 + 2^-30 must round up to 1 + 2^-7
        f_tensor("h.no_double_rounding", "F64", [1.0 - 2 ** -8 - 2 ** -30, 2.0 ** -30]),
        # f16 subnormal results and ties at the subnormal boundary
        f_tensor("h.f16_sub", "F16", [2.0 ** -24, 0.0, 2.0 ** -14, -0.0]),
        # signed zeros
        f_tensor("h.zeros", "F32", [-0.0, 0.0, -0.0, 0.0]),
    ]
    cases_al = [
        f_tensor("h.ties_bf16", "BF16", [1.0, 1.0, -1.0, -0.0, 2.0 ** -133]),
        f_tensor("h.near_max_bf16", "F64", [bf.max, -bf.max]),
        f_tensor("h.no_double_rounding", "F64", [1.0, 2.0 ** -30]),
        f_tensor("h.f16_sub", "F16", [2.0 ** -24 * 3, 2.0 ** -24, 2.0 ** -14 - 2.0 ** -24, -0.0]),
        f_tensor("h.zeros", "F32", [-0.0, -0.0, 0.0, 0.0]),
    ]
    out = success_run(work, "hand-picked (alpha 1, bf16 out for F64)", "1", cases_sft, cases_al)
    if out is not None:
        got = read_checkpoint(out)
        check("hand-picked: 1 + (1 - (1-2^-8)) = 1 + 2^-8 ties to even 1.0 (0x3f80)",
              int(got["h.ties_bf16"][2][0]) == 0x3f80, fmt_bits("BF16", got["h.ties_bf16"][2][0]))
        check("hand-picked: 1 + (1 - (1-3*2^-8)) = 1 + 3*2^-8 ties to even 1+2^-6 (0x3f82)",
              int(got["h.ties_bf16"][2][1]) == 0x3f82, fmt_bits("BF16", got["h.ties_bf16"][2][1]))
        check("hand-picked: -0 + (-0 - 0) = -0",
              int(got["h.ties_bf16"][2][3]) == 0x8000, fmt_bits("BF16", got["h.ties_bf16"][2][3]))
    # the same near-max and double-rounding values rounded to bf16 by --dtype
    out = success_run(work, "hand-picked --dtype bf16", "1", cases_sft, cases_al, override="BF16")
    if out is not None:
        got = read_checkpoint(out)
        check("hand-picked: max + half ulp - 2^80 rounds to bf16 max (0x7f7f), not overflow",
              [int(x) for x in got["h.near_max_bf16"][2]] == [0x7f7f, 0xff7f],
              str([fmt_bits("BF16", x) for x in got["h.near_max_bf16"][2]]))
        check("hand-picked: 1 + 2^-8 + 2^-30 rounds up to 0x3f81 (no double rounding via f32)",
              int(got["h.no_double_rounding"][2][0]) == 0x3f81,
              fmt_bits("BF16", got["h.no_double_rounding"][2][0]))


def test_errors(rng, work):
    bf = FMT["BF16"]
    filler_s = f_tensor("z.filler", "F32", [1.0, 2.0, 3.0])
    filler_a = f_tensor("z.filler", "F32", [1.5, 2.5, 3.5])

    def pair(name, sdt, svals, adt, avals):
        return [filler_s, f_tensor(name, sdt, svals)], [filler_a, f_tensor(name, adt, avals)]

    def expect_overflow(label, s_t, a_t, alpha, override=None):
        t_s, t_a = s_t[-1], a_t[-1]
        _, _, ovf, _, _ = expected_result(t_a.dtype, t_a.data, t_s.dtype, t_s.data, alpha,
                                          override or t_a.dtype)
        check(f"{label}: the reference agrees this overflows", bool(ovf.any()))

    # bf16 overflow: 3e38 + (3e38 - 2e38) > max
    s_t, a_t = pair("e.big", "BF16", [0.5, 2e38], "BF16", [0.25, 3e38])
    expect_overflow("overflow bf16", s_t, a_t, 1.0)
    error_run(work, "overflow bf16 (alpha 1)", "1", s_t, a_t, expect_in_stderr="overflow")
    # exactly max + half ulp: a tie that rounds to infinity
    s_t, a_t = pair("e.tie_inf", "F32", [bf.max - 2.0 ** 119], "F32", [bf.max])
    expect_overflow("overflow bf16 tie", s_t, a_t, 1.0, "BF16")
    error_run(work, "overflow bf16 at max + half ulp (--dtype bf16)", "1", s_t, a_t,
              extra=["--dtype", "bf16"])
    # f16: 60000 + 0.1 * 60000 = 66000 > 65520
    s_t, a_t = pair("e.f16", "F16", [0.0, 0.0], "F16", [1.0, 60000.0])
    expect_overflow("overflow f16", s_t, a_t, 0.1)
    error_run(work, "overflow f16 (alpha 0.1)", "0.1", s_t, a_t)
    # float64 itself overflows
    s_t, a_t = pair("e.f64", "F64", [-1e308], "F64", [1e308])
    expect_overflow("overflow f64", s_t, a_t, 1.0)
    error_run(work, "overflow float64 (alpha 1)", "1", s_t, a_t)
    # f32 with --dtype f16
    s_t, a_t = pair("e.f32", "F32", [-1000.0, 0.0], "F32", [1000.0, 0.0])
    expect_overflow("overflow --dtype f16", s_t, a_t, 40.0, "F16")
    error_run(work, "overflow f32 -> --dtype f16 (alpha 40)", "40", s_t, a_t, extra=["--dtype", "f16"])
    # several alphas, only the last overflows: no output at all
    s_t, a_t = pair("e.multi", "BF16", [1e37], "BF16", [3e37])
    expect_overflow("overflow multi-alpha", s_t, a_t, 25.0)
    d = work.dir("overflow_multi_alpha")
    sp = write_checkpoint(d / "in", s_t, "dir", "sft")
    ap = write_checkpoint(d / "in", a_t, "dir", "aligned")
    (d / "outs").mkdir()
    p = run_expo(sp, ap, "0.1,25", str(d / "outs" / "o-{alpha}"))
    check("overflow at the 2nd of two alphas: fails", 0 < p.returncode < 128, p.stderr.strip())
    check("overflow at the 2nd of two alphas: no output folders, no temporaries",
          os.listdir(d / "outs") == [], str(os.listdir(d / "outs")))
    # finite overflow is still an error with --allow-nonfinite
    s_t, a_t = pair("e.big", "BF16", [0.5, 2e38], "BF16", [0.25, 3e38])
    error_run(work, "overflow bf16 with --allow-nonfinite", "1", s_t, a_t, extra=["--allow-nonfinite"])

    # non-finite inputs
    nan, inf = float("nan"), float("inf")
    nonfinite_cases = [
        ("NaN in aligned (BF16)", pair("n.a", "BF16", [1.0, 2.0], "BF16", [1.0, nan])),
        ("NaN in sft (F16)", pair("n.s", "F16", [nan, 2.0], "F16", [1.0, 2.0])),
        ("+Inf in sft (F32 -> BF16 aligned)", pair("n.s32", "F32", [1.0, inf], "BF16", [1.0, 2.0])),
        ("-Inf in aligned (F64)", pair("n.a64", "F64", [1.0, 2.0], "F64", [-inf, 2.0])),
    ]
    for label, (s_t, a_t) in nonfinite_cases:
        error_run(work, label, "0.5", s_t, a_t, expect_in_stderr="--allow-nonfinite")

    # --allow-nonfinite: NaN/Inf carried through as float64 arithmetic makes them
    vals = [nan, inf, -inf, 1.0, -2.0, 0.0, -0.0, 3.0]
    va, vs = np.meshgrid(vals, vals)
    s_all, a_all = [], []
    for sdt in FLOATS:
        for adt in FLOATS:
            s_all.append(f_tensor(f"n.all.{sdt}_{adt}", sdt, vs.ravel()))
            a_all.append(f_tensor(f"n.all.{sdt}_{adt}", adt, va.ravel()))
    for alpha in ["0.5", "0", "-1"]:
        success_run(work, f"--allow-nonfinite alpha={alpha}", alpha, s_all, a_all,
                    allow_nonfinite=True)
    success_run(work, "--allow-nonfinite --dtype bf16", "2.5", s_all, a_all, override="BF16",
                allow_nonfinite=True)
    success_run(work, "--allow-nonfinite --dtype f16", "0.3", s_all, a_all, override="F16",
                allow_nonfinite=True)


def test_existing_output(rng, work):
    sft_t, al_t = build_models(rng, 0.5, big=False)
    d = work.dir("existing_output")
    sp = write_checkpoint(d / "in", sft_t, "dir", "sft")
    ap = write_checkpoint(d / "in", al_t, "dir", "aligned")
    out = d / "outs" / "out"
    out.mkdir(parents=True)
    (out / "marker").write_text("keep me")
    p = run_expo(sp, ap, "0.5", str(out))
    check("existing output without --force: fails", 0 < p.returncode < 128, p.stderr.strip())
    check("existing output without --force: left untouched",
          sorted(os.listdir(out)) == ["marker"] and
          not [e for e in os.listdir(out.parent) if e.startswith(".")])
    # The folder holds a file expo did not write: --force alone refuses it (exit 2).
    p = run_expo(sp, ap, "0.5", str(out), ["--force"])
    check("--force over a folder expo did not write: refused", p.returncode == 2, p.stderr.strip())
    check("--force over a folder expo did not write: left untouched",
          sorted(os.listdir(out)) == ["marker"])
    p = run_expo(sp, ap, "0.5", str(out), ["--force", "--force-any-folder"])
    if check("existing output with --force: succeeds", p.returncode == 0, p.stderr.strip()):
        check("existing output with --force: replaced", not (out / "marker").exists())
        compare_outputs("--force", out, sft_t, al_t, 0.5)
        check("existing output with --force: no temporary folders",
              not [e for e in os.listdir(out.parent) if e.startswith(".")],
              str(os.listdir(out.parent)))


def main():
    global EXPO
    EXPO = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("EXPO_BIN", str(REPO_ROOT / "build" / "expo"))
    EXPO = str(Path(EXPO).resolve())
    if not os.access(EXPO, os.X_OK):
        print(f"expo binary not found or not executable: {EXPO}")
        print("0 passed, 1 failed")
        return 1
    t0 = time.time()
    info(f"expo: {EXPO}; seed {SEED}; numpy {np.__version__}")
    rng = np.random.default_rng(SEED)
    tmp = tempfile.mkdtemp(prefix="expo-ref-")
    try:
        with np.errstate(all="ignore"):
            self_test_rounders(rng)
            work = Work(tmp)
            for test in (test_alphas, test_overrides, test_multi_alpha, test_edge_layouts,
                         test_hand_picked, test_errors, test_existing_output):
                t1 = time.time()
                try:
                    test(rng, work)
                except Exception as e:  # noqa: BLE001
                    import traceback
                    traceback.print_exc()
                    check(f"{test.__name__} raised", False, repr(e))
                info(f"{test.__name__}: {time.time() - t1:.2f}s")
    finally:
        if os.environ.get("EXPO_TEST_KEEP"):
            info(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    info(f"compared {STATS['elements']} floating elements in {STATS['runs']} expo runs: "
         f"{STATS['ties']} exact rounding ties, {STATS['subnormal_out']} subnormal results, "
         f"{STATS['neg_zero_out']} negative-zero results; {time.time() - t0:.1f}s")
    info(f"the data tells the contract from: a fused multiply-add in {STATS['fma_distinct']} "
         f"sampled elements, bf16 rounding via float32 in {STATS['double_round_distinct']} elements")
    check("coverage: exact ties, subnormal and negative-zero results were compared",
          STATS["ties"] >= 10000 and STATS["subnormal_out"] >= 1000 and STATS["neg_zero_out"] >= 100,
          str(STATS))
    check("coverage: the data separates the contract from FMA and from f32 double rounding",
          STATS["fma_distinct"] > 0 and STATS["double_round_distinct"] > 0, str(STATS))
    if FAILURES:
        info("failed: " + "; ".join(FAILURES[:20]) + (" ..." if len(FAILURES) > 20 else ""))
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
