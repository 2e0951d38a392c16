#include "eval/answers.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "core/atomic_write.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json_reader.h"
#include "core/splitmix64.h"

namespace expo {

using nlohmann::json;
using nlohmann::ordered_json;

const char* answer_format_name(AnswerFormat format) {
  switch (format) {
    case AnswerFormat::kJsonl:
      return "jsonl";
    case AnswerFormat::kAlpacaEval:
      return "alpaca_eval";
    case AnswerFormat::kMtBench:
      return "mt_bench";
  }
  return "?";
}

AnswerFormat parse_answer_format(const std::string& name) {
  for (AnswerFormat f : {AnswerFormat::kJsonl, AnswerFormat::kAlpacaEval, AnswerFormat::kMtBench})
    if (name == answer_format_name(f)) return f;
  fail("unknown answer format \"", name, "\": choose jsonl, alpaca_eval or mt_bench");
}

AnswerFormat default_answer_format(PromptFormat prompts) {
  switch (prompts) {
    case PromptFormat::kAlpacaEval:
      return AnswerFormat::kAlpacaEval;
    case PromptFormat::kMtBench:
      return AnswerFormat::kMtBench;
    case PromptFormat::kJsonl:
      break;
  }
  return AnswerFormat::kJsonl;
}

std::string default_answer_file_name(AnswerFormat format, const std::string& model_id) {
  switch (format) {
    case AnswerFormat::kAlpacaEval:
      return "model_outputs.json";
    case AnswerFormat::kMtBench:
      return (model_id.empty() ? std::string("expo") : model_id) + ".jsonl";
    case AnswerFormat::kJsonl:
      break;
  }
  return "answers.jsonl";
}

std::string mt_bench_answer_id(uint64_t seed, const std::string& question_id) {
  // shortuuid's default alphabet: digits and letters without 0, 1, I, O and l.
  static constexpr char kAlphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  constexpr uint64_t kSize = sizeof(kAlphabet) - 1;  // 57
  SplitMix64 rng(SplitMix64(seed).next() ^ fnv1a64(question_id));
  std::string id(22, ' ');
  for (char& c : id) c = kAlphabet[rng.below(kSize)];
  return id;
}

namespace {

// ---- writing ----

void check_answer(const Answer& a) {
  const size_t turns = a.prompt.turn_count();
  if (a.prompt.messages.empty()) fail("answer ", a.prompt.id_text, ": its prompt is unknown");
  if (a.turns.size() != turns)
    fail("prompt ", a.prompt.id_text, " has ", turns, " turn(s) but its answer has ",
         a.turns.size());
  if (!a.finish_reasons.empty() && a.finish_reasons.size() != turns)
    fail("prompt ", a.prompt.id_text, ": ", a.finish_reasons.size(), " finish reasons for ", turns,
         " turn(s)");
  if (!a.output_tokens.empty() && a.output_tokens.size() != turns)
    fail("prompt ", a.prompt.id_text, ": ", a.output_tokens.size(), " token counts for ", turns,
         " turn(s)");
}

ordered_json alpaca_item(const Answer& a, const AnswerWriteOptions& options) {
  const Prompt& p = a.prompt;
  if (p.turn_count() != 1 || p.messages.size() != 1)
    fail("prompt ", p.id_text, " is ",
         p.turn_count() != 1 ? str(p.turn_count(), " turns") : str(p.messages.size(), " messages"),
         "; AlpacaEval's model_outputs.json holds one instruction per item: use --format jsonl");
  ordered_json item;
  if (p.kind == PromptKind::kInstruction) {
    // The source item's fields as given (instruction first), then ours.
    item["instruction"] = p.instruction;
    for (const auto& [key, value] : p.fields.items())
      if (key != "output" && key != "generator") item[key] = value;
  } else {
    item["instruction"] = p.user_turn(0);
  }
  item["output"] = a.turns[0];
  item["generator"] = options.generator;
  if (!item.contains("dataset")) item["dataset"] = options.dataset;
  return item;
}

ordered_json mt_bench_line(const Answer& a, const AnswerWriteOptions& options, double tstamp) {
  ordered_json line;
  line["question_id"] = a.prompt.id;
  line["answer_id"] = mt_bench_answer_id(options.answer_id_seed, a.prompt.id_text);
  line["model_id"] = options.generator;
  line["choices"] = ordered_json::array({ordered_json{{"index", 0}, {"turns", a.turns}}});
  line["tstamp"] = tstamp;
  return line;
}

ordered_json jsonl_line(const Answer& a, const AnswerWriteOptions& options) {
  const Prompt& p = a.prompt;
  ordered_json line;
  line["id"] = p.id;
  switch (p.kind) {
    case PromptKind::kText:
      line["prompt"] = p.user_turn(0);
      break;
    case PromptKind::kMessages:
      line["messages"] = p.messages;
      break;
    case PromptKind::kInstruction:
      line["instruction"] = p.instruction;
      if (!p.input.empty()) line["input"] = p.input;
      break;
    case PromptKind::kTurns: {
      if (!p.category.empty()) line["category"] = p.category;
      std::vector<std::string> turns;
      for (size_t t = 0; t < p.turn_count(); ++t) turns.push_back(p.user_turn(t));
      line["turns"] = turns;
      break;
    }
  }
  const bool single = p.turn_count() == 1;
  if (single)
    line["output"] = a.turns[0];
  else
    line["output"] = a.turns;
  if (!a.finish_reasons.empty()) {
    if (single)
      line["finish_reason"] = a.finish_reasons[0];
    else
      line["finish_reason"] = a.finish_reasons;
  }
  if (!a.output_tokens.empty()) {
    if (single)
      line["output_tokens"] = a.output_tokens[0];
    else
      line["output_tokens"] = a.output_tokens;
  }
  line["generator"] = options.generator;
  return line;
}

}  // namespace

std::string format_answers(std::span<const Answer> answers, AnswerFormat format,
                           const AnswerWriteOptions& options) {
  for (const Answer& a : answers) check_answer(a);
  std::string text;
  switch (format) {
    case AnswerFormat::kAlpacaEval: {
      ordered_json list = ordered_json::array();
      for (const Answer& a : answers) list.push_back(alpaca_item(a, options));
      text = dump_json(list, 2) + "\n";
      break;
    }
    case AnswerFormat::kMtBench: {
      const double tstamp =
          options.tstamp
              ? *options.tstamp
              : std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                    .count();
      for (const Answer& a : answers) text += dump_json(mt_bench_line(a, options, tstamp)) + "\n";
      break;
    }
    case AnswerFormat::kJsonl:
      for (const Answer& a : answers) text += dump_json(jsonl_line(a, options)) + "\n";
      break;
  }
  return text;
}

void write_answers(const std::filesystem::path& path, std::span<const Answer> answers,
                   AnswerFormat format, const AnswerWriteOptions& options) {
  write_file_atomically(path, format_answers(answers, format, options));
}

// ---- reading ----

namespace {

const json* find(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

// A string, or a list of strings (one per turn), as a list.
std::vector<std::string> strings_per_turn(const json& value, const std::string& where,
                                          const char* key) {
  std::vector<std::string> out;
  if (value.is_string()) {
    out.push_back(value.get<std::string>());
    return out;
  }
  if (!value.is_array())
    fail(where, ": \"", key, "\" must be a string or a list of strings, got ",
         json_type_name(value));
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string())
      fail(where, ": \"", key, "\"[", i, "] must be a string, got ", json_type_name(value[i]));
    out.push_back(value[i].get<std::string>());
  }
  return out;
}

std::vector<uint64_t> counts_per_turn(const json& value, const std::string& where,
                                      const char* key) {
  auto one = [&](const json& v, const std::string& at) -> uint64_t {
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
      fail(where, ": \"", at, "\" must be a non-negative integer, got ", v.dump());
    return v.get<uint64_t>();
  };
  std::vector<uint64_t> out;
  if (!value.is_array()) {
    out.push_back(one(value, key));
    return out;
  }
  for (size_t i = 0; i < value.size(); ++i) out.push_back(one(value[i], str(key, "[", i, "]")));
  return out;
}

std::string optional_string(const json& object, const char* key, const std::string& where) {
  const json* value = find(object, key);
  if (!value) return "";
  if (!value->is_string())
    fail(where, ": \"", key, "\" must be a string, got ", json_type_name(*value));
  return value->get<std::string>();
}

Answer alpaca_answer(const json& item, size_t index, const std::string& where) {
  if (item.is_object() && !find(item, "instruction"))
    fail(where,
         ": missing \"instruction\" (AlpacaEval's model_outputs.json is a list of "
         "{\"instruction\", \"output\", \"generator\", \"dataset\"})");
  Answer a;
  a.prompt = prompt_from_json(item, index, where);
  const json* output = find(item, "output");
  if (!output) fail(where, ": missing \"output\"");
  if (!output->is_string())
    fail(where, ": \"output\" must be a string, got ", json_type_name(*output));
  a.turns.push_back(output->get<std::string>());
  a.generator = optional_string(item, "generator", where);
  return a;
}

Answer mt_bench_answer(const json& line, size_t index, const std::string& where) {
  if (!line.is_object()) fail(where, ": expected a JSON object, got ", json_type_name(line));
  Answer a;
  const json* id = find(line, "question_id");
  if (!id) fail(where, ": missing \"question_id\"");
  if (id->is_string() && !id->get<std::string>().empty())
    a.prompt.id_text = id->get<std::string>();
  else if (id->is_number_integer())
    a.prompt.id_text = id->dump();
  else
    fail(where, ": \"question_id\" must be an integer or a non-empty string, got ", id->dump());
  a.prompt.id = *id;
  a.prompt.kind = PromptKind::kTurns;
  a.prompt.fields = line;
  a.prompt.source_index = index;
  a.prompt.messages = json::array();  // unknown until attach_prompts
  a.generator = optional_string(line, "model_id", where);
  const json* choices = find(line, "choices");
  if (!choices) fail(where, ": missing \"choices\"");
  if (!choices->is_array() || choices->empty())
    fail(where, ": \"choices\" must be a non-empty list of {\"index\", \"turns\"}");
  const json& choice = (*choices)[0];  // FastChat's judges read the first choice
  if (!choice.is_object()) fail(where, ": choices[0] must be an object {\"index\", \"turns\"}");
  const json* turns = find(choice, "turns");
  if (!turns) fail(where, ": choices[0] has no \"turns\"");
  if (!turns->is_array() || turns->empty())
    fail(where, ": choices[0].turns must be a non-empty list of strings");
  a.turns = strings_per_turn(*turns, where, "choices[0].turns");
  if (const json* tstamp = find(line, "tstamp"); tstamp && !tstamp->is_number())
    fail(where, ": \"tstamp\" must be a number, got ", json_type_name(*tstamp));
  return a;
}

Answer jsonl_answer(const json& line, size_t index, const std::string& where) {
  Answer a;
  a.prompt = prompt_from_json(line, index, where);
  const size_t turns = a.prompt.turn_count();
  const json* output = find(line, "output");
  if (!output) fail(where, ": missing \"output\" (the model's answer)");
  a.turns = strings_per_turn(*output, where, "output");
  if (a.turns.size() != turns)
    fail(where, ": the prompt has ", turns, " turn(s) but \"output\" has ", a.turns.size());
  if (const json* reasons = find(line, "finish_reason")) {
    a.finish_reasons = strings_per_turn(*reasons, where, "finish_reason");
    if (a.finish_reasons.size() != turns)
      fail(where, ": ", a.finish_reasons.size(), " finish reasons for ", turns, " turn(s)");
  }
  if (const json* tokens = find(line, "output_tokens")) {
    a.output_tokens = counts_per_turn(*tokens, where, "output_tokens");
    if (a.output_tokens.size() != turns)
      fail(where, ": ", a.output_tokens.size(), " token counts for ", turns, " turn(s)");
  }
  a.generator = optional_string(line, "generator", where);
  return a;
}

}  // namespace

