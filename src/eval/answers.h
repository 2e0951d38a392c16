#pragma once
// Answer files in the formats evaluation tools read, written atomically, and read back (score
// reads them).
//
//  - alpaca_eval: AlpacaEval's model_outputs.json, a JSON list of
//      {"instruction", "output", "generator", "dataset"}
//    (an AlpacaEval prompt's other fields, such as "input" or "id", are carried over as given).
//    Single-turn prompts that are one user message only.
//  - mt_bench: FastChat's model_answer JSONL, one line per question:
//      {"question_id", "answer_id", "model_id", "choices": [{"index": 0, "turns": [...]}],
//       "tstamp"}
//    answer_id is 22 characters of shortuuid's alphabet drawn from SplitMix64 seeded by the
//    write options' seed and the question id (the same inputs give the same id); tstamp is
//    Unix time in seconds. The file does not hold the questions: read them with
//    read_prompt_set and join them with attach_prompts.
//  - jsonl: one line per prompt:
//      {"id", <the prompt as read: "prompt" | "messages" | "instruction" (+ "input") |
//       "category"? + "turns">, "output", "finish_reason", "output_tokens", "generator"}
//    where output, finish_reason and output_tokens are a string / a string / an integer for a
//    single-turn prompt and lists (one per turn) for a multi-turn one; finish_reason and
//    output_tokens are left out when unknown. Such a file is also a valid prompt file.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/input_limits.h"
#include "eval/prompt_set.h"

namespace expo {

enum class AnswerFormat { kJsonl, kAlpacaEval, kMtBench };
const char* answer_format_name(AnswerFormat format);  // "jsonl", "alpaca_eval", "mt_bench"
// From a --format value ("jsonl", "alpaca_eval" or "mt_bench"); an error lists the choices.
AnswerFormat parse_answer_format(const std::string& name);
// AlpacaEval in -> AlpacaEval out; MT-Bench in -> MT-Bench out; anything else -> jsonl.
AnswerFormat default_answer_format(PromptFormat prompts);
// "model_outputs.json" (AlpacaEval), "<model_id>.jsonl" (FastChat's model_answer/ naming),
// "answers.jsonl".
std::string default_answer_file_name(AnswerFormat format, const std::string& model_id);

struct Answer {
  // What was asked. Readers of mt_bench files leave prompt.messages empty (the file holds only
  // the question id) until attach_prompts fills it.
  Prompt prompt;
  std::vector<std::string> turns;           // the model's answer to each user turn
  std::vector<std::string> finish_reasons;  // per turn ("stop", "length", ...); empty: unknown
  std::vector<uint64_t> output_tokens;      // per turn; empty: unknown
  std::string generator;                    // readers: "generator" / "model_id" when given
};

struct AnswerSet {
  std::filesystem::path path;
  AnswerFormat format = AnswerFormat::kJsonl;
  std::vector<Answer> answers;
};

struct AnswerWriteOptions {
  std::string generator = "expo";  // AlpacaEval "generator", MT-Bench "model_id", jsonl "generator"
  std::string dataset = "expo";    // AlpacaEval "dataset" for prompts that do not carry one
  uint64_t answer_id_seed = 0;     // MT-Bench answer ids
  std::optional<double> tstamp;    // MT-Bench "tstamp"; default: the time of writing
};

// The file's text. Errors name the prompt (an answer whose turn count does not match its
// prompt, a multi-turn or multi-message prompt written as alpaca_eval).
std::string format_answers(std::span<const Answer> answers, AnswerFormat format,
                           const AnswerWriteOptions& options);
// format_answers, written atomically (temporary file + rename).
void write_answers(const std::filesystem::path& path, std::span<const Answer> answers,
                   AnswerFormat format, const AnswerWriteOptions& options);

// Detects the format: a JSON list is alpaca_eval; JSONL whose records have "choices" is
// mt_bench; other JSONL is jsonl. Errors name the file and the line (JSONL) or item (list):
// malformed JSON, missing or mistyped fields, duplicate ids, an empty file.
// `limits` caps the file and each JSONL line, as for prompt sets.
AnswerSet read_answers(const std::filesystem::path& path,
                       const InputLimits& limits = InputLimits::from_environment());
AnswerSet parse_answers(const std::string& text, const std::string& name,
                        const InputLimits& limits = InputLimits{});

// Joins answers with their prompts by id: fills the prompts an answer file does not hold
// (mt_bench), and checks that every answer's id is in `prompts` and that it answers every
// turn. Errors name both files and the id.
void attach_prompts(AnswerSet& answers, const PromptSet& prompts);

// Resets `answers` to one empty answer per prompt (its prompt filled in), ready for generation
// turn by turn; returns the most turns any prompt has.
size_t start_answers(std::span<const Prompt> prompts, std::vector<Answer>& answers);

// The MT-Bench answer_id: 22 characters of shortuuid's alphabet, from (seed, question id).
std::string mt_bench_answer_id(uint64_t seed, const std::string& question_id);

}  // namespace expo
