#pragma once
// A Hugging Face model as llama.cpp's GGUF names it: the architecture ("llama", "qwen2",
// "qwen3", "gemma2", "gemma3", "olmo2", "phi3", "internlm2"), the hyperparameters llama.cpp
// reads (`<arch>.block_count`, `<arch>.attention.head_count`, ...), and for every GGUF tensor
// the Hugging Face tensors it is made of and how: llama.cpp's row order for the rotary halves
// of q and k in the "llama" and "internlm2" graphs, InternLM2's packed wqkv split into q, k and
// v, Mixtral's experts stacked, Gemma's norms stored as 1 + w, Phi-3's longrope factors as
// tensors. Everything llama.cpp would read differently from transformers is refused by name.
//
// The reverse (a GGUF file read as a Hugging Face model) uses the same recipes.
#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "model/config.h"

namespace expo {

// One GGUF tensor: made from Hugging Face tensors, or computed (Phi-3's rope factors).
struct GgufTensorRecipe {
  std::string name;             // "blk.0.attn_q.weight"
  std::vector<uint64_t> shape;  // row-major, as Hugging Face writes it
  // The Hugging Face tensors, one after the other along the rows (Mixtral: one expert each,
  // stacked into [experts, rows, cols]); usually one.
  std::vector<std::string> sources;
  // The output's rows as rows of the (concatenated) sources; empty: the rows as they are.
  std::vector<uint64_t> rows;
  double add = 0;              // added to every value: Gemma's norms are stored as 1 + w
  bool always_f32 = false;     // 1-D tensors (norms, biases, rope factors) stay F32, as llama.cpp
  std::vector<double> values;  // a computed tensor (no sources)
};

struct GgufModelRecipe {
  std::string arch;
  GgufMetadata metadata{"GGUF metadata"};  // the architecture's keys only
  std::vector<GgufTensorRecipe> tensors;
  std::vector<std::string> notes;  // what a user should know (llama.cpp differs past a window)
};

// The recipe for a model of `config` whose checkpoint has `tensor_names`. Throws, naming the
// class and the field, for what has no GGUF form llama.cpp reads the same way (a reward model,
// dynamic rope, Gemma's query_pre_attn_scalar other than head_dim, ...).
GgufModelRecipe gguf_recipe(const ModelConfig& config,
                            const std::vector<std::string>& tensor_names);

// The rows of a [heads * head_dim, cols] q or k projection in llama.cpp's order: in each head,
// the rotary halves interleaved (row 2i + j of a head is row j * head_dim / 2 + i).
std::vector<uint64_t> rope_interleave_rows(uint64_t heads, uint64_t head_dim);

}  // namespace expo
