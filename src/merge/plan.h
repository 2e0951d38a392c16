#pragma once
// Matching the tensors of the SFT and aligned checkpoints and deciding, for each output tensor,
// what to do: extrapolate, extrapolate the shared rows and copy the rest, or copy from aligned.
// The whole plan is made from the headers before a byte of data is read, so every mismatch is
// reported at once and a dry run can print exactly what a real run would write.
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/peft_adapter.h"
#include "merge/alpha_rules.h"

namespace expo {

enum class OnMissing { kError, kCopyAligned };

struct PlanOptions {
  std::optional<DType> dtype;  // --dtype: output dtype of floating tensors
  std::vector<AlphaRule> rules;
  OnMissing on_missing = OnMissing::kError;
};

enum class Action {
  kExtrapolate,      // every element
  kExtrapolateRows,  // the first `shared_rows` rows; the aligned model's extra rows are copied
  kCopyAligned,      // copied from aligned (integer/bool tensors, or --on-missing copy-aligned)
  // A LoRA-adapted tensor (merge/lora_plan.h), computed in float64 and rounded once:
  //   W + ((1 + alpha) * s) * (B A)          one adapter (W = `aligned`, the SFT tensor)
  //   t1 + alpha * (t1 - t0)                 lora_pair: t1 = aligned (+ s1 B1 A1),
  //                                                     t0 = sft (+ s0 B0 A0)
  kLora,
  kScale,  // round((1 + alpha) * aligned): a scaled lora_B of an --output-adapter
};

struct PlanEntry {
  const CheckpointTensor* aligned = nullptr;
  const CheckpointTensor* sft = nullptr;  // null for kCopyAligned
  Action action = Action::kExtrapolate;
  DType out_dtype;
  uint64_t shared_rows = 0;         // kExtrapolateRows only
  const AlphaRule* rule = nullptr;  // the --rule that sets this tensor's alpha, if any
  // kLora: the LoRA terms of theta1 and (lora_pair) theta0, owned by their PeftAdapter.
  const LoraModule* aligned_lora = nullptr;
  const LoraModule* sft_lora = nullptr;
  bool lora_pair = false;
  // The output tensor's name when it is not aligned's (an adapter's full tensor in a model).
  std::string output_name;

  const std::string& name() const { return output_name.empty() ? aligned->name() : output_name; }
  const std::vector<uint64_t>& shape() const { return aligned->info->shape; }
  uint64_t num_elements() const { return aligned->info->num_elements(); }
  uint64_t out_bytes() const { return dtype_bytes(out_dtype, num_elements()); }
  double alpha_for(double output_alpha) const { return rule ? rule->alpha.value : output_alpha; }
};

struct Plan {
  std::vector<PlanEntry> entries;     // in the aligned model's order
  std::vector<std::string> notes;     // things a user should know (rows copied, ties)
  std::vector<std::string> warnings;  // things copied or dropped under --on-missing copy-aligned
  bool output_tied = false;           // the aligned model ties embeddings, so the output does
  // Set when the two checkpoints hold the same weights (io/checkpoint_identity.h): the delta is
  // zero and every alpha gives the aligned model. Also in `warnings`; `expo search` refuses it.
  std::optional<std::string> identical;

  uint64_t out_bytes() const;
  uint64_t count(Action action) const;
};

// Throws one expo::Error listing every mismatched or unmatched tensor. Compares the pair's bytes
// only when their headers match (see same_weights), stopping at the first difference.
Plan make_plan(const Checkpoint& sft, const Checkpoint& aligned, const PlanOptions& options);

}  // namespace expo
