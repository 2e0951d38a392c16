#include "eval/prompt_set.h"

#include <map>
#include <utility>

#include "core/error.h"
#include "core/fs.h"
#include "core/json_reader.h"
#include "core/splitmix64.h"

namespace expo {

using nlohmann::json;

const char* prompt_format_name(PromptFormat format) {
  switch (format) {
    case PromptFormat::kJsonl:
      return "jsonl";
    case PromptFormat::kMtBench:
      return "mt_bench";
    case PromptFormat::kAlpacaEval:
      return "alpaca_eval";
  }
  return "?";
}

std::string Prompt::user_turn(size_t turn) const {
  if (turn >= turn_count())
    fail("prompt ", id_text, " has ", turn_count(), " turn(s); there is no turn ", turn + 1);
  if (messages.empty())
    fail("prompt ", id_text,
         ": its text is unknown (an MT-Bench answer file holds only the "
         "question id; join the questions with attach_prompts)");
  if (turn == 0) return messages.back().at("content").get<std::string>();
  return followups[turn - 1];
}

namespace {

const json* find(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string nonempty_string(const json& value, const std::string& where, const char* key) {
  if (!value.is_string())
    fail(where, ": \"", key, "\" must be a string, got ", json_type_name(value));
  std::string text = value.get<std::string>();
  if (text.empty()) fail(where, ": \"", key, "\" is empty");
  return text;
}

// The record's id ("id" or "question_id"), or its index.
void read_id(const json& object, size_t index, const std::string& where, Prompt& prompt) {
  const json* id = find(object, "id");
  const json* question_id = find(object, "question_id");
  auto text_of = [&](const json& value, const char* key) -> std::string {
    if (value.is_string()) {
      if (value.get<std::string>().empty()) fail(where, ": \"", key, "\" is an empty string");
      return value.get<std::string>();
    }
    if (value.is_number_integer()) return value.dump();
    fail(where, ": \"", key, "\" must be a string or an integer, got ", json_type_name(value));
  };
  if (id && question_id && text_of(*id, "id") != text_of(*question_id, "question_id"))
    fail(where, ": \"id\" (", id->dump(), ") and \"question_id\" (", question_id->dump(),
         ") differ: give one");
  const json* chosen = question_id ? question_id : id;
  if (chosen) {
    prompt.id = *chosen;
    prompt.id_text = text_of(*chosen, question_id ? "question_id" : "id");
  } else {
    prompt.id = index;
    prompt.id_text = std::to_string(index);
  }
}

}  // namespace

Prompt prompt_from_json(const json& object, size_t index, const std::string& where) {
  if (!object.is_object()) fail(where, ": expected a JSON object, got ", json_type_name(object));
  Prompt prompt;
  prompt.source_index = index;
  prompt.fields = object;
  read_id(object, index, where, prompt);

  static constexpr const char* kKeys[] = {"prompt", "messages", "instruction", "turns"};
  const char* given = nullptr;
  for (const char* key : kKeys) {
    if (!find(object, key)) continue;
    if (given)
      fail(where, ": has both \"", given, "\" and \"", key,
           "\": a record gives its prompt in exactly one way");
    given = key;
  }
  if (!given)
    fail(where,
         ": no prompt: expected one of \"prompt\" (text), \"messages\" (a chat), \"instruction\" "
         "(Alpaca) or \"turns\" (MT-Bench)");
  const std::string key = given;

  if (const json* category = find(object, "category")) {
    if (!category->is_string())
      fail(where, ": \"category\" must be a string, got ", json_type_name(*category));
    prompt.category = category->get<std::string>();
  }

  auto user_message = [](const std::string& text) {
    return json::array({json{{"role", "user"}, {"content", text}}});
  };
  if (key == "prompt") {
    prompt.kind = PromptKind::kText;
    prompt.messages = user_message(nonempty_string(object["prompt"], where, "prompt"));
  } else if (key == "instruction") {
    prompt.kind = PromptKind::kInstruction;
    prompt.instruction = nonempty_string(object["instruction"], where, "instruction");
    if (const json* input = find(object, "input")) {
      if (!input->is_string())
        fail(where, ": \"input\" must be a string, got ", json_type_name(*input));
      prompt.input = input->get<std::string>();
    }
    prompt.messages = user_message(
        prompt.input.empty() ? prompt.instruction : prompt.instruction + "\n\n" + prompt.input);
  } else if (key == "turns") {
    prompt.kind = PromptKind::kTurns;
    const json& turns = object["turns"];
    if (!turns.is_array())
      fail(where, ": \"turns\" must be a list of strings, got ", json_type_name(turns));
    if (turns.empty()) fail(where, ": \"turns\" is empty");
    for (size_t t = 0; t < turns.size(); ++t) {
      const std::string text = nonempty_string(turns[t], where, str("turns[", t, "]").c_str());
      if (t == 0)
        prompt.messages = user_message(text);
      else
        prompt.followups.push_back(text);
    }
  } else {  // messages
    prompt.kind = PromptKind::kMessages;
    const json& messages = object["messages"];
    if (!messages.is_array())
      fail(where, ": \"messages\" must be a list of {\"role\", \"content\"}, got ",
           json_type_name(messages));
    if (messages.empty()) fail(where, ": \"messages\" is empty");
    for (size_t m = 0; m < messages.size(); ++m) {
      const json& message = messages[m];
      const std::string at = str(where, ": messages[", m, "]");
      if (!message.is_object())
        fail(at, ": expected an object {\"role\", \"content\"}, got ", json_type_name(message));
      const json* role = find(message, "role");
      if (!role) fail(at, ": missing \"role\"");
      if (!role->is_string() || role->get<std::string>().empty())
        fail(at, ": \"role\" must be a non-empty string, got ", role->dump());
      const json* content = find(message, "content");
      if (!content) fail(at, ": missing \"content\"");
      if (!content->is_string())
        fail(at, ": \"content\" must be a string, got ", json_type_name(*content));
    }
    if (messages.back()["role"] != "user")
      fail(where, ": the last message has role ", messages.back()["role"].dump(),
           "; a prompt must end with a \"user\" message (the model answers it)");
    prompt.messages = messages;
  }
  return prompt;
}

namespace {

void check_unique_ids(const std::vector<Prompt>& prompts, const std::vector<std::string>& wheres) {
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto [it, inserted] = seen.emplace(prompts[i].id_text, i);
    if (!inserted)
      fail(wheres[i], ": duplicate id ", prompts[i].id.dump(), " (also at ", wheres[it->second],
           ")");
  }
}

}  // namespace

PromptSet parse_prompt_set(const std::string& text_in, const std::string& name,
                           const InputLimits& limits) {
  std::string_view text = text_in;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 byte order mark
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) fail(name, ": the file is empty: no prompts");

