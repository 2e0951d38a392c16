#pragma once
// Small Llama checkpoints with random weights, written as real Hugging Face folders
// (config.json, generation_config.json, safetensors shards). The demo and the tests use them:
// no weights can be downloaded here, and none are needed to exercise the real code paths.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace expo {

struct RandomLlamaSpec {
  int layers = 2;
  int hidden = 64;
  int intermediate = 160;
  int heads = 4;
  int kv_heads = 2;
  int vocab = 256;
  DType dtype = DType::BF16;
  bool tied = false;
  uint64_t max_shard_size = 5'000'000'000;
  // A reward model: LlamaForSequenceClassification with one label (score.weight [1, hidden])
  // instead of the language-model head.
  bool reward_model = false;
  int bos_id = 1, eos_id = 2;  // config.json and generation_config.json
  int max_positions = 2048;    // max_position_embeddings
};

// Writes one model whose every weight is weight(tensor name, shape, element index), called in
// file order (tensor by tensor, elements in row-major order).
using WeightFn = std::function<double(const std::string& name, const std::vector<uint64_t>& shape,
                                      uint64_t index)>;
void write_llama(const std::filesystem::path& dir, const RandomLlamaSpec& spec,
                 const WeightFn& weight);

// Writes one model; `seed` fixes its weights. `noise_seed` != 0 adds a small perturbation of
// scale `noise` on top (an "aligned" model that moved away from the same "SFT" weights).
void write_random_llama(const std::filesystem::path& dir, const RandomLlamaSpec& spec,
                        uint64_t seed, uint64_t noise_seed = 0, double noise = 0.0);

// An SFT model and an aligned model near it, in two folders.
void write_random_pair(const std::filesystem::path& sft_dir,
                       const std::filesystem::path& aligned_dir, const RandomLlamaSpec& spec,
                       uint64_t seed);

}  // namespace expo
