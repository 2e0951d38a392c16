#pragma once
// A model's weights as the engine uses them: non-owning views into memory-mapped safetensors
// files in their file dtype (F32, BF16 or F16), or, for extrapolation on load, into buffers
// this object owns that hold theta1 + alpha * (theta1 - theta0) computed tensor by tensor
// with the same kernel as `expo extrapolate`. Either way the process holds one model's
// weights, never three.
//
// Every tensor an architecture needs is listed once (`for_each_weight`); loading, checking and
// memory accounting all walk that one list.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "model/config.h"
#include "model/matmul.h"

namespace expo {

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;  // [hidden], converted to float32
  WeightView q, k, v;                      // separate projections (Llama, Mistral, Qwen2)
  WeightView qkv;                          // InternLM2's packed wqkv
  WeightView o;
  std::vector<float> q_bias, k_bias, v_bias, qkv_bias, o_bias;  // empty when absent
  WeightView gate, up, down;
  std::vector<float> gate_bias, up_bias, down_bias;
};

struct ModelWeights {
  WeightView embed;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;
  WeightView head;  // lm_head [vocab, hidden] (the embedding when tied) or score [labels, hidden]
};

// Where the weights come from.
struct WeightSource {
  std::string model;  // --model: a checkpoint spec (folder, file or repo id)
  // Extrapolation on load: --sft, --aligned, --alpha.
  std::string sft, aligned;
  double alpha = 0.0;
  bool allow_nonfinite = false;
  bool extrapolate() const { return model.empty(); }

  static WeightSource from_model(std::string model) {
    WeightSource s;
    s.model = std::move(model);
    return s;
  }
  static WeightSource from_pair(std::string sft, std::string aligned, double alpha) {
    WeightSource s;
    s.sft = std::move(sft);
    s.aligned = std::move(aligned);
    s.alpha = alpha;
    return s;
  }
};

class LoadedModel {
 public:
  // Reads config.json (and generation_config.json) of the model (the aligned one when
  // extrapolating), checks every tensor's name, shape and dtype, and maps or computes them.
  static std::unique_ptr<LoadedModel> load(const WeightSource& source, ThreadPool& pool);
  // Only the config and the tensor headers: what load() would need in memory, for --max-memory.
  static uint64_t weight_bytes(const WeightSource& source);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const std::filesystem::path& folder() const { return folder_; }
  uint64_t bytes() const { return bytes_; }

 private:
  ModelConfig config_;
  ModelWeights weights_;
  std::filesystem::path folder_;
  uint64_t bytes_ = 0;
  std::unique_ptr<Checkpoint> checkpoint_;  // --model: the views point into its maps
  std::vector<std::unique_ptr<uint8_t[]>> owned_;  // extrapolated tensors
};

// The config (with generation_config.json's eos ids merged) of a checkpoint folder.
ModelConfig read_model_config(const Checkpoint& checkpoint);

}  // namespace expo
