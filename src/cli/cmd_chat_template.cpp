// expo chat-template: a conversation rendered with a model's chat template, exactly as
// transformers' tokenizer.apply_chat_template(messages, tokenize=False) renders it.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/input_limits.h"
#include "io/hf_cache.h"
#include "jinja/chat_template.h"

namespace expo::cli {

namespace {

struct ChatTemplateArgs {
  std::string tokenizer, messages, template_name = "default", template_file;
  bool add_generation_prompt = false;
};

nlohmann::ordered_json read_messages(const std::string& path) {
  // Standard input is read as /dev/stdin, under the same size limit as a file.
  const std::string text = read_text_file(path == "-" ? "/dev/stdin" : path,
                                          InputLimits::from_environment().max_file_bytes,
                                          kInputMaxFileEnv, /*json_text=*/true);
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
}

void run(const ChatTemplateArgs& args) {
  fs::path folder = args.tokenizer;
  std::error_code ec;
  if (!fs::exists(folder, ec) && looks_like_repo_id(args.tokenizer))
    folder = resolve_hf_snapshot(args.tokenizer, "");
  const nlohmann::ordered_json doc = read_messages(args.messages);
  nlohmann::ordered_json messages;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  if (doc.is_array()) {
    messages = doc;
  } else if (doc.is_object() && doc.contains("messages")) {
    // {"messages": [...], "tools": [...], ...}: the other keys are template variables too.
    for (const auto& [key, value] : doc.items()) {
      if (key == "messages")
        messages = value;
      else
        extra[key] = value;
    }
  } else {
    fail(args.messages, ": expected a JSON list of messages or an object with \"messages\"");
  }
  if (!messages.is_array()) fail(args.messages, ": \"messages\" must be a JSON list");
  for (size_t i = 0; i < messages.size(); ++i)
    if (!messages[i].is_object())
      fail(args.messages, ": message ", i + 1, " is not an object ({\"role\", \"content\"})");

  std::string text;
  if (args.template_file.empty()) {
    text =
        render_for_folder(folder, messages, args.add_generation_prompt, args.template_name, extra);
  } else {
    nlohmann::ordered_json variables = load_special_tokens(folder);
    for (const auto& [key, value] : extra.items()) variables[key] = value;
    text = render_chat_template(read_text_file(args.template_file), messages,
                                args.add_generation_prompt, variables, args.template_file);
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

void add_chat_template_command(CLI::App& app) {
  auto args = std::make_shared<ChatTemplateArgs>();
  auto* cmd = app.add_subcommand(
      "chat-template",
      "Render a conversation with the model's chat template, as transformers' "
      "apply_chat_template(tokenize=False) does; the text goes to stdout as is (no newline "
      "added).\nExample: expo chat-template --tokenizer ./zephyr-7b-beta --messages chat.json "
      "--add-generation-prompt");
  cmd->add_option("--tokenizer", args->tokenizer,
                  "folder with tokenizer_config.json or chat_template.jinja (or a cached repo "
                  "id)")
      ->required();
  cmd->add_option("--messages", args->messages,
                  "JSON file: a list of {\"role\", \"content\"}, or {\"messages\": [...], ...} "
                  "whose other keys (tools, documents, enable_thinking...) become template "
                  "variables; - reads stdin")
      ->required();
  cmd->add_flag("--add-generation-prompt", args->add_generation_prompt,
                "end with the start of the assistant's turn");
  cmd->add_option("--template-name", args->template_name,
                  "which of several named chat templates (default: \"default\")");
  cmd->add_option("--template", args->template_file,
                  "a .jinja file to use instead of the folder's template (special tokens still "
                  "come from the folder)");
  cmd->callback([args] { run(*args); });
}

}  // namespace expo::cli
