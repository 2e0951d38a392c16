#pragma once
// The forward pass of a Llama-family decoder (Llama, Mistral, Qwen2, Qwen3, InternLM2,
// Gemma 2 and 3, OLMo 2, Phi-3, Mixtral's mixture of experts) over a batch
// of sequences, each bringing any number of new tokens (a whole prompt, a chunk of one, or the
// one token just sampled) and its own KV cache. Linear layers run on all the batch's tokens at
// once, so each weight is read once per step however many sequences share it; attention runs
// per sequence against its own cache.
//
// Every row's result depends only on its own sequence: the batch a sequence shares and the
// thread count change nothing (the matmul kernel is batch invariant, attention is per
// sequence, and a token's experts and the order their outputs are added in are its own).
#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace expo {

struct ForwardItem {
  KvCache* cache;
  std::span<const int32_t> tokens;  // appended after cache->length()
  bool all_logits = false;          // one output row per token, else only the last token's
};

// The workspace bytes a forward pass needs per token it runs (activations, not the KV cache
// nor the output rows): what memory checks add per token of a step.
uint64_t activation_bytes_per_token(const ModelConfig& config);

class Transformer {
 public:
  explicit Transformer(const LoadedModel& model);

  const ModelConfig& config() const { return config_; }
  // Output width: the vocabulary, or num_labels for a reward model.
  uint64_t output_size() const { return config_.output_size(); }

  // Runs the items' tokens through the model and appends them to their caches. Returns the
  // output rows, items in order (all tokens' rows or the last token's row each), row-major
  // [rows, output_size()]; valid until the next call.
  const std::vector<float>& forward(std::span<const ForwardItem> items, ThreadPool& pool);

 private:
  void attention(std::span<const ForwardItem> items, uint64_t layer, ThreadPool& pool);
  // The MLP of `layer` on xn_ (T rows) into tmp_: dense, Phi-3's fused gate_up, or experts.
  void mlp(uint64_t layer, uint64_t T, ThreadPool& pool);
  void experts(uint64_t layer, uint64_t T, ThreadPool& pool);

  const ModelConfig& config_;
  const ModelWeights& w_;
  // Workspace, [tokens, width] each, grown as needed and reused.
  std::vector<float> x_, xn_, q_, k_, v_, qkv_, att_, tmp_, gate_, up_, gate_up_, rows_, out_;
  // Rope angles per token, [tokens, rotary_dim / 2]: [0] for global layers, [1] for Gemma 3's
  // local ones.
  std::vector<double> cos_[2], sin_[2];
  // Mixture of experts: router logits [tokens, experts]; per token its experts (ascending) and
  // weights; per expert its tokens and their slot; expert inputs and outputs gathered by slot.
  std::vector<float> router_, expert_in_, expert_out_;
  std::vector<uint32_t> chosen_;
  std::vector<float> chosen_weight_;
  std::vector<std::vector<uint64_t>> expert_tokens_;
  std::vector<uint64_t> token_item_, token_pos_;  // per token: its item and position
  std::vector<uint64_t> item_first_;              // per item: its first token index
  std::vector<std::vector<float>> scores_;        // per task scratch
};

}  // namespace expo
