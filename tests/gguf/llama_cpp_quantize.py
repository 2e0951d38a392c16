#!/usr/bin/python3
"""Rewrites a GGUF file with llama.cpp's own quantizer (llama_model_quantize, what the
llama-quantize tool runs), from the libllama that node-llama-cpp ships in tests/gguf/node_modules
(scripts/install-npm-deps.sh). The output is a GGUF file written by llama.cpp, not by expo: its
metadata copied and extended by llama.cpp (general.file_type, general.quantization_version), its
tensors in llama.cpp's order and, for q8_0, quantized by ggml's own Q8_0 code.

  llama_cpp_quantize.py IN.gguf OUT.gguf TYPE     TYPE: f32, f16, bf16 or q8_0

llama.cpp's default parameters otherwise (1-D tensors stay F32). Exits non-zero, naming what
failed, when the library is missing, its release is not the one whose parameter struct is declared
here, or llama.cpp refuses the file.
"""
import ctypes
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = os.path.join(HERE, "node_modules")
# llama_ftype values (llama.cpp include/llama.h)
FTYPES = {"f32": 0, "f16": 1, "q8_0": 7, "bf16": 32}
# The release whose llama_model_quantize_params is declared below (include/llama.h of the source
# bundle node-llama-cpp ships, node-llama-cpp/llama/gitRelease.bundle).
RELEASE = "v0.5.0"


class QuantizeParams(ctypes.Structure):
    _fields_ = [("nthread", ctypes.c_int32), ("ftype", ctypes.c_int),
                ("output_tensor_type", ctypes.c_int), ("token_embedding_type", ctypes.c_int),
                ("allow_requantize", ctypes.c_bool), ("quantize_output_tensor", ctypes.c_bool),
                ("only_copy", ctypes.c_bool), ("pure", ctypes.c_bool),
                ("keep_split", ctypes.c_bool), ("dry_run", ctypes.c_bool),
                ("imatrix", ctypes.c_void_p), ("kv_overrides", ctypes.c_void_p),
                ("tt_overrides", ctypes.c_void_p), ("prune_layers", ctypes.c_void_p),
                ("max_buf_size", ctypes.c_size_t)]


def library_folder():
    info = os.path.join(MODULES, "node-llama-cpp", "llama", "binariesGithubRelease.json")
    if not os.path.exists(info):
        raise RuntimeError("%s is missing: run bash scripts/install-npm-deps.sh" % info)
    release = json.load(open(info)).get("release")
    if release != RELEASE:
        raise RuntimeError("%s: llama.cpp release %r, but llama_cpp_quantize.py declares the "
                           "parameter struct of %s: check include/llama.h and update it"
                           % (info, release, RELEASE))
    found = glob.glob(os.path.join(MODULES, "@node-llama-cpp", "*", "bins", "*", "libllama*.so"))
    if not found:
        raise RuntimeError("no libllama*.so under %s/@node-llama-cpp" % MODULES)
    return os.path.dirname(found[0]), found[0]


def quantize(src, dst, kind):
    folder, libllama = library_folder()
    for dep in sorted(glob.glob(os.path.join(folder, "libggml-base*.so"))) + \
            sorted(glob.glob(os.path.join(folder, "libggml.*so"))):
        ctypes.CDLL(dep, mode=ctypes.RTLD_GLOBAL)
    lib = ctypes.CDLL(libllama)
    lib.llama_model_quantize_default_params.restype = QuantizeParams
    lib.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                         ctypes.POINTER(QuantizeParams)]
    lib.llama_model_quantize.restype = ctypes.c_uint32
    params = lib.llama_model_quantize_default_params()
    params.ftype = FTYPES[kind]
    params.nthread = 1
    rc = lib.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError("llama_model_quantize(%s -> %s, %s) returned %d" % (src, dst, kind, rc))


def main(argv):
    if len(argv) != 4 or argv[3] not in FTYPES:
        print(__doc__)
        return 2
    try:
        quantize(argv[1], argv[2], argv[3])
    except RuntimeError as e:
        print("llama_cpp_quantize.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
