#pragma once
// A PEFT LoRA adapter folder, read strictly: adapter_config.json and adapter_model.safetensors
// with the keys PEFT's save_pretrained writes. Each adapted module contributes
//     delta = s * B @ A          (s = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora)
// to the model tensor `<module>.weight`; rank_pattern and alpha_pattern override r and
// lora_alpha per module (the first pattern key K with (.*\.)?(K) matching the whole module
// name, as PEFT matches them). Embedding LoRA (lora_embedding_A [r, V], lora_embedding_B
// [H, r]) and fan_in_fan_out (the weight stored [in, out]) adapt the transposed product:
// delta[i][j] = s * sum_k A[k][i] * B[j][k]. Any other tensor of the file is a full tensor of
// the adapted model (modules_to_save, trained biases) under `base_model.model.<name>`.
//
// Refused with the file, key and reason: DoRA, LoRA biases, layer replication, trainable
// tokens, activated LoRA, target_parameters, a malformed config, keys PEFT does not write, a
// module with only one of A and B, ranks that disagree with each other or with the config.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint.h"

namespace expo {

struct LoraModule {
  std::string module;                   // "model.layers.0.self_attn.q_proj"
  std::string target;                   // the model tensor it adapts: module + ".weight"
  const CheckpointTensor* a = nullptr;  // lora_A.weight [r, in] or lora_embedding_A [r, V]
  const CheckpointTensor* b = nullptr;  // lora_B.weight [out, r] or lora_embedding_B [H, r]
  bool embedding = false;
  // delta[i][j] = s * sum_k A[k][i] * B[j][k] (an embedding, or fan_in_fan_out) instead of
  // s * sum_k B[i][k] * A[k][j].
  bool transposed = false;
  uint64_t rank = 0;
  double lora_alpha = 0;
  double scale = 0;  // s
  // Rows and columns of the target the factors imply: [out, in], or [in, out] when transposed.
  uint64_t rows() const;
  uint64_t cols() const;
};

// A full tensor stored in the adapter (modules_to_save, a trained bias): the adapted model's
// value of the model tensor `target`.
struct AdapterFullTensor {
  std::string target;
  const CheckpointTensor* tensor = nullptr;
};

class PeftAdapter {
 public:
  // The adapter folder `spec` names (a folder with adapter_config.json, or a Hugging Face cache
  // repo id whose snapshot has one), or nothing when `spec` is not an adapter.
  static std::optional<std::filesystem::path> find(const std::string& spec,
                                                   const std::string& revision = "");
  static PeftAdapter open(const std::string& spec, const std::string& revision = "");

  const std::string& spec() const { return spec_; }
  const std::filesystem::path& folder() const { return folder_; }
  std::filesystem::path config_path() const { return folder_ / "adapter_config.json"; }
  // adapter_model.safetensors, as a checkpoint (its tensors under their PEFT names).
  const Checkpoint& weights() const { return *weights_; }
  const std::vector<LoraModule>& modules() const { return modules_; }
  const std::vector<AdapterFullTensor>& full_tensors() const { return full_; }
  // The config's base_model_name_or_path, or empty.
  const std::string& base_model_name() const { return base_model_; }
  uint64_t total_bytes() const { return weights_->total_bytes(); }

 private:
  std::string spec_;
  std::filesystem::path folder_;
  std::shared_ptr<const Checkpoint> weights_;
  std::vector<LoraModule> modules_;
  std::vector<AdapterFullTensor> full_;
  std::string base_model_;
};

// PEFT's prefix of every key in adapter_model.safetensors.
inline constexpr const char* kPeftKeyPrefix = "base_model.model.";

// A warning when the adapter's base_model_name_or_path names another model than `model_spec`
// (compared by their last path component, so "org/Name" and "/models/Name" agree); empty when
// they agree or the adapter names none.
std::string base_model_mismatch(const PeftAdapter& adapter, const std::string& model_spec,
                                const std::string& option);

}  // namespace expo
