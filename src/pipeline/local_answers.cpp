#include "pipeline/local_answers.h"

#include <algorithm>

#include "core/error.h"
#include "model/continuous_batch.h"
#include "model/kv_cache.h"

namespace expo {

std::vector<int32_t> encode_prompt_turn(const PromptEncoder& encoder, const Prompt& prompt,
                                        size_t turn, std::span<const std::string> answers,
                                        bool raw) {
  if (raw) {
    if (prompt.turn_count() > 1 || prompt.messages.size() > 1)
      fail("prompt ", prompt.id_text,
           " is a conversation; --raw sends one text prompt without a chat template");
    return encoder.encode_raw(prompt.user_turn(0));
  }
  return encoder.encode_messages(conversation_for_turn(prompt, turn, answers), true);
}

void generate_answers(Transformer& model, const PromptEncoder& encoder,
                      std::span<const Prompt> prompts, const GenerationOptions& options, bool raw,
                      ThreadPool& pool, const std::string& set_name, std::vector<Answer>& answers,
                      const std::function<void(const TurnProgress&)>& on_step,
                      const AnswerHooks& hooks) {
  const size_t turns = start_answers(prompts, answers);
  for (size_t turn = 0; turn < turns; ++turn) {
    std::vector<GenerationRequest> requests;
    std::vector<size_t> owner;
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (prompts[i].turn_count() <= turn || hooks.skipped(i)) continue;
      std::vector<int32_t> tokens;
      try {
        tokens = encode_prompt_turn(encoder, prompts[i], turn, answers[i].turns, raw);
      } catch (const Error& e) {
        fail(set_name, ": prompt ", prompts[i].id_text, ": ", e.what());
      }
      const uint64_t stream = prompt_stream(tokens);
      requests.push_back({std::move(tokens), stream});
      owner.push_back(i);
    }
    if (requests.empty()) continue;
    check_requests(model, requests, options, [&](size_t k) {
      return set_name + ": prompt " + prompts[owner[k]].id_text + " (turn " +
             std::to_string(turn + 1) + ")";
    });
    generate(
        model, requests, options, pool,
        [&](GenerationResult&& r) {
          Answer& a = answers[owner[r.request]];
          a.turns.push_back(encoder.decode_answer(r.tokens));
          a.finish_reasons.push_back(r.finish_reason);
          a.output_tokens.push_back(r.tokens.size());
          if (hooks.on_answer && a.turns.size() == a.prompt.turn_count())
            hooks.on_answer(owner[r.request]);
        },
        [&](const GenerationStats& s) {
          if (on_step) on_step({turn, turns, s});
        });
  }
}

uint64_t generation_working_memory(const ModelConfig& config, const GenerationOptions& gen,
                                   uint64_t prompts, uint64_t longest_prompt) {
  const uint64_t limit = gen.context_length ? gen.context_length : model_context_length(config);
  const uint64_t context = std::min(limit, longest_prompt + gen.max_new_tokens);
  const uint64_t slots = std::min<uint64_t>(gen.max_batch, prompts);
  const uint64_t step = std::min<uint64_t>(gen.step_tokens + slots, slots * context);
  return slots * KvCache::bytes_for(config, context) + step * activation_bytes_per_token(config) +
         slots * config.output_size() * 4;
}

}  // namespace expo
