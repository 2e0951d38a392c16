#pragma once
// What a user gives (a raw prompt, or chat messages) turned into the token ids the engine
// sees, as transformers does it, and the ids that end an answer.
//
// Chat messages are rendered with the model's chat template and encoded with
// add_special_tokens=False, as apply_chat_template(tokenize=True) does: the template writes
// BOS itself where the model wants one, so BOS is never doubled. A raw prompt is encoded with
// the special tokens transformers adds by default.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace expo {

class PromptEncoder {
 public:
  // `folder`: tokenizer.json and tokenizer_config.json (the model folder).
  explicit PromptEncoder(const std::filesystem::path& folder,
                         std::string template_name = "default");

  const Tokenizer& tokenizer() const { return tokenizer_; }
  bool has_chat_template() const { return has_template_; }

  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt) const;
  std::vector<int32_t> encode_messages(const nlohmann::ordered_json& messages,
                                       bool add_generation_prompt = true) const;
  std::vector<int32_t> encode_raw(std::string_view text) const;

  // The tokenizer's eos token and the token the chat template puts after an assistant turn
  // (<|eot_id|>, <|im_end|>, <end_of_turn>, ...), found by rendering a probe conversation.
  std::vector<int32_t> stop_ids() const { return stop_ids_; }

  // The answer's text: special tokens skipped, a final stop token dropped, ids the tokenizer
  // does not have (a padded vocabulary) skipped as the tokenizers library does.
  std::string decode_answer(std::span<const int32_t> ids) const;

 private:
  Tokenizer tokenizer_;
  std::filesystem::path folder_;
  std::string template_name_;
  bool has_template_ = false;
  std::string template_error_;
  std::vector<int32_t> stop_ids_;
};

}  // namespace expo
