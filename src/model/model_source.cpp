#include "model/model_source.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "model/weights.h"

namespace expo {

ModelConfig read_model_config(const Checkpoint& checkpoint) {
  const std::string where =
      checkpoint.folder().empty() ? checkpoint.spec() : checkpoint.folder().string();
  if (!checkpoint.config())
    fail(where,
         ": no config.json beside the weights; the engine needs it to know the architecture");
  const auto& gguf = checkpoint.gguf();
  ModelConfig config = parse_model_config(
      *checkpoint.config(), gguf ? checkpoint.spec() + " (its GGUF metadata as config.json)"
                                 : (checkpoint.folder() / "config.json").string());
  if (gguf) {
    // What llama.cpp's form holds that config.json cannot say.
    if (gguf->norms_hold_one) config.norm_plus_one = false;
    if (!gguf->rope_freq_factors.empty()) {
      if (config.rope_scaling.kind != RopeKind::kDefault)
        fail(checkpoint.spec(), ": rope_freqs.weight beside another rope scaling");
      if (gguf->rope_freq_factors.size() != config.rotary_dim / 2)
        fail(checkpoint.spec(), ": rope_freqs.weight has ", gguf->rope_freq_factors.size(),
             " factors; the model rotates ", config.rotary_dim / 2, " frequencies per head");
      for (double f : gguf->rope_freq_factors)
        if (!(f > 0) || !std::isfinite(f))
          fail(checkpoint.spec(), ": rope_freqs.weight holds ", f, "; factors must be positive");
      config.rope_scaling.kind = RopeKind::kFreqFactors;
      config.rope_scaling.freq_factors = gguf->rope_freq_factors;
    }
  }
  const auto gen = checkpoint.folder() / "generation_config.json";
  if (!checkpoint.folder().empty() && std::filesystem::exists(gen)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text_file(gen));
    } catch (const nlohmann::json::exception& e) {
      fail(gen.string(), ": not valid JSON: ", e.what());
    }
    merge_generation_config(config, j, gen.string());
  }
  return config;
}

ModelSource ModelSource::open(const std::string& spec) {
  return single(std::make_shared<const Checkpoint>(Checkpoint::open(spec)));
}

ModelSource ModelSource::single(std::shared_ptr<const Checkpoint> checkpoint) {
  ModelSource s;
  s.checkpoint_ = std::move(checkpoint);
  s.config_ = read_model_config(*s.checkpoint_);
  check_model_tensors(s.config_, *s.checkpoint_, "model");
  return s;
}

ModelSource ModelSource::open_pair(const std::string& sft, const std::string& aligned) {
  auto aligned_checkpoint = std::make_shared<const Checkpoint>(Checkpoint::open(aligned));
  auto sft_checkpoint = std::make_shared<const Checkpoint>(Checkpoint::open(sft));
  return pair(std::move(sft_checkpoint), std::move(aligned_checkpoint));
}

ModelSource ModelSource::pair(std::shared_ptr<const Checkpoint> sft,
                              std::shared_ptr<const Checkpoint> aligned,
                              std::shared_ptr<const Plan> plan) {
  ModelSource s;
  s.checkpoint_ = std::move(aligned);
  s.sft_ = std::move(sft);
  s.config_ = read_model_config(*s.checkpoint_);
  // The SFT model must be the same architecture; the plan checks every tensor.
  const ModelConfig sft_config = read_model_config(*s.sft_);
  if (sft_config.architecture != s.config_.architecture)
    fail("the SFT model is ", sft_config.architecture, " but the aligned model is ",
         s.config_.architecture);
  check_model_tensors(s.config_, *s.checkpoint_, "aligned model");
  s.plan_ = plan ? std::move(plan)
                 : std::make_shared<const Plan>(make_plan(*s.sft_, *s.checkpoint_, PlanOptions{}));
  return s;
}

ModelSource ModelSource::from_pair(std::shared_ptr<const ExpoPair> pair,
                                   std::shared_ptr<const Plan> plan) {
  if (pair->form() == ExpoPair::Form::kCheckpoints) {
    std::shared_ptr<const Checkpoint> sft(pair, pair->sft_checkpoint());
    std::shared_ptr<const Checkpoint> aligned(pair, pair->aligned_checkpoint());
    return ModelSource::pair(std::move(sft), std::move(aligned), std::move(plan));
  }
  ModelSource s;
  s.checkpoint_ = pair->shared_model();
  s.sft_ = pair->shared_model();
  s.config_ = read_model_config(*s.checkpoint_);
  check_model_tensors(s.config_, *s.checkpoint_,
                      pair->form() == ExpoPair::Form::kAdapter ? "SFT model" : "base model");
  s.plan_ = plan ? std::move(plan) : std::make_shared<const Plan>(pair->plan(PlanOptions{}));
  s.folder_ = pair->tokenizer_folder();
  s.pair_ = std::move(pair);
  return s;
}

ModelSource ModelSource::with_adapter(const std::string& model, const std::string& adapter) {
  if (!PeftAdapter::find(adapter))
    fail("--adapter ", adapter, ": not a PEFT adapter folder (no adapter_config.json)");
  PairSpec spec;
  spec.sft = model;
  spec.aligned = adapter;
  ModelSource s = from_pair(ExpoPair::open(spec));
  s.fixed_alpha_ = 0.0;
  return s;
}

std::vector<std::pair<std::string, const Checkpoint*>> ModelSource::inputs() const {
  if (!pair_) {
    if (sft_) return {{"--sft", sft_.get()}, {"--aligned", checkpoint_.get()}};
    return {{"--model", checkpoint_.get()}};
  }
  const ExpoPair& p = *pair_;
  if (fixed_alpha_ && p.form() == ExpoPair::Form::kAdapter)
    return {{"--model", p.sft_checkpoint()}, {"--adapter", &p.aligned_adapter()->weights()}};
  if (p.form() == ExpoPair::Form::kAdapter)
    return {{"--sft", p.sft_checkpoint()}, {"--aligned", &p.aligned_adapter()->weights()}};
  return {{"--base", &p.model()},
          {"--sft", &p.sft_adapter()->weights()},
          {"--aligned", &p.aligned_adapter()->weights()}};
}

std::string ModelSource::display_spec() const {
  return pair_ ? pair_->spec().aligned : checkpoint_->spec();
}

ModelSource ModelSource::aligned_only() const {
  if (pair_) {  // theta1 is the adapter applied on load
    ModelSource s = *this;
    s.fixed_alpha_ = 0.0;
    return s;
  }
  ModelSource s;
  s.checkpoint_ = checkpoint_;
  s.config_ = config_;
  return s;
}

}  // namespace expo
