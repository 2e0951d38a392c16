#pragma once
// The two sides of an extrapolation, in whichever form a user has them:
//   - two full checkpoints (--sft SFT --aligned DPO);
//   - an SFT checkpoint and a PEFT LoRA adapter trained on it (--sft SFT --aligned ADAPTER):
//     theta1 = SFT + s B A;
//   - two adapters over one base model (--base BASE --sft ADAPTER0 --aligned ADAPTER1).
// An adapter is recognized by its adapter_config.json (a folder, or a Hugging Face cache repo
// id). Opened once; plans and output sources are made from it, and point into it: keep the
// pair (a shared handle) alive as long as they are used.
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "io/peft_adapter.h"
#include "merge/extrapolate.h"
#include "merge/plan.h"

namespace expo {

struct PairSpec {
  std::string sft, aligned, base;
  std::string sft_revision, aligned_revision, base_revision;
};

class ExpoPair {
 public:
  enum class Form { kCheckpoints, kAdapter, kTwoAdapters };

  static std::shared_ptr<const ExpoPair> open(const PairSpec& spec);

  Form form() const { return form_; }
  bool aligned_is_adapter() const { return form_ != Form::kCheckpoints; }
  // The plan of a full model output (make_plan, make_adapter_plan or make_two_adapter_plan).
  Plan plan(const PlanOptions& options) const;
  // The plan of a scaled adapter output (--output-adapter): Form::kAdapter only.
  Plan adapter_output_plan(const PlanOptions& options) const;
  OutputSources sources(bool adapter_output) const;

  // The checkpoint whose config.json (architecture, shapes) the extrapolated model has: the
  // aligned model, the SFT model under an adapter, or the base under two adapters.
  const Checkpoint& model() const { return *model_; }
  const std::shared_ptr<const Checkpoint>& shared_model() const { return model_; }
  // The folder of the extrapolated model's tokenizer and chat template: the aligned model's;
  // with adapters, the aligned adapter's when it ships tokenizer.json, else the model's.
  std::filesystem::path tokenizer_folder() const;
  // Full checkpoints of the pair (null for an adapter side).
  const Checkpoint* sft_checkpoint() const { return sft_.get(); }
  const Checkpoint* aligned_checkpoint() const { return aligned_.get(); }
  const PeftAdapter* sft_adapter() const { return sft_adapter_.get(); }
  const PeftAdapter* aligned_adapter() const { return aligned_adapter_.get(); }
  const PairSpec& spec() const { return spec_; }
  // The checkpoints read, by the option that names them ("--base", "--sft", "--aligned"; an
  // adapter by its adapter_model.safetensors), for fingerprints.
  std::vector<std::pair<std::string, const Checkpoint*>> inputs() const;
  // base_model_name_or_path naming another model than the one an adapter is applied to.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  PairSpec spec_;
  Form form_ = Form::kCheckpoints;
  std::shared_ptr<const Checkpoint> sft_, aligned_, base_, model_;
  std::shared_ptr<const PeftAdapter> sft_adapter_, aligned_adapter_;
  std::vector<std::string> warnings_;
};

}  // namespace expo
