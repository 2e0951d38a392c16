#pragma once
// Answers to a prompt set from the built-in engine: each prompt's conversation through the
// model's chat template (or its text as is, `raw`), continuous-batched generation turn by turn
// (MT-Bench's second turn is asked after the model's first answer), answers decoded.
//
// Streams: turn t of prompt i samples with stream i + t x prompts.size(), so a prompt's
// answer depends only on the model, the prompt, the sampling options and its position in the
// set: the same for every alpha of a search (paired comparisons), whatever the batch size.
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "eval/answers.h"
#include "eval/prompt_set.h"
#include "model/generator.h"
#include "text/prompt_encoder.h"

namespace expo {

// The tokens of turn `turn` of a prompt, given the answers to its earlier turns. `raw` sends
// the user's text with the tokenizer's default special tokens and no template (single-turn,
// single-message prompts only: anything else is an error naming the prompt).
std::vector<int32_t> encode_prompt_turn(const PromptEncoder& encoder, const Prompt& prompt,
                                        size_t turn, std::span<const std::string> answers,
                                        bool raw);

struct TurnProgress {
  size_t turn = 0, turns = 1;  // 0-based turn being generated, of how many
  GenerationStats stats;       // of this turn's batch
};

// Generates every turn of every prompt into `answers` (one Answer per prompt, in order; its
// prompt set here). Turns are appended as they finish, so after an exception `answers` holds
// what was done: complete answers have turns.size() == prompt.turn_count(). Request errors
// (too long for the context, ...) name the prompt through `set_name` and its id.
//
// `hooks` (optional): prompts to skip (answered by an earlier, interrupted run: their answers
// stay empty here, and the other prompts keep their stream numbers, so they sample exactly as
// in a run over the whole set), and a call as each prompt's last turn finishes.
struct AnswerHooks {
  std::vector<bool> skip;                        // by prompt index; shorter: the rest not skipped
  std::function<void(size_t prompt)> on_answer;  // answers[prompt] is complete
  bool skipped(size_t i) const { return i < skip.size() && skip[i]; }
};
void generate_answers(Transformer& model, const PromptEncoder& encoder,
                      std::span<const Prompt> prompts, const GenerationOptions& options, bool raw,
                      ThreadPool& pool, const std::string& set_name, std::vector<Answer>& answers,
                      const std::function<void(const TurnProgress&)>& on_step = {},
                      const AnswerHooks& hooks = {});

// Memory a generation run needs beyond the weights (KV caches, activations, logits), for
// --max-memory: `prompts` sequences of up to `longest_prompt` tokens (expo serve: --batch-size
// sequences as long as the context).
uint64_t generation_working_memory(const ModelConfig& config, const GenerationOptions& options,
                                   uint64_t prompts, uint64_t longest_prompt);

}  // namespace expo
