#pragma once
// Prompt sets for `expo search` (and generate/score): the files evaluation suites ship, read
// strictly, with errors that name the file and the line (JSONL) or the list index (JSON).
//
// Formats, detected from the content:
//  - JSONL, one object per line, each one of
//      {"prompt": "text"}                             one user message
//      {"messages": [{"role", "content"}, ...]}       a conversation ending with a user message
//      {"instruction": "text", "input"?: "text"}      Alpaca style; a non-empty input is appended
//                                                     after a blank line: instruction + "\n\n" +
//                                                     input
//    with the id from "id" or "question_id" (a string or an integer) when present, else the
//    0-based index of the record (blank lines are skipped and not counted).
//  - MT-Bench question.jsonl (FastChat llm_judge): {"question_id", "category"?, "turns": [user
//    strings], "reference"?}: the first turn is asked, then each later turn after the model's
//    answer to the previous one. A file is MT-Bench when its records have "turns"; all must.
//  - AlpacaEval JSON: a top-level list of {"instruction", "dataset"?, ...}; ids as above (the
//    list index unless an item has "id").
// Unknown fields are kept (`fields`) and ignored, so an answers file written as plain JSONL is
// itself a valid prompt file.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/input_limits.h"

namespace expo {

enum class PromptFormat {
  kJsonl,       // prompt / messages / instruction records, one per line
  kMtBench,     // FastChat question.jsonl
  kAlpacaEval,  // a JSON list of {"instruction", ...}
};
const char* prompt_format_name(PromptFormat format);  // "jsonl", "mt_bench", "alpaca_eval"

// How one record gave its prompt.
enum class PromptKind { kText, kMessages, kInstruction, kTurns };

struct Prompt {
  nlohmann::json id;    // as in the file (string or integer), or the record index
  std::string id_text;  // a string id as is, an integer in decimal; unique within a set
  PromptKind kind = PromptKind::kText;
  // The conversation the first answer continues: a JSON array of {"role", "content", ...}
  // objects whose last one is {"role": "user"}. Ready for a chat template.
  nlohmann::json messages = nlohmann::json::array();
  // User turns asked after each answer (MT-Bench's second turn); empty for single-turn prompts.
  std::vector<std::string> followups;
  std::string instruction;  // kInstruction: the instruction as given (without the input)
  std::string input;        // kInstruction: the optional input
  std::string category;     // MT-Bench's category ("" when absent)
  nlohmann::json fields;    // the whole source object, for writers that carry fields over
  size_t source_index = 0;  // 0-based record index in the file

  size_t turn_count() const { return 1 + followups.size(); }
  // The user's text of turn `turn` (0-based): the last message's content for turn 0.
  std::string user_turn(size_t turn) const;
};

struct PromptSet {
  std::filesystem::path path;
  PromptFormat format = PromptFormat::kJsonl;
  std::vector<Prompt> prompts;
};

// `limits` caps the file and each JSONL line (core/input_limits.h); the errors name the file,
// the line and the environment variable that raises the limit.
PromptSet read_prompt_set(const std::filesystem::path& path,
                          const InputLimits& limits = InputLimits::from_environment());
// The same from text in memory; `name` stands for the file in error messages.
PromptSet parse_prompt_set(const std::string& text, const std::string& name,
                           const InputLimits& limits = InputLimits{});

// One record (a JSONL line's object or a JSON list item) as a prompt. `where` names it in
// errors ("file.jsonl:3"); `index` is its record index (the id when it has none).
Prompt prompt_from_json(const nlohmann::json& object, size_t index, const std::string& where);

// --shuffle --seed S then --limit N, in that order (so a limit takes a random subset).
// The shuffle is Fisher-Yates driven by SplitMix64(seed): for i = n-1 down to 1, swap item i
// with item j, j uniform in [0, i] (SplitMix64::below(i + 1), rejection sampling, no modulo
// bias). The order therefore depends only on the seed and the number of prompts, on every
// platform. A limit of 0 is an error; a limit above the set's size keeps everything.
void select_prompts(PromptSet& set, std::optional<size_t> limit, bool shuffle, uint64_t seed);

// The messages to send for turn `turn` (0-based) of a prompt, given the model's answers to the
// turns before it: prompt.messages, then for each earlier turn k the assistant's answers[k]
// and the user's followups[k]. answers must hold at least `turn` entries.
nlohmann::json conversation_for_turn(const Prompt& prompt, size_t turn,
                                     std::span<const std::string> answers);
// The whole exchange for scoring: the conversation of the last answered turn followed by the
// assistant's answer. answers.size() must be between 1 and prompt.turn_count().
nlohmann::json full_conversation(const Prompt& prompt, std::span<const std::string> answers);

// FastChat's generation temperatures for MT-Bench categories (writing and roleplay 0.7, stem
// and humanities 0.1, extraction, math, coding and reasoning 0); nullopt for other categories.
std::optional<double> mt_bench_temperature(const std::string& category);

}  // namespace expo
