#include "pipeline/remote_answers.h"

#include <algorithm>

namespace expo {

void generate_answers_remote(OpenAIClient& client, const std::string& model,
                             std::span<const Prompt> prompts, const SamplingParams& sampling,
                             uint64_t max_new_tokens, std::vector<Answer>& answers,
                             const std::function<void(const RemoteProgress&)>& on_done,
                             const AnswerHooks& hooks) {
  const size_t turns = start_answers(prompts, answers);
  for (size_t turn = 0; turn < turns; ++turn) {
    std::vector<ChatRequest> requests;
    std::vector<size_t> owner;
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (prompts[i].turn_count() <= turn || hooks.skipped(i)) continue;
      ChatRequest r;
      r.model = model;
      r.messages = conversation_for_turn(prompts[i], turn, answers[i].turns);
      r.temperature = sampling.temperature;
      r.top_p = sampling.top_p;
      r.top_k = static_cast<int>(sampling.top_k);
      r.min_p = sampling.min_p;
      r.presence_penalty = sampling.presence_penalty;
      r.frequency_penalty = sampling.frequency_penalty;
      r.repetition_penalty = sampling.repetition_penalty;
      r.seed = sampling.seed + i + turn * prompts.size();
      r.max_tokens = max_new_tokens;
      r.label = "prompt " + prompts[i].id_text +
                (turns > 1 ? " (turn " + std::to_string(turn + 1) + ")" : "");
      requests.push_back(std::move(r));
      owner.push_back(i);
    }
    if (requests.empty()) continue;
    RemoteProgress progress{turn, turns, 0, requests.size(), 0};
    client.chat_all(requests, [&](size_t k, const ChatResponse& response) {
      Answer& a = answers[owner[k]];
      a.turns.push_back(response.text);
      a.finish_reasons.push_back(response.finish_reason);
      a.output_tokens.push_back(response.completion_tokens);
      ++progress.done;
      progress.completion_tokens += response.completion_tokens;
      if (on_done) on_done(progress);
      if (hooks.on_answer && a.turns.size() == a.prompt.turn_count()) hooks.on_answer(owner[k]);
    });
  }
  // A server that reports no usage gives 0 tokens for a non-empty answer: unknown, not zero.
  for (auto& a : answers)
    for (size_t t = 0; t < a.turns.size(); ++t)
      if (a.output_tokens[t] == 0 && !a.turns[t].empty()) {
        a.output_tokens.clear();
        break;
      }
}

}  // namespace expo