  PromptSet set;
  set.path = name;
  std::vector<std::string> wheres;
  if (text[first] == '[') {  // AlpacaEval: one JSON list
    json list;
    try {
      list = json::parse(text);
    } catch (const json::exception& e) {
      fail(name, ": malformed JSON: ", json_error_text(e));
    }
    if (list.empty()) fail(name, ": the list is empty: no prompts");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string where = str(name, ": item ", i);
      if (list[i].is_object() && !list[i].contains("instruction"))
        fail(where,
             ": missing \"instruction\" (a JSON list is read as AlpacaEval's "
             "[{\"instruction\", ...}]; for other prompts use one JSON object per line)");
      set.prompts.push_back(prompt_from_json(list[i], i, where));
      wheres.push_back(where);
    }
    set.format = PromptFormat::kAlpacaEval;
  } else {  // JSONL
    std::string first_where;
    bool mt_bench = false;
    for_each_jsonl_line(text, name, limits, [&](const json& object, const std::string& where) {
      Prompt prompt = prompt_from_json(object, set.prompts.size(), where);
      const bool is_turns = prompt.kind == PromptKind::kTurns;
      if (set.prompts.empty()) {
        mt_bench = is_turns;
        first_where = where;
      } else if (is_turns != mt_bench) {
        fail(where,
             is_turns ? ": is an MT-Bench question (\"turns\") but "
                      : ": is not an MT-Bench question (no \"turns\") but ",
             first_where, is_turns ? " is not" : " is", ": a file holds one format");
      }
      set.prompts.push_back(std::move(prompt));
      wheres.push_back(where);
    });
    if (set.prompts.empty()) fail(name, ": the file has only blank lines: no prompts");
    set.format = mt_bench ? PromptFormat::kMtBench : PromptFormat::kJsonl;
  }
  check_unique_ids(set.prompts, wheres);
  return set;
}

PromptSet read_prompt_set(const std::filesystem::path& path, const InputLimits& limits) {
  PromptSet set = parse_prompt_set(
      read_text_file(path, limits.max_file_bytes, kInputMaxFileEnv, /*json_text=*/true),
      path.string(), limits);
  set.path = path;
  return set;
}

void select_prompts(PromptSet& set, std::optional<size_t> limit, bool shuffle, uint64_t seed) {
  if (limit && *limit == 0) fail("--limit must be at least 1");
  auto& prompts = set.prompts;
  if (shuffle && prompts.size() > 1) {
    SplitMix64 rng(seed);
    for (size_t i = prompts.size() - 1; i > 0; --i) {
      const size_t j = static_cast<size_t>(rng.below(i + 1));
      std::swap(prompts[i], prompts[j]);
    }
  }
  if (limit && *limit < prompts.size()) prompts.resize(*limit);
}

json conversation_for_turn(const Prompt& prompt, size_t turn,
                           std::span<const std::string> answers) {
  if (turn >= prompt.turn_count())
    fail("prompt ", prompt.id_text, " has ", prompt.turn_count(), " turn(s); there is no turn ",
         turn + 1);
  if (answers.size() < turn)
    fail("prompt ", prompt.id_text, ": turn ", turn + 1, " needs the answers to the ", turn,
         " turn(s) before it; got ", answers.size());
  json messages = prompt.messages;
  for (size_t k = 0; k < turn; ++k) {
    messages.push_back({{"role", "assistant"}, {"content", answers[k]}});
    messages.push_back({{"role", "user"}, {"content", prompt.followups[k]}});
  }
  return messages;
}

json full_conversation(const Prompt& prompt, std::span<const std::string> answers) {
  if (answers.empty() || answers.size() > prompt.turn_count())
    fail("prompt ", prompt.id_text, " has ", prompt.turn_count(), " turn(s) but ", answers.size(),
         " answer(s)");
  json messages = conversation_for_turn(prompt, answers.size() - 1, answers);
  messages.push_back({{"role", "assistant"}, {"content", answers.back()}});
  return messages;
}

std::optional<double> mt_bench_temperature(const std::string& category) {
  // FastChat fastchat/llm_judge/common.py, temperature_config.
  static const std::map<std::string, double> kTemperatures = {
      {"writing", 0.7}, {"roleplay", 0.7},  {"extraction", 0.0}, {"math", 0.0},
      {"coding", 0.0},  {"reasoning", 0.0}, {"stem", 0.1},       {"humanities", 0.1},
  };
  const auto it = kTemperatures.find(category);
  if (it == kTemperatures.end()) return std::nullopt;
  return it->second;
}

}  // namespace expo
