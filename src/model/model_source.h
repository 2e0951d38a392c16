#pragma once
// A model the engine can load, opened once per process: one checkpoint read as is (--model), or
// an SFT/aligned pair with its plan for extrapolation on load (--sft, --aligned). Opening reads
// config.json (and generation_config.json), checks that the SFT model is the same architecture
// and that every tensor has the name, shape and dtype the architecture needs, and makes the
// plan: all of it once, however many times (at however many alphas) the weights are loaded
// from it (LoadedModel::load, model/weights.h).
//
// A source is a handle: copies share the checkpoints and the plan, which live as long as the
// last copy, or the last model loaded from one that still points into their maps.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "merge/expo_pair.h"
#include "merge/plan.h"
#include "model/config.h"

namespace expo {

class ModelSource {
 public:
  // Empty: assign an opened source before use.
  ModelSource() = default;

  // One checkpoint (a folder, a .safetensors file or a cached repo id), read as is.
  static ModelSource open(const std::string& spec);
  static ModelSource single(std::shared_ptr<const Checkpoint> checkpoint);
  // A pair for extrapolation on load. `plan`: the pair's plan made with PlanOptions{}, when the
  // caller has one already; made here otherwise.
  static ModelSource open_pair(const std::string& sft, const std::string& aligned);
  static ModelSource pair(std::shared_ptr<const Checkpoint> sft,
                          std::shared_ptr<const Checkpoint> aligned,
                          std::shared_ptr<const Plan> plan = nullptr);
  // A pair in any form (merge/expo_pair.h: two checkpoints, an SFT model and a LoRA adapter,
  // two adapters over a base), with its plan for extrapolation on load (made here when null).
  static ModelSource from_pair(std::shared_ptr<const ExpoPair> pair,
                               std::shared_ptr<const Plan> plan = nullptr);
  // --model MODEL --adapter ADAPTER: the adapter applied on load (theta1 of the pair).
  static ModelSource with_adapter(const std::string& model, const std::string& adapter);

  bool empty() const { return !checkpoint_; }
  // A pair, extrapolated on load at the caller's alpha.
  bool is_pair() const { return plan_ != nullptr && !fixed_alpha_; }
  // Whether loading computes the weights from a plan (a pair, or a model with an adapter).
  bool computed() const { return plan_ != nullptr; }
  // The alpha a computed source is always loaded at (an adapter applied on load: 0).
  std::optional<double> fixed_alpha() const { return fixed_alpha_; }
  // The model's checkpoint: the one given, or the aligned one of a pair (whose config,
  // tokenizer and folder the extrapolated model has); for adapters, the model they apply to.
  const Checkpoint& checkpoint() const { return *checkpoint_; }
  const std::shared_ptr<const Checkpoint>& shared_checkpoint() const { return checkpoint_; }
  // A pair's SFT checkpoint and plan; null for one checkpoint.
  const Checkpoint* sft() const { return sft_.get(); }
  const Plan* plan() const { return plan_.get(); }
  // config.json with generation_config.json's eos ids merged.
  const ModelConfig& config() const { return config_; }
  // The model's folder; empty for a lone .safetensors file.
  // With an adapter that ships its tokenizer, the adapter's folder.
  const std::filesystem::path& folder() const {
    return folder_.empty() ? checkpoint_->folder() : folder_;
  }
  // What loading needs in memory, for --max-memory: the bytes of the model's (the aligned)
  // checkpoint.
  uint64_t weight_bytes() const { return checkpoint_->total_bytes(); }
  // The checkpoints the weights are made from, by the option that names them ("--model",
  // "--sft", "--aligned", "--base", "--adapter"; an adapter by its adapter_model.safetensors).
  std::vector<std::pair<std::string, const Checkpoint*>> inputs() const;
  // What names the model in answers and /v1/models: the aligned side of a pair (an adapter's
  // folder), the adapter applied with --adapter, else the model.
  std::string display_spec() const;
  // The pair in any form behind a computed source (adapters), or null.
  const ExpoPair* expo_pair() const { return pair_.get(); }
  // base_model_name_or_path warnings of the adapters of the pair.
  std::vector<std::string> pair_warnings() const {
    return pair_ ? pair_->warnings() : std::vector<std::string>{};
  }
  // A pair's aligned model alone, read as is (a search's alpha 0); itself for one checkpoint.
  ModelSource aligned_only() const;

 private:
  std::shared_ptr<const Checkpoint> checkpoint_;  // the model, or the aligned one
  std::shared_ptr<const Checkpoint> sft_;
  std::shared_ptr<const Plan> plan_;
  std::shared_ptr<const ExpoPair> pair_;  // what the plan points into, for adapters
  std::optional<double> fixed_alpha_;
  std::filesystem::path folder_;
  ModelConfig config_;
};

// The config (with generation_config.json's eos ids merged) of a checkpoint folder.
ModelConfig read_model_config(const Checkpoint& checkpoint);

}  // namespace expo
