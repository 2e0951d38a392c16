#pragma once
// Plans for pairs whose sides are PEFT LoRA adapters (io/peft_adapter.h), made, like make_plan,
// from the headers before any data is read, with every problem reported at once.
//
// One adapter over the SFT model (theta1 = W + s B A): the output model has every tensor of
// the SFT model; an adapted one is W + ((1 + alpha) * s) * (B A) (Action::kLora), a full tensor
// of the adapter (modules_to_save) is extrapolated against the SFT tensor, the rest is copied.
// Two adapters over a base (--base): theta0 = base + s0 B0 A0, theta1 = base + s1 B1 A1, and
// every tensor either adapter touches is t1 + alpha * (t1 - t0) (kLora with lora_pair).
// The scaled adapter (--output-adapter): the adapter's own tensors, lora_B scaled by
// (1 + alpha) (kScale), lora_A copied, full tensors extrapolated against the SFT model.
#include "io/checkpoint.h"
#include "io/peft_adapter.h"
#include "merge/plan.h"

namespace expo {

Plan make_adapter_plan(const Checkpoint& sft, const PeftAdapter& aligned,
                       const PlanOptions& options);

Plan make_two_adapter_plan(const Checkpoint& base, const PeftAdapter& sft,
                           const PeftAdapter& aligned, const PlanOptions& options);

Plan make_adapter_output_plan(const Checkpoint& sft, const PeftAdapter& aligned,
                              const PlanOptions& options);

}  // namespace expo
