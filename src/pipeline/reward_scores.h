#pragma once
// Rewards for answers. The reward model reads the whole exchange (the conversation and the
// model's answers, eval/prompt_set.h full_conversation) rendered with the reward model's OWN
// chat template, add_generation_prompt off, encoded without extra special tokens: the
// template writes BOS itself, so BOS is never doubled (as apply_chat_template(tokenize=True)).
//
// On the built-in engine (score_answers_local) or through an OpenAI-compatible server's
// pooling API (score_answers_remote: the conversation is sent as messages and the server
// applies the template, vLLM's /pooling or /classify with raw logits).
//
// An answer the reward model cannot read (longer than its context) gets NaN, a "failed"
// answer in the statistics, with a warning; anything else wrong is an error.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "eval/alpha_stats.h"
#include "eval/answers.h"
#include "http/openai_client.h"
#include "model/model_source.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "text/prompt_encoder.h"
#include "text/tokenizer.h"

namespace expo {

// The tokens the reward model scores for one answer (all its turns).
std::vector<int32_t> encode_for_reward(const PromptEncoder& reward_encoder, const Answer& answer);

// A reward model on the built-in engine with its tokenizer, checked when it loads to be a
// *ForSequenceClassification model whose tokenizer has a chat template (errors name
// `--reward-model SPEC`).
struct LocalRewardModel {
  std::unique_ptr<LoadedModel> weights;
  std::unique_ptr<Transformer> model;
  std::unique_ptr<PromptEncoder> encoder;
  // `source`: one checkpoint (ModelSource::open of a folder, a .safetensors file or a cached
  // repo id), opened by the caller.
  static LocalRewardModel load(const ModelSource& source, ThreadPool& pool);
};

// One reward per answer (label 0's raw logit). `on_done(n)` after each packed forward pass.
std::vector<double> score_answers_local(LocalRewardModel& reward_model,
                                        std::span<const Answer> answers, ThreadPool& pool,
                                        std::vector<std::string>& warnings,
                                        const std::function<void(size_t done)>& on_done = {});

// The same through a server; `model` is the served reward model's name.
std::vector<double> score_answers_remote(OpenAIClient& client, const std::string& model,
                                         std::span<const Answer> answers,
                                         const std::function<void(size_t done)>& on_done = {});

// Rewards and lengths as the search's statistics want them. An answer's length in tokens is
// the sum of its turns' output_tokens when the answer file has them, else its turns counted
// with `tokenizer` (no special tokens) when given, else NaN; characters are Unicode code
// points (Python's len()). Truncated: any turn whose finish_reason is "length".
AlphaResult answers_result(double alpha, std::span<const Answer> answers,
                           std::span<const double> rewards, const Tokenizer* tokenizer);

// One line per answer: {"id", "reward" (null when failed), "answer_tokens", "answer_chars",
// "finish_reason"}, written atomically.
void write_rewards(const std::filesystem::path& path, std::span<const Answer> answers,
                   const AlphaResult& result);

}  // namespace expo
