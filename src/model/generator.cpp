#include "model/generator.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "core/interrupt.h"
#include "model/continuous_batch.h"

namespace expo {

std::vector<int32_t> default_stop_ids(std::span<const int32_t> explicit_ids, bool ignore_eos,
                                      std::span<const int32_t> eos_ids,
                                      std::span<const int32_t> template_stop_ids) {
  if (!explicit_ids.empty()) return {explicit_ids.begin(), explicit_ids.end()};
  if (ignore_eos) return {};
  std::vector<int32_t> ids(eos_ids.begin(), eos_ids.end());
  for (int32_t id : template_stop_ids)
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  return ids;
}

uint64_t model_context_length(const ModelConfig& c) {
  if (c.rope_scaling.kind == RopeKind::kDynamic)
    return static_cast<uint64_t>(c.rope_scaling.original_max_position * c.rope_scaling.factor);
  return c.max_position_embeddings;
}

void check_requests(const Transformer& model, std::span<const GenerationRequest> requests,
                    const GenerationOptions& options,
                    const std::function<std::string(size_t)>& name) {
  const ModelConfig& c = model.config();
  const uint64_t context =
      options.context_length ? options.context_length : model_context_length(c);
  validate(options.sampling);
  if (options.max_new_tokens == 0) fail("--max-new-tokens must be at least 1");
  if (options.max_batch == 0) fail("--batch-size must be at least 1");
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& p = requests[i].prompt;
    if (p.empty()) fail(name(i), ": the prompt has no tokens");
    if (p.size() >= context)
      fail(name(i), ": the prompt has ", p.size(), " tokens, but the model's context is ", context,
           " tokens (", p.size(), " + at least 1 new token do not fit)");
    for (size_t j = 0; j < p.size(); ++j)
      if (p[j] < 0 || static_cast<uint64_t>(p[j]) >= c.vocab_size)
        fail(name(i), ": token ", j, " is ", p[j], ", outside the vocabulary of ", c.vocab_size,
             " entries");
  }
}

void generate(Transformer& model, std::span<const GenerationRequest> requests,
              const GenerationOptions& options, ThreadPool& pool,
              const std::function<void(GenerationResult&&)>& on_result,
              const std::function<void(const GenerationStats&)>& on_step) {
  const auto start_time = std::chrono::steady_clock::now();
  GenerationStats stats;
  stats.total = requests.size();
  BatchLimits limits;
  limits.max_batch = options.max_batch;
  limits.prefill_chunk = options.prefill_chunk;
  limits.step_tokens = options.step_tokens;
  limits.context_length = options.context_length;
  ContinuousBatch batch(model, limits);
  std::vector<size_t> request_of;  // by sequence id
  std::vector<StepEvent> events;
  size_t next = 0;
  while (next < requests.size() || !batch.empty()) {
    check_interrupted();
    while (batch.has_room() && next < requests.size()) {
      const GenerationRequest& r = requests[next];
      SequenceSpec spec;
      spec.prompt = r.prompt;
      spec.stream = r.stream;
      spec.sampling = options.sampling;
      spec.max_new_tokens = options.max_new_tokens;
      spec.stop_ids = options.stop_ids;
      if (options.stop_when)
        spec.stop_when = [&options, next](std::span<const int32_t> generated) {
          return options.stop_when(next, generated);
        };
      batch.add(std::move(spec));
      request_of.push_back(next);
      ++next;
    }
    stats.prompt_tokens += batch.step(pool, events);
    for (StepEvent& e : events) {
      if (e.token >= 0) ++stats.generated_tokens;
      if (e.finish_reason.empty()) continue;
      ++stats.finished;
      on_result({request_of[e.id], std::move(e.tokens), e.finish_reason});
    }
    stats.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
    if (on_step) on_step(stats);
  }
}

}  // namespace expo
