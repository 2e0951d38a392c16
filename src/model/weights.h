#pragma once
// A model's weights as the engine uses them, loaded from an opened ModelSource
// (model/model_source.h): non-owning views into memory-mapped safetensors files in their file
// dtype (F32, BF16 or F16), or, for extrapolation on load, into buffers this object owns that
// hold theta1 + alpha * (theta1 - theta0) computed tensor by tensor with the same kernel as
// `expo extrapolate`. Either way the process holds one model's weights, never three.
//
// Every tensor an architecture needs is listed once (`for_each_weight`); checking (when a
// source is opened) and loading both walk that one list.
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
#include "model/model_source.h"

namespace expo {

// One expert of a mixture-of-experts MLP (Mixtral's w1, w3, w2).
struct ExpertWeights {
  WeightView gate, up, down;
};

// Norm weights are float32 and, for Gemma, already hold (1 + weight), as transformers computes
// them in float32.
struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;            // [hidden] before attention / the MLP
  std::vector<float> post_attn_norm, post_ffn_norm;  // Gemma 2/3, OLMo 2: on their outputs
  std::vector<float> q_norm, k_norm;                 // Qwen3, Gemma 3, OLMo 2
  WeightView q, k, v;                                // separate projections
  WeightView qkv;  // packed: InternLM2's wqkv (grouped per kv head), Phi-3's qkv_proj (q, k, v)
  WeightView o;
  std::vector<float> q_bias, k_bias, v_bias, qkv_bias, o_bias;  // empty when absent
  WeightView gate, up, down;
  WeightView gate_up;  // Phi-3's gate_up_proj: gate rows, then up rows
  std::vector<float> gate_bias, up_bias, down_bias;
  WeightView router;                   // Mixtral: [experts, hidden]
  std::vector<ExpertWeights> experts;  // Mixtral
};

struct ModelWeights {
  WeightView embed;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;
  // lm_head [vocab, hidden] (the embedding when tied), or a reward head: score [labels, hidden]
  // or InternLM2's v_head [1, hidden]
  WeightView head;
};

class LoadedModel {
 public:
  // The weights of `source` (its tensors were checked when it was opened): one checkpoint's as
  // views into its maps, which this model keeps open (alpha must be 0); a pair's extrapolated
  // at `alpha`, tensor by tensor, into buffers this model owns, with the kernel and the checks
  // of `expo extrapolate` (NaN/Inf weights refused unless `allow_nonfinite`).
  static std::unique_ptr<LoadedModel> load(const ModelSource& source, double alpha,
                                           bool allow_nonfinite, ThreadPool& pool);
  // One checkpoint, read as is (a pair needs an alpha).
  static std::unique_ptr<LoadedModel> load(const ModelSource& source, ThreadPool& pool);
  ~LoadedModel();

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const std::filesystem::path& folder() const { return folder_; }
  uint64_t bytes() const { return bytes_; }

 private:
  ModelConfig config_;
  ModelWeights weights_;
  std::filesystem::path folder_;
  uint64_t bytes_ = 0;
  std::shared_ptr<const Checkpoint> checkpoint_;   // one checkpoint: the views point into its maps
  std::vector<std::unique_ptr<uint8_t[]>> owned_;  // extrapolated tensors
};

// Tensors a checkpoint may carry that the engine (and a GGUF of it) does not use: rope's cached
// inv_freq, and the head of a model whose config ties it to the embedding.
bool is_ignorable_tensor(const std::string& name, const ModelConfig& config);

// The names of the tensors a model of `config` reads, in the engine's order.
std::vector<std::string> model_tensor_names(const ModelConfig& config);

// Checks that `checkpoint` holds the tensors the architecture of `config` needs, with their
// shapes and a dtype the engine reads, and no others; one error lists every problem, naming
// `what` ("model", "aligned model") and the checkpoint.
void check_model_tensors(const ModelConfig& config, const Checkpoint& checkpoint,
                         const std::string& what);

}  // namespace expo
