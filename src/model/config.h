#pragma once
// A model's config.json, read strictly: every field the engine uses is checked, every
// architecture and setting it does not implement is an error that names it and lists what is
// supported. Nothing is silently ignored.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace expo {

enum class Family {
  kLlama,
  kMistral,
  kQwen2,
  kQwen3,
  kInternLM2,
  kGemma2,
  kGemma3,
  kOlmo2,
  kPhi3,
  kMixtral
};

// kFreqFactors: each frequency divided by a factor of its own (llama.cpp's rope_freqs tensor,
// how a GGUF file carries Llama 3's scaling; never read from config.json).
enum class RopeKind { kDefault, kLinear, kLlama3, kDynamic, kLongRope, kFreqFactors };

struct RopeScaling {
  RopeKind kind = RopeKind::kDefault;
  double factor = 1.0;
  double low_freq_factor = 1.0;        // llama3
  double high_freq_factor = 4.0;       // llama3
  uint64_t original_max_position = 0;  // llama3, dynamic, longrope
  // longrope (Phi-3): per-frequency divisors, the short ones up to original_max_position and
  // the long ones past it, and the factor cos and sin are multiplied by.
  std::vector<double> short_factor, long_factor;
  double attention_factor = 1.0;
  std::vector<double> freq_factors;  // kFreqFactors: one per frequency
};

// The MLP's activation (hidden_act, or Gemma's hidden_activation).
enum class Activation { kSilu, kGeluTanh, kGelu };

// Where a layer's RMSNorms sit.
enum class NormLayout {
  kPre,       // Llama: input_layernorm before attention, post_attention_layernorm before the MLP
  kSandwich,  // Gemma 2/3: also a norm on the attention output and on the MLP output
  kPost,      // OLMo 2: only the norms on the attention and MLP outputs
};

// RMSNorm of queries and keys before rope.
enum class QkNorm {
  kNone,
  kPerHead,  // Qwen3, Gemma 3: over each head, weights [head_dim]
  kWhole,    // OLMo 2: over the whole projection, weights [num_heads * head_dim]
};

// What a reward model's head is and where it reads the sequence.
enum class RewardHead {
  kNone,
  kScore,  // *ForSequenceClassification: score.weight at the last token that is not pad_token_id
  kValue,  // InternLM2ForRewardModel: v_head.weight at the last token, after reward_token_id
};

struct ModelConfig {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  Family family = Family::kLlama;
  bool is_reward_model = false;  // a reward head (score or v_head), no LM head
  RewardHead reward_head = RewardHead::kNone;
  uint64_t num_labels = 0;  // reward models

  uint64_t hidden_size = 0;
  uint64_t intermediate_size = 0;
  uint64_t num_layers = 0;
  uint64_t num_heads = 0;
  uint64_t num_kv_heads = 0;
  uint64_t head_dim = 0;
  uint64_t vocab_size = 0;
  uint64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2, Llama attention_bias, InternLM2 bias
  bool o_bias = false;    // Llama attention_bias, InternLM2 bias
  bool mlp_bias = false;  // Llama mlp_bias
  // Per layer: the sliding window (0: full causal attention).
  std::vector<uint64_t> sliding_window;

  Activation activation = Activation::kSilu;
  NormLayout norm_layout = NormLayout::kPre;
  bool norm_plus_one = false;  // Gemma: every RMSNorm scales by (1 + weight)
  double embedding_scale = 1;  // Gemma: sqrt(hidden_size)
  QkNorm qk_norm = QkNorm::kNone;
  double attention_scale = 0;  // multiplies q.k: head_dim^-0.5, Gemma query_pre_attn_scalar^-0.5
  double attn_softcap = 0;     // Gemma 2: scores = cap * tanh(scores / cap); 0: none
  double final_softcap = 0;    // Gemma 2: the same on the LM logits; 0: none
  uint64_t rotary_dim = 0;     // dimensions of each head that rope rotates (Phi-3 partial)
  // Gemma 3: per layer, whether it uses the local rope (rope_local_base_freq, no scaling).
  std::vector<bool> local_rope;
  double rope_local_theta = 10000.0;
  bool fused_qkv = false;      // Phi-3 qkv_proj: q rows, then k, then v
  bool fused_gate_up = false;  // Phi-3 gate_up_proj: gate rows, then up
  uint64_t num_experts = 0;    // Mixtral: experts per layer (0: a dense MLP)
  uint64_t experts_per_token = 0;

  std::optional<int32_t> pad_token_id;     // where a score head reads
  std::optional<int32_t> reward_token_id;  // InternLM2ForRewardModel: appended before reading

  std::vector<int32_t> eos_token_ids;  // from config.json (generation_config.json may add)
  std::optional<int32_t> bos_token_id;

  uint64_t q_dim() const { return num_heads * head_dim; }
  uint64_t kv_dim() const { return num_kv_heads * head_dim; }
  uint64_t output_size() const { return is_reward_model ? num_labels : vocab_size; }
};

// `source` names the file in errors.
ModelConfig parse_model_config(const nlohmann::json& config, const std::string& source);

// The architectures the engine runs, for error messages and the README.
const std::vector<std::string>& supported_architectures();

// eos ids of generation_config.json (a number or a list), appended to config.eos_token_ids
// without duplicates. `source` names the file in errors.
void merge_generation_config(ModelConfig& config, const nlohmann::json& generation_config,
                             const std::string& source);

}  // namespace expo
