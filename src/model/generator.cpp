#include "model/generator.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>

#include "core/error.h"
#include "core/interrupt.h"

namespace expo {

namespace {

struct Sequence {
  size_t request;
  const std::vector<int32_t>* prompt;
  KvCache cache;
  Sampler sampler;
  uint64_t prefilled = 0;  // prompt tokens already in the cache
  std::vector<int32_t> generated;
  int32_t pending = -1;  // token sampled last step, to be fed next step

  Sequence(size_t index, const GenerationRequest& r, const ModelConfig& c, uint64_t capacity,
           const SamplingParams& params)
      : request(index),
        prompt(&r.prompt),
        cache(c, capacity),
        sampler(params, r.stream, r.prompt) {}
};

uint64_t capacity_for(const GenerationRequest& r, const GenerationOptions& o, uint64_t context) {
  return std::min<uint64_t>(context, r.prompt.size() + o.max_new_tokens);
}

}  // namespace

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
  const ModelConfig& c = model.config();
  const uint64_t context =
      options.context_length ? options.context_length : model_context_length(c);
  const uint64_t vocab = model.output_size();
  const auto start_time = std::chrono::steady_clock::now();
  GenerationStats stats;
  stats.total = requests.size();

  std::vector<std::unique_ptr<Sequence>> active;
  size_t next = 0;
  std::vector<ForwardItem> items;
  std::vector<Sequence*> item_seq;
  std::vector<bool> item_samples;

  while (next < requests.size() || !active.empty()) {
    check_interrupted();
    while (active.size() < options.max_batch && next < requests.size()) {
      const GenerationRequest& r = requests[next];
      active.push_back(std::make_unique<Sequence>(next, r, c, capacity_for(r, options, context),
                                                  options.sampling));
      ++next;
    }
    // This step: every decoding sequence feeds its last token; prefilling sequences feed their
    // next chunk while the step has room (at least one chunk always goes).
    items.clear();
    item_seq.clear();
    item_samples.clear();
    uint64_t step_tokens = 0;
    for (auto& s : active)
      if (s->prefilled == s->prompt->size()) {
        items.push_back({&s->cache, std::span<const int32_t>(&s->pending, 1), false});
        item_seq.push_back(s.get());
        item_samples.push_back(true);
        ++step_tokens;
      }
    for (auto& s : active) {
      if (s->prefilled == s->prompt->size()) continue;
      const uint64_t n = std::min(options.prefill_chunk, s->prompt->size() - s->prefilled);
      if (step_tokens > 0 && step_tokens + n > options.step_tokens) continue;
      items.push_back(
          {&s->cache, std::span<const int32_t>(s->prompt->data() + s->prefilled, n), false});
      item_seq.push_back(s.get());
      item_samples.push_back(s->prefilled + n == s->prompt->size());
      s->prefilled += n;
      step_tokens += n;
      stats.prompt_tokens += n;
    }
    const std::vector<float>& out = model.forward(items, pool);

    for (size_t i = 0; i < items.size(); ++i) {
      if (!item_samples[i]) continue;
      Sequence& s = *item_seq[i];
      std::vector<float> row(out.begin() + i * vocab, out.begin() + (i + 1) * vocab);
      const int32_t token = s.sampler.next(row);
      s.generated.push_back(token);
      s.pending = token;
      ++stats.generated_tokens;
    }
    // Finished sequences leave; their slots go to waiting prompts next step.
    for (size_t k = 0; k < active.size();) {
      Sequence& s = *active[k];
      std::string reason;
      if (!s.generated.empty()) {
        if (std::find(options.stop_ids.begin(), options.stop_ids.end(), s.generated.back()) !=
            options.stop_ids.end())
          reason = "stop";
        else if (options.stop_when && options.stop_when(s.request, s.generated))
          reason = "stop";
        else if (s.generated.size() >= options.max_new_tokens ||
                 s.prompt->size() + s.generated.size() >= s.cache.capacity())
          reason = "length";
      }
      if (reason.empty()) {
        ++k;
        continue;
      }
      GenerationResult result{s.request, std::move(s.generated), reason};
      active.erase(active.begin() + static_cast<std::ptrdiff_t>(k));
      ++stats.finished;
      on_result(std::move(result));
    }
    stats.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
    if (on_step) on_step(stats);
  }
}

}  // namespace expo
