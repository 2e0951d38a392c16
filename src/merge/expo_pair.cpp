#include "merge/expo_pair.h"

#include "core/error.h"
#include "merge/lora_plan.h"

namespace expo {

namespace fs = std::filesystem;

std::shared_ptr<const ExpoPair> ExpoPair::open(const PairSpec& spec) {
  auto pair = std::make_shared<ExpoPair>();
  ExpoPair& p = *pair;
  p.spec_ = spec;
  const std::string base_revision = spec.base_revision;
  const bool sft_adapter = PeftAdapter::find(spec.sft, spec.sft_revision).has_value();
  const bool aligned_adapter = PeftAdapter::find(spec.aligned, spec.aligned_revision).has_value();
  if (!spec.base.empty()) {
    if (PeftAdapter::find(spec.base, base_revision))
      usage_fail("--base ", spec.base,
                 " is a PEFT adapter; --base is the model both adapters "
                 "were trained on");
    if (!sft_adapter || !aligned_adapter)
      usage_fail(
          "--base: --sft and --aligned must both be PEFT adapters (folders with "
          "adapter_config.json) over it; ",
          !sft_adapter ? "--sft " + spec.sft : "--aligned " + spec.aligned,
          " is not. Without adapters, leave out --base");
    p.form_ = Form::kTwoAdapters;
    p.base_ = std::make_shared<const Checkpoint>(Checkpoint::open(spec.base, base_revision));
    p.sft_adapter_ =
        std::make_shared<const PeftAdapter>(PeftAdapter::open(spec.sft, spec.sft_revision));
    p.aligned_adapter_ =
        std::make_shared<const PeftAdapter>(PeftAdapter::open(spec.aligned, spec.aligned_revision));
    p.model_ = p.base_;
    for (const auto* a : {p.sft_adapter_.get(), p.aligned_adapter_.get()})
      if (auto w = base_model_mismatch(*a, spec.base, "--base"); !w.empty())
        p.warnings_.push_back(w);
    return pair;
  }
  if (sft_adapter)
    usage_fail("--sft ", spec.sft,
               " is a PEFT adapter: give the model it was trained on as --base BASE (both --sft "
               "and --aligned adapters over it), or the SFT model itself as --sft");
  p.sft_ = std::make_shared<const Checkpoint>(Checkpoint::open(spec.sft, spec.sft_revision));
  p.model_ = p.sft_;
  if (aligned_adapter) {
    p.form_ = Form::kAdapter;
    p.aligned_adapter_ =
        std::make_shared<const PeftAdapter>(PeftAdapter::open(spec.aligned, spec.aligned_revision));
    if (auto w = base_model_mismatch(*p.aligned_adapter_, spec.sft, "--sft"); !w.empty())
      p.warnings_.push_back(w);
    return pair;
  }
  p.aligned_ =
      std::make_shared<const Checkpoint>(Checkpoint::open(spec.aligned, spec.aligned_revision));
  p.model_ = p.aligned_;
  return pair;
}

Plan ExpoPair::plan(const PlanOptions& options) const {
  switch (form_) {
    case Form::kCheckpoints:
      return make_plan(*sft_, *aligned_, options);
    case Form::kAdapter:
      return make_adapter_plan(*sft_, *aligned_adapter_, options);
    case Form::kTwoAdapters:
      return make_two_adapter_plan(*base_, *sft_adapter_, *aligned_adapter_, options);
  }
  fail("internal: unknown pair form");
}

Plan ExpoPair::adapter_output_plan(const PlanOptions& options) const {
  if (form_ != Form::kAdapter)
    usage_fail("--output-adapter needs --aligned to be a PEFT adapter over --sft (a full model)",
               form_ == Form::kTwoAdapters ? "; with --base, the output is a full model" : "");
  return make_adapter_output_plan(*sft_, *aligned_adapter_, options);
}

OutputSources ExpoPair::sources(bool adapter_output) const {
  if (form_ == Form::kCheckpoints) return checkpoint_sources(*sft_, *aligned_);
  OutputSources s;
  auto add_adapter = [&](const char* role, const PeftAdapter& a) {
    s.inputs.push_back({role, a.spec(), &a.weights(), a.folder(), true});
  };
  if (form_ == Form::kTwoAdapters) {
    s.inputs.push_back({"base", base_->spec(), base_.get(), base_->folder(), false});
    add_adapter("sft", *sft_adapter_);
  } else {
    s.inputs.push_back({"sft", sft_->spec(), sft_.get(), sft_->folder(), false});
  }
  add_adapter("aligned", *aligned_adapter_);
  s.adapter_output = adapter_output;
  if (adapter_output) {
    s.aux_folder = aligned_adapter_->folder();
  } else {
    s.aux_folder = model_->folder();
    s.tokenizer_folder = aligned_adapter_->folder();
  }
  return s;
}

std::vector<std::pair<std::string, const Checkpoint*>> ExpoPair::inputs() const {
  switch (form_) {
    case Form::kCheckpoints:
      return {{"--sft", sft_.get()}, {"--aligned", aligned_.get()}};
    case Form::kAdapter:
      return {{"--sft", sft_.get()}, {"--aligned", &aligned_adapter_->weights()}};
    case Form::kTwoAdapters:
      break;
  }
  return {{"--base", base_.get()},
          {"--sft", &sft_adapter_->weights()},
          {"--aligned", &aligned_adapter_->weights()}};
}

fs::path ExpoPair::tokenizer_folder() const {
  if (aligned_adapter_ && fs::exists(aligned_adapter_->folder() / "tokenizer.json"))
    return aligned_adapter_->folder();
  return model_->folder();
}

}  // namespace expo
