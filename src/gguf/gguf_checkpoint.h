#pragma once
// A GGUF file read as a Hugging Face checkpoint, so that everything that runs a model
// (generate, score, serve, search, extrapolation on load) runs one given as model.gguf.
//
// The metadata becomes the config.json a model of that shape has (llama -> LlamaForCausalLM or
// MixtralForCausalLM, internlm2 -> LlamaForCausalLM, which computes the same, qwen2, qwen3,
// gemma2, gemma3, olmo2, phi3), and the tokenizer metadata becomes tokenizer.json and
// tokenizer_config.json (gguf/gguf_tokenizer.h); both are written to a temporary folder that
// lives as long as the checkpoint. The tensors are found through the same recipes the GGUF
// writer uses (gguf/gguf_arch.h), read backwards: most are views of the file's map under their
// Hugging Face names (a Mixtral layer's stacked experts as one view per expert); q and k in
// llama.cpp's rope row order are put back in transformers' order, in memory. What has no
// config.json spelling travels in Checkpoint::gguf(): Gemma's norms stored as 1 + w, and
// Llama 3's rope_freqs.
//
// F32, F16, BF16 and Q8_0 tensors are read; any other type is refused, naming the tensor.
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "io/checkpoint.h"
#include "io/gguf.h"

namespace expo {

// Makes Checkpoint::open read .gguf files through open_gguf_checkpoint. Call once at start
// (the command line's main, the test runner).
void register_gguf_checkpoints();

Checkpoint open_gguf_checkpoint(const std::string& path);

// Only the tokenizer files of a GGUF file (tokenizer.json, tokenizer_config.json), in a
// temporary folder that lives as long as `keep`: for commands that need no weights.
struct GgufTokenizerFolder {
  std::filesystem::path path;
  std::shared_ptr<const void> keep;
};
GgufTokenizerFolder gguf_tokenizer_folder(const std::string& path);

// The config.json the metadata of `gguf` stands for, and what it holds that config.json cannot
// say. Errors name `label` (the file) and the key or tensor.
struct GgufHfConfig {
  nlohmann::json config;
  GgufForm form;
};
GgufHfConfig gguf_hf_config(const GgufContents& gguf, const uint8_t* data,
                            const std::string& label);

}  // namespace expo
