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

enum class Family { kLlama, kMistral, kQwen2, kInternLM2 };

enum class RopeKind { kDefault, kLinear, kLlama3, kDynamic };

struct RopeScaling {
  RopeKind kind = RopeKind::kDefault;
  double factor = 1.0;
  double low_freq_factor = 1.0;        // llama3
  double high_freq_factor = 4.0;       // llama3
  uint64_t original_max_position = 0;  // llama3, dynamic
};

struct ModelConfig {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  Family family = Family::kLlama;
  bool is_reward_model = false;  // *ForSequenceClassification: score head, no LM head
  uint64_t num_labels = 0;       // reward models

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
