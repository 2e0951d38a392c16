#include "merge/plan.h"

#include <set>

#include "core/error.h"
#include "io/checkpoint_identity.h"

namespace expo {

uint64_t Plan::out_bytes() const {
  uint64_t total = 0;
  for (const auto& e : entries) total += e.out_bytes();
  return total;
}

uint64_t Plan::count(Action action) const {
  uint64_t n = 0;
  for (const auto& e : entries) n += e.action == action;
  return n;
}

namespace {

std::string shape_of(const CheckpointTensor& t) {
  return std::string(dtype_name(t.info->dtype)) + t.info->shape_string();
}

bool same_shape_but_rows(const TensorInfo& a, const TensorInfo& s) {
  if (a.shape.size() != s.shape.size() || a.shape.empty()) return false;
  for (size_t d = 1; d < a.shape.size(); ++d)
    if (a.shape[d] != s.shape[d]) return false;
  return true;
}

}  // namespace

Plan make_plan(const Checkpoint& sft, const Checkpoint& aligned, const PlanOptions& options) {
  Plan plan;
  std::vector<std::string> problems;
  std::set<std::string> sft_used;
  const bool copy_on_missing = options.on_missing == OnMissing::kCopyAligned;

  const CheckpointTensor* sft_embedding = find_embedding(sft);
  const CheckpointTensor* sft_head = find_output_head(sft);
  const bool sft_tied = sft_head == nullptr && sft_embedding != nullptr && sft.ties_embeddings();
  const CheckpointTensor* aligned_head = find_output_head(aligned);
  plan.output_tied =
      aligned_head == nullptr && find_embedding(aligned) != nullptr && aligned.ties_embeddings();

  for (const auto& a : aligned.tensors()) {
    PlanEntry entry;
    entry.aligned = &a;
    const DType a_dtype = a.info->dtype;
    // Q8_0 (a GGUF pair's blocks) is extrapolated in its own type: --dtype does not apply.
    const bool q8 = a_dtype == DType::Q8_0;
    const bool arithmetic = is_arithmetic_float(a_dtype) || q8;
    entry.out_dtype = arithmetic && options.dtype && !q8 ? *options.dtype : a_dtype;
    entry.rule = match_rule(options.rules, a.name());

    const CheckpointTensor* s = sft.find(a.name());
    if (s) {
      sft_used.insert(a.name());
    } else if (is_output_head_name(a.name()) && sft_tied) {
      s = sft_embedding;
      sft_used.insert(s->name());
      plan.notes.push_back("the SFT model ties its embeddings: its " + s->name() +
                           " stands in for its " + a.name());
    }

    auto copy_instead = [&](const std::string& problem) {
      if (!copy_on_missing) {
        problems.push_back(problem);
        return;
      }
      plan.warnings.push_back(problem + "; copied from aligned (--on-missing copy-aligned)");
      entry.action = Action::kCopyAligned;
      entry.sft = nullptr;
      plan.entries.push_back(entry);
    };

    if (!arithmetic) {  // integers, bool, fp8: passed through unchanged
      entry.action = Action::kCopyAligned;
      if (options.dtype) entry.out_dtype = a_dtype;
      plan.entries.push_back(entry);
      continue;
    }
    if (!s) {
      copy_instead("tensor '" + a.name() + "' (" + shape_of(a) + ") is only in the aligned model");
      continue;
    }
    if (!is_arithmetic_float(s->info->dtype) && s->info->dtype != DType::Q8_0) {
      copy_instead("tensor '" + a.name() + "' is " + shape_of(a) + " in the aligned model but " +
                   shape_of(*s) + " in the SFT model");
      continue;
    }
    entry.sft = s;
    if (s->info->shape == a.info->shape) {
      entry.action = Action::kExtrapolate;
      plan.entries.push_back(entry);
      continue;
    }
    const bool vocab_tensor = is_embedding_name(a.name()) || is_output_head_name(a.name());
    if (vocab_tensor && same_shape_but_rows(*a.info, *s->info) && !q8 &&
        s->info->dtype != DType::Q8_0) {
      entry.action = Action::kExtrapolateRows;
      entry.shared_rows = std::min(a.info->shape[0], s->info->shape[0]);
      const uint64_t extra = a.info->shape[0] - entry.shared_rows;
      plan.notes.push_back(
          "tensor '" + a.name() + "': " + std::to_string(entry.shared_rows) +
          " shared rows extrapolated" +
          (extra ? ", " + std::to_string(extra) + " extra rows of the aligned model copied" : "") +
          (s->info->shape[0] > a.info->shape[0]
               ? ", " + std::to_string(s->info->shape[0] - a.info->shape[0]) +
                     " rows only in the SFT model left out"
               : ""));
      plan.entries.push_back(entry);
      continue;
    }
    copy_instead("tensor '" + a.name() + "' is " + shape_of(a) + " in the aligned model but " +
                 shape_of(*s) + " in the SFT model");
  }

  for (const auto& s : sft.tensors()) {
    if (sft_used.count(s.name())) continue;
    if (plan.output_tied && is_output_head_name(s.name())) {
      plan.notes.push_back(
          "the aligned model ties its embeddings, so the output does too; the "
          "SFT model's " +
          s.name() + " is not used");
      continue;
    }
    const std::string problem =
        "tensor '" + s.name() + "' (" + shape_of(s) + ") is only in the SFT model";
    if (copy_on_missing)
      plan.warnings.push_back(problem + "; left out (--on-missing copy-aligned)");
    else
      problems.push_back(problem);
  }

  if (!problems.empty()) {
    std::string message = std::to_string(problems.size()) + " tensor(s) of the SFT model (" +
                          sft.spec() + ") and the aligned model (" + aligned.spec() +
                          ") do not match:";
    for (const auto& p : problems) message += "\n  " + p;
    message +=
        "\nAre these two checkpoints of the same model? To copy such tensors from the aligned "
        "model anyway, pass --on-missing copy-aligned.";
    throw Error(message);
  }
  if (plan.entries.empty()) fail(aligned.spec(), ": the aligned model has no tensors");
  if (const auto why = same_weights(sft, aligned)) {
    plan.identical = "--sft " + sft.spec() + " and --aligned " + aligned.spec() +
                     " are the same model (" + *why +
                     "): theta1 - theta0 is zero, so every alpha gives the aligned model unchanged";
    plan.warnings.push_back(*plan.identical);
  }
  return plan;
}

}  // namespace expo