AnswerSet parse_answers(const std::string& text_in, const std::string& name,
                        const InputLimits& limits) {
  std::string_view text = text_in;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) fail(name, ": the file is empty: no answers");

  AnswerSet set;
  set.path = name;
  std::vector<std::string> wheres;
  if (text[first] == '[') {
    set.format = AnswerFormat::kAlpacaEval;
    json list;
    try {
      list = json::parse(text);
    } catch (const json::exception& e) {
      fail(name, ": malformed JSON: ", json_error_text(e));
    }
    if (list.empty()) fail(name, ": the list is empty: no answers");
    for (size_t i = 0; i < list.size(); ++i) {
      wheres.push_back(str(name, ": item ", i));
      set.answers.push_back(alpaca_answer(list[i], i, wheres.back()));
    }
  } else {
    for_each_jsonl_line(text, name, limits, [&](const json& object, const std::string& where) {
      const bool mt_bench = object.is_object() && object.contains("choices");
      if (set.answers.empty()) {
        set.format = mt_bench ? AnswerFormat::kMtBench : AnswerFormat::kJsonl;
      } else if (mt_bench != (set.format == AnswerFormat::kMtBench)) {
        fail(where,
             mt_bench ? ": is an MT-Bench answer (\"choices\") but "
                      : ": is not an MT-Bench answer (no \"choices\") but ",
             wheres.front(), mt_bench ? " is not" : " is", ": a file holds one format");
      }
      const size_t index = set.answers.size();
      set.answers.push_back(mt_bench ? mt_bench_answer(object, index, where)
                                     : jsonl_answer(object, index, where));
      wheres.push_back(where);
    });
    if (set.answers.empty()) fail(name, ": the file has only blank lines: no answers");
  }
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < set.answers.size(); ++i) {
    const auto [it, inserted] = seen.emplace(set.answers[i].prompt.id_text, i);
    if (!inserted)
      fail(wheres[i], ": duplicate id ", set.answers[i].prompt.id.dump(), " (also at ",
           wheres[it->second], ")");
  }
  return set;
}

