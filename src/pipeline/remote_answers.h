#pragma once
// Answers to a prompt set from an OpenAI-compatible server (vLLM, llama.cpp's server, SGLang,
// TGI, `expo serve`) through /v1/chat/completions: each turn's conversation is sent as
// messages (the server applies the model's chat template), turn by turn, `parallel` requests
// in flight (OpenAIClient's options).
//
// Each request carries seed = sampling.seed + stream, with the stream numbering of the local
// engine (prompt i, turn t: i + t x prompts.size()), so servers that honour per-request seeds
// (vLLM) sample every alpha of a search with the same random numbers.
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "eval/answers.h"
#include "eval/prompt_set.h"
#include "http/openai_client.h"
#include "model/sampler.h"
#include "pipeline/local_answers.h"

namespace expo {

struct RemoteProgress {
  size_t turn = 0, turns = 1;
  size_t done = 0, total = 0;      // requests of this turn
  uint64_t completion_tokens = 0;  // of this turn so far, as the server reports them
};

// Fills `answers` like generate_answers (local_answers.h): complete answers have one turn per
// user turn; after an exception (a server that died, a 4xx) `answers` holds what finished.
// output_tokens are the server's completion_tokens when it reports usage. `hooks` as for
// generate_answers: skipped prompts keep their seeds' numbering.
void generate_answers_remote(OpenAIClient& client, const std::string& model,
                             std::span<const Prompt> prompts, const SamplingParams& sampling,
                             uint64_t max_new_tokens, std::vector<Answer>& answers,
                             const std::function<void(const RemoteProgress&)>& on_done = {},
                             const AnswerHooks& hooks = {});

}  // namespace expo
