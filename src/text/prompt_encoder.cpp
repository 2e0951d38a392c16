#include "text/prompt_encoder.h"

#include <algorithm>

#include "core/error.h"
#include "jinja/chat_template.h"

namespace expo {

PromptEncoder::PromptEncoder(const std::filesystem::path& folder, std::string template_name)
    : tokenizer_(Tokenizer::load(folder)),
      folder_(folder),
      template_name_(std::move(template_name)) {
  auto add_stop = [&](std::optional<int32_t> id) {
    if (id && std::find(stop_ids_.begin(), stop_ids_.end(), *id) == stop_ids_.end())
      stop_ids_.push_back(*id);
  };
  if (const auto eos = tokenizer_.eos_token()) add_stop(tokenizer_.token_to_id(*eos));
  try {
    load_chat_template(folder_, template_name_);
    has_template_ = true;
  } catch (const Error& e) {
    template_error_ = e.what();
    return;
  }
  // The end-of-turn token: the first special token the template writes after an assistant
  // message's content.
  const std::string marker = "expo-end-of-turn-probe";
  nlohmann::ordered_json probe = nlohmann::ordered_json::array(
      {{{"role", "user"}, {"content", "hi"}}, {{"role", "assistant"}, {"content", marker}}});
  std::string rendered;
  try {
    rendered = render_for_folder(folder_, probe, false, template_name_);
  } catch (const Error&) {
    return;  // a template that refuses this conversation: eos alone ends answers
  }
  const size_t at = rendered.find(marker);
  if (at == std::string::npos) return;
  const std::string tail = rendered.substr(at + marker.size());
  for (int32_t id : tokenizer_.encode(tail, false)) {
    if (tokenizer_.is_special(id)) {
      add_stop(id);
      break;
    }
  }
}

std::string PromptEncoder::render(const nlohmann::ordered_json& messages,
                                  bool add_generation_prompt) const {
  if (!has_template_)
    fail(template_error_, " (pass --raw to send the prompt text without a chat template)");
  return render_for_folder(folder_, messages, add_generation_prompt, template_name_);
}

std::vector<int32_t> PromptEncoder::encode_messages(const nlohmann::ordered_json& messages,
                                                    bool add_generation_prompt) const {
  return tokenizer_.encode(render(messages, add_generation_prompt), false);
}

std::vector<int32_t> PromptEncoder::encode_raw(std::string_view text) const {
  return tokenizer_.encode(text, true);
}

std::string PromptEncoder::decode_answer(std::span<const int32_t> ids) const {
  if (!ids.empty() && std::find(stop_ids_.begin(), stop_ids_.end(), ids.back()) != stop_ids_.end())
    ids = ids.first(ids.size() - 1);
  // Models often have more rows than the tokenizer has tokens (vocab_size padded to a multiple
  // of 64 or 128). The tokenizers library skips such ids when decoding; so does expo here.
  const size_t vocab = tokenizer_.vocab_size();
  std::vector<int32_t> known;
  known.reserve(ids.size());
  for (int32_t id : ids)
    if (id >= 0 && static_cast<size_t>(id) < vocab) known.push_back(id);
  return tokenizer_.decode(known, true);
}

}  // namespace expo
