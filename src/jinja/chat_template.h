#pragma once
// Chat templates, rendered as transformers' tokenizer.apply_chat_template(messages,
// tokenize=False, add_generation_prompt=...) renders them: the template from the model folder
// (chat_template.jinja, or tokenizer_config.json's "chat_template", a string or a list of
// {name, template}), the special tokens as variables (bos_token, eos_token, ...), and
// messages, tools=None, documents=None, add_generation_prompt. The Jinja engine is
// src/jinja/jinja.h.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace expo {

// Renders `template_text` for `messages` (a JSON list of {role, content, ...}). `extra` holds
// more template variables (bos_token, eos_token, tools, documents, enable_thinking, ...); they
// override the defaults. Throws expo::Error "ORIGIN:LINE:COLUMN: message" when the template
// fails; for raise_exception(msg) the message is the template's.
std::string render_chat_template(
    const std::string& template_text, const nlohmann::ordered_json& messages,
    bool add_generation_prompt,
    const nlohmann::ordered_json& extra = nlohmann::ordered_json::object(),
    const std::string& origin = "chat template");
// The same for nlohmann::json (its objects iterate keys sorted, so tojson output of tools and
// arguments follows sorted order; use ordered_json to keep the order as written).
std::string render_chat_template(const std::string& template_text, const nlohmann::json& messages,
                                 bool add_generation_prompt, const nlohmann::json& extra);

struct ChatTemplateSource {
  std::string text;
  std::string origin;  // the file (and entry) it came from, for error messages
};

// The template transformers would use: chat_template.jinja when present (it overrides the
// config, as in transformers), else tokenizer_config.json's chat_template. `name` picks one of
// a list of named templates ("default" otherwise; named ones may also be
// additional_chat_templates/NAME.jinja). Throws expo::Error when the folder has none.
ChatTemplateSource load_chat_template(const std::filesystem::path& folder,
                                      const std::string& name = "default");

// The special tokens transformers passes to the template (its special_tokens_map): bos_token,
// eos_token, unk_token, sep_token, pad_token, cls_token, mask_token and
// additional_special_tokens, from tokenizer_config.json and special_tokens_map.json (which
// wins), each a string or {"content": ...}; empty or null ones are left out.
nlohmann::ordered_json load_special_tokens(const std::filesystem::path& folder);

// load_chat_template + load_special_tokens + render_chat_template.
std::string render_for_folder(
    const std::filesystem::path& folder, const nlohmann::ordered_json& messages,
    bool add_generation_prompt, const std::string& template_name = "default",
    const nlohmann::ordered_json& extra = nlohmann::ordered_json::object());

}  // namespace expo
