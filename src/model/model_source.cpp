#include "model/model_source.h"

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
  ModelConfig config =
      parse_model_config(*checkpoint.config(), (checkpoint.folder() / "config.json").string());
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

ModelSource ModelSource::aligned_only() const {
  ModelSource s;
  s.checkpoint_ = checkpoint_;
  s.config_ = config_;
  return s;
}

}  // namespace expo
