#include "jinja/chat_template.h"

#include "core/error.h"
#include "core/fs.h"
#include "jinja/jinja.h"

namespace expo {

namespace {

nlohmann::ordered_json read_json(const fs::path& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path.string(), ": not valid JSON: ", e.what());
  }
}

// A special token as tokenizer_config.json writes it: "<s>" or {"content": "<s>", ...}.
std::string token_text(const nlohmann::ordered_json& value, const fs::path& file,
                       const std::string& key) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string())
    return value["content"].get<std::string>();
  if (value.is_null()) return "";
  fail(file.string(), ": ", key, " must be a string or an object with \"content\"");
}

}  // namespace

std::string render_chat_template(const std::string& template_text,
                                 const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra, const std::string& origin) {
  if (!messages.is_array()) fail(origin, ": messages must be a JSON list");
  if (!extra.is_object()) fail(origin, ": extra template variables must be a JSON object");
  nlohmann::ordered_json variables = nlohmann::ordered_json::object();
  variables["messages"] = messages;
  variables["tools"] = nullptr;
  variables["documents"] = nullptr;
  variables["add_generation_prompt"] = add_generation_prompt;
  for (const auto& [key, value] : extra.items()) variables[key] = value;
  return jinja::Template(template_text, origin).render(variables);
}

std::string render_chat_template(const std::string& template_text, const nlohmann::json& messages,
                                 bool add_generation_prompt, const nlohmann::json& extra) {
  return render_chat_template(
      template_text, nlohmann::ordered_json(messages), add_generation_prompt,
      extra.is_null() ? nlohmann::ordered_json::object() : nlohmann::ordered_json(extra));
}

ChatTemplateSource load_chat_template(const fs::path& folder, const std::string& name) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    fail(folder.string(), ": not a folder (expected a tokenizer or model folder)");
  const fs::path jinja_file = folder / "chat_template.jinja";
  const fs::path named_file = folder / "additional_chat_templates" / (name + ".jinja");
  if (name != "default" && fs::is_regular_file(named_file, ec))
    return {read_text_file(named_file), named_file.string()};
  if (fs::is_regular_file(jinja_file, ec)) {
    if (name == "default") return {read_text_file(jinja_file), jinja_file.string()};
    fail(folder.string(), ": no chat template named '", name, "' (", jinja_file.filename().string(),
         " is the default one and additional_chat_templates/", name, ".jinja does not exist)");
  }
  const fs::path config_file = folder / "tokenizer_config.json";
  if (!fs::is_regular_file(config_file, ec))
    fail(folder.string(),
         ": no chat template (neither chat_template.jinja nor "
         "tokenizer_config.json exists)");
  const nlohmann::ordered_json config = read_json(config_file);
  const auto it = config.is_object() ? config.find("chat_template") : config.end();
  if (it == config.end() || it->is_null())
    fail(config_file.string(), ": the tokenizer has no chat template (no \"chat_template\" and no ",
         "chat_template.jinja beside it)");
  if (it->is_string()) {
    if (name != "default")
      fail(config_file.string(), ": no chat template named '", name,
           "' (the tokenizer has a single, default one)");
    return {it->get<std::string>(), config_file.string() + " (chat_template)"};
  }
  if (!it->is_array())
    fail(config_file.string(),
         ": \"chat_template\" must be a string or a list of "
         "{\"name\", \"template\"}");
  std::string names;
  for (const auto& entry : *it) {
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
        !entry.contains("template") || !entry["template"].is_string())
      fail(config_file.string(),
           ": every entry of \"chat_template\" must be {\"name\": ..., "
           "\"template\": ...}");
    const std::string entry_name = entry["name"].get<std::string>();
    if (entry_name == name)
      return {entry["template"].get<std::string>(),
              config_file.string() + " (chat_template '" + name + "')"};
    names += (names.empty() ? "" : ", ") + entry_name;
  }
  if (name == "default")
    fail(config_file.string(),
         ": the tokenizer has several chat templates and none is named "
         "'default'; choose one with --template-name (",
         names, ")");
  fail(config_file.string(), ": no chat template named '", name, "' (there are: ", names, ")");
}

nlohmann::ordered_json load_special_tokens(const fs::path& folder) {
  static const char* const kKeys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                      "pad_token", "cls_token", "mask_token"};
  nlohmann::ordered_json tokens = nlohmann::ordered_json::object();
  std::error_code ec;
  for (const char* file_name : {"tokenizer_config.json", "special_tokens_map.json"}) {
    const fs::path file = folder / file_name;
    if (!fs::is_regular_file(file, ec)) continue;
    const nlohmann::ordered_json config = read_json(file);
    if (!config.is_object()) fail(file.string(), ": expected a JSON object");
    for (const char* key : kKeys) {
      if (!config.contains(key)) continue;
      const std::string text = token_text(config[key], file, key);
      if (text.empty())
        tokens.erase(key);
      else
        tokens[key] = text;
    }
    if (config.contains("additional_special_tokens")) {
      const auto& list = config["additional_special_tokens"];
      if (!list.is_array() && !list.is_null())
        fail(file.string(), ": additional_special_tokens must be a list");
      nlohmann::ordered_json texts = nlohmann::ordered_json::array();
      if (list.is_array())
        for (const auto& item : list)
          texts.push_back(token_text(item, file, "additional_special_tokens"));
      if (texts.empty())
        tokens.erase("additional_special_tokens");
      else
        tokens["additional_special_tokens"] = texts;
    }
  }
  return tokens;
}

std::string render_for_folder(const fs::path& folder, const nlohmann::ordered_json& messages,
                              bool add_generation_prompt, const std::string& template_name,
                              const nlohmann::ordered_json& extra) {
  const ChatTemplateSource source = load_chat_template(folder, template_name);
  nlohmann::ordered_json variables = load_special_tokens(folder);
  for (const auto& [key, value] : extra.items()) variables[key] = value;
  return render_chat_template(source.text, messages, add_generation_prompt, variables,
                              source.origin);
}

}  // namespace expo