AnswerSet read_answers(const std::filesystem::path& path, const InputLimits& limits) {
  AnswerSet set = parse_answers(
      read_text_file(path, limits.max_file_bytes, kInputMaxFileEnv, /*json_text=*/true),
      path.string(), limits);
  set.path = path;
  return set;
}

void attach_prompts(AnswerSet& answers, const PromptSet& prompts) {
  std::map<std::string, const Prompt*> by_id;
  for (const Prompt& p : prompts.prompts) by_id.emplace(p.id_text, &p);
  for (Answer& a : answers.answers) {
    const auto it = by_id.find(a.prompt.id_text);
    if (it == by_id.end())
      fail(answers.path.string(), ": the answer with id ", a.prompt.id.dump(), " (record ",
           a.prompt.source_index, ") has no prompt with that id in ", prompts.path.string());
    if (a.prompt.messages.empty()) {
      const size_t index = a.prompt.source_index;
      a.prompt = *it->second;
      a.prompt.source_index = index;
    }
    if (a.turns.size() != a.prompt.turn_count())
      fail(answers.path.string(), ": the answer with id ", a.prompt.id.dump(), " has ",
           a.turns.size(), " turn(s) but its prompt in ", prompts.path.string(), " has ",
           a.prompt.turn_count());
  }
}

size_t start_answers(std::span<const Prompt> prompts, std::vector<Answer>& answers) {
  answers.assign(prompts.size(), Answer{});
  size_t turns = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    answers[i].prompt = prompts[i];
    turns = std::max(turns, prompts[i].turn_count());
  }
  return turns;
}

}  // namespace expo
