#include "merge/lora_plan.h"

#include <map>

#include "core/error.h"

namespace expo {

namespace {

std::string shape_of(const CheckpointTensor& t) {
  return std::string(dtype_name(t.info->dtype)) + t.info->shape_string();
}

// An adapter's modules and full tensors by the model tensor they change, checked against the
// model they apply to; problems are collected in `problems`.
struct AdapterIndex {
  std::map<std::string, const LoraModule*> lora;
  std::map<std::string, const AdapterFullTensor*> full;

  AdapterIndex(const PeftAdapter& adapter, const Checkpoint& model, const std::string& model_role,
               std::vector<std::string>& problems) {
    const std::string file = (adapter.folder() / "adapter_model.safetensors").string();
    for (const auto& m : adapter.modules()) {
      lora[m.target] = &m;
      const CheckpointTensor* w = model.find(m.target);
      if (!w) {
        problems.push_back(file + ": module '" + m.module + "' adapts tensor '" + m.target +
                           "', which the " + model_role + " (" + model.spec() + ") does not have");
        continue;
      }
      if (!is_arithmetic_float(w->info->dtype) || w->info->shape.size() != 2) {
        problems.push_back(file + ": module '" + m.module + "' adapts tensor '" + m.target +
                           "', which is " + shape_of(*w) + " in the " + model_role +
                           ", not a floating-point matrix");
        continue;
      }
      const auto& shape = w->info->shape;
      if (shape[0] != m.rows() || shape[1] != m.cols()) {
        const std::string layout =
            m.embedding    ? "lora_embedding_A [r, rows] and lora_embedding_B [cols, r]"
            : m.transposed ? "fan_in_fan_out: lora_A [r, rows] and lora_B [cols, r]"
                           : "lora_B [rows, r] and lora_A [r, cols]";
        problems.push_back(file + ": module '" + m.module + "': " + m.a->name() + " " +
                           m.a->info->shape_string() + " and " + m.b->name() + " " +
                           m.b->info->shape_string() + " make a [" + std::to_string(m.rows()) +
                           ", " + std::to_string(m.cols()) + "] update (" + layout + ") but '" +
                           m.target + "' is " + shape_of(*w) + " in the " + model_role);
      }
    }
    for (const auto& f : adapter.full_tensors()) {
      full[f.target] = &f;
      if (lora.count(f.target)) {
        problems.push_back(file + ": tensor '" + f.tensor->name() +
                           "' is both a full tensor and the target of LoRA module '" +
                           lora[f.target]->module + "'");
        continue;
      }
      const CheckpointTensor* w = model.find(f.target);
      if (!w) {
        problems.push_back(file + ": tensor '" + f.tensor->name() + "' (" + shape_of(*f.tensor) +
                           ") stands for '" + f.target + "', which the " + model_role + " (" +
                           model.spec() + ") does not have");
        continue;
      }
      if (w->info->shape != f.tensor->info->shape)
        problems.push_back(file + ": tensor '" + f.tensor->name() + "' is " + shape_of(*f.tensor) +
                           " but '" + f.target + "' is " + shape_of(*w) + " in the " + model_role);
      else if (!is_arithmetic_float(f.tensor->info->dtype) || !is_arithmetic_float(w->info->dtype))
        problems.push_back(file + ": tensor '" + f.tensor->name() + "' is " + shape_of(*f.tensor) +
                           " and '" + f.target + "' is " + shape_of(*w) + " in the " + model_role +
                           "; expo extrapolates floating-point tensors only");
    }
  }
};

void throw_problems(const std::vector<std::string>& problems, const std::string& what) {
  if (problems.empty()) return;
  std::string message = std::to_string(problems.size()) + " problem(s) " + what + ":";
  for (const auto& p : problems) message += "\n  " + p;
  throw Error(message);
}

DType output_dtype(DType own, const PlanOptions& options) {
  return is_arithmetic_float(own) && options.dtype ? *options.dtype : own;
}

}  // namespace

Plan make_adapter_plan(const Checkpoint& sft, const PeftAdapter& aligned,
                       const PlanOptions& options) {
  std::vector<std::string> problems;
  const AdapterIndex index(aligned, sft, "SFT model", problems);
  throw_problems(problems, "applying the adapter " + aligned.spec() + " to " + sft.spec());
  Plan plan;
  plan.output_tied = sft.ties_embeddings() && find_output_head(sft) == nullptr;
  for (const auto& w : sft.tensors()) {
    PlanEntry entry;
    entry.out_dtype = output_dtype(w.info->dtype, options);
    entry.rule = match_rule(options.rules, w.name());
    if (const auto it = index.lora.find(w.name()); it != index.lora.end()) {
      entry.action = Action::kLora;
      entry.aligned = &w;
      entry.aligned_lora = it->second;
    } else if (const auto f = index.full.find(w.name()); f != index.full.end()) {
      entry.action = Action::kExtrapolate;
      entry.aligned = f->second->tensor;
      entry.sft = &w;
      entry.output_name = w.name();
    } else {
      entry.action = Action::kCopyAligned;
      entry.aligned = &w;
      entry.rule = nullptr;
    }
    plan.entries.push_back(std::move(entry));
  }
  if (plan.entries.empty()) fail(sft.spec(), ": the SFT model has no tensors");
  return plan;
}

Plan make_two_adapter_plan(const Checkpoint& base, const PeftAdapter& sft,
                           const PeftAdapter& aligned, const PlanOptions& options) {
  std::vector<std::string> problems;
  const AdapterIndex index0(sft, base, "base model", problems);
  const AdapterIndex index1(aligned, base, "base model", problems);
  throw_problems(problems, "applying the adapters " + sft.spec() + " and " + aligned.spec() +
                               " to " + base.spec());
  Plan plan;
  plan.output_tied = base.ties_embeddings() && find_output_head(base) == nullptr;
  for (const auto& w : base.tensors()) {
    PlanEntry entry;
    entry.out_dtype = output_dtype(w.info->dtype, options);
    entry.rule = match_rule(options.rules, w.name());
    const auto l0 = index0.lora.find(w.name());
    const auto l1 = index1.lora.find(w.name());
    const auto f0 = index0.full.find(w.name());
    const auto f1 = index1.full.find(w.name());
    const bool has_l0 = l0 != index0.lora.end(), has_l1 = l1 != index1.lora.end();
    const bool has_f0 = f0 != index0.full.end(), has_f1 = f1 != index1.full.end();
    entry.aligned = has_f1 ? f1->second->tensor : &w;
    entry.sft = has_f0 ? f0->second->tensor : &w;
    entry.output_name = w.name();
    if (has_l0 || has_l1) {
      entry.action = Action::kLora;
      entry.lora_pair = true;
      entry.aligned_lora = has_l1 ? l1->second : nullptr;
      entry.sft_lora = has_l0 ? l0->second : nullptr;
    } else if (has_f0 || has_f1) {
      entry.action = Action::kExtrapolate;
    } else {
      entry.action = Action::kCopyAligned;
      entry.sft = nullptr;
      entry.output_name.clear();
      entry.rule = nullptr;
    }
    plan.entries.push_back(std::move(entry));
  }
  if (plan.entries.empty()) fail(base.spec(), ": the base model has no tensors");
  return plan;
}

Plan make_adapter_output_plan(const Checkpoint& sft, const PeftAdapter& aligned,
                              const PlanOptions& options) {
  std::vector<std::string> problems;
  const AdapterIndex index(aligned, sft, "SFT model", problems);
  throw_problems(problems, "applying the adapter " + aligned.spec() + " to " + sft.spec());
  std::map<const CheckpointTensor*, const LoraModule*> b_of, a_of;
  for (const auto& m : aligned.modules()) {
    b_of[m.b] = &m;
    a_of[m.a] = &m;
  }
  std::map<const CheckpointTensor*, const AdapterFullTensor*> full_of;
  for (const auto& f : aligned.full_tensors()) full_of[f.tensor] = &f;
  Plan plan;
  for (const auto& t : aligned.weights().tensors()) {
    PlanEntry entry;
    entry.aligned = &t;
    entry.out_dtype = output_dtype(t.info->dtype, options);
    if (const auto b = b_of.find(&t); b != b_of.end()) {
      entry.action = Action::kScale;
      entry.rule = match_rule(options.rules, b->second->target);
    } else if (const auto f = full_of.find(&t); f != full_of.end()) {
      entry.action = Action::kExtrapolate;
      entry.sft = sft.find(f->second->target);
      entry.rule = match_rule(options.rules, f->second->target);
    } else {
      entry.action = Action::kCopyAligned;  // lora_A
    }
    plan.entries.push_back(std::move(entry));
  }
  return plan;
}

}  // namespace expo
