#include "model/continuous_batch.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/splitmix64.h"
#include "model/generator.h"

namespace expo {

uint64_t prompt_stream(std::span<const int32_t> prompt) {
  // SplitMix64 folded over the ids with the length first, so that a prefix of a prompt
  // hashes differently from the prompt.
  SplitMix64 h(0x243F6A8885A308D3ULL ^ prompt.size());
  uint64_t state = h.next();
  for (int32_t id : prompt) state = SplitMix64(state ^ static_cast<uint32_t>(id)).next();
  return state;
}

TokenLogprobs token_logprobs(std::span<const float> logits, int32_t token, size_t top) {
  if (token < 0 || static_cast<size_t>(token) >= logits.size())
    fail("internal: token ", token, " outside ", logits.size(), " logits");
  double max = -INFINITY;
  for (float v : logits) max = std::max(max, static_cast<double>(v));
  double total = 0;
  for (float v : logits) total += std::exp(static_cast<double>(v) - max);
  const double log_total = max + std::log(total);
  TokenLogprobs out;
  out.token = token;
  out.logprob = static_cast<double>(logits[token]) - log_total;
  top = std::min(top, logits.size());
  if (top > 0) {
    std::vector<int32_t> ids(logits.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
    auto more_probable = [&](int32_t a, int32_t b) {
      return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
    };
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(top), ids.end(),
                      more_probable);
    for (size_t i = 0; i < top; ++i)
      out.top.emplace_back(ids[i], static_cast<double>(logits[ids[i]]) - log_total);
  }
  return out;
}

struct ContinuousBatch::Sequence {
  uint64_t id;
  SequenceSpec spec;
  KvCache cache;
  Sampler sampler;
  uint64_t prefilled = 0;  // prompt tokens already in the cache
  std::vector<int32_t> generated;
  int32_t pending = -1;  // token sampled last step, to be fed next step
  bool cancelled = false;

  Sequence(uint64_t i, SequenceSpec s, const ModelConfig& c, uint64_t capacity)
      : id(i),
        spec(std::move(s)),
        cache(c, capacity),
        sampler(spec.sampling, spec.stream, spec.prompt) {}
  bool decoding() const { return prefilled == spec.prompt.size(); }
};

ContinuousBatch::ContinuousBatch(Transformer& model, const BatchLimits& limits)
    : model_(model), limits_(limits) {
  if (limits.max_batch == 0) fail("--batch-size must be at least 1");
  if (limits.prefill_chunk == 0) fail("internal: prefill_chunk must be at least 1");
  context_ = limits.context_length ? limits.context_length : model_context_length(model.config());
}

ContinuousBatch::~ContinuousBatch() = default;

bool ContinuousBatch::has_room() const { return active_.size() < limits_.max_batch; }

size_t ContinuousBatch::running() const { return active_.size(); }

uint64_t ContinuousBatch::add(SequenceSpec spec) {
  if (spec.prompt.empty()) fail("internal: a sequence without prompt tokens");
  const uint64_t capacity = std::min<uint64_t>(context_, spec.prompt.size() + spec.max_new_tokens);
  const uint64_t id = next_id_++;
  active_.push_back(std::make_unique<Sequence>(id, std::move(spec), model_.config(), capacity));
  return id;
}

void ContinuousBatch::cancel(uint64_t id) {
  for (auto& s : active_)
    if (s->id == id) s->cancelled = true;
}

uint64_t ContinuousBatch::step(ThreadPool& pool, std::vector<StepEvent>& events) {
  events.clear();
  // Cancelled sequences leave before the step and do not take part in it.
  for (size_t k = 0; k < active_.size();) {
    if (!active_[k]->cancelled) {
      ++k;
      continue;
    }
    StepEvent e;
    e.id = active_[k]->id;
    e.finish_reason = "cancelled";
    e.tokens = std::move(active_[k]->generated);
    events.push_back(std::move(e));
    active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(k));
  }
  if (active_.empty()) return 0;

  // This step: every decoding sequence feeds its last token; prefilling sequences feed their
  // next chunk while the step has room (at least one chunk always goes).
  items_.clear();
  item_seq_.clear();
  item_samples_.clear();
  uint64_t step_tokens = 0, prefilled = 0;
  for (auto& s : active_)
    if (s->decoding()) {
      items_.push_back({&s->cache, std::span<const int32_t>(&s->pending, 1), false});
      item_seq_.push_back(s.get());
      item_samples_.push_back(true);
      ++step_tokens;
    }
  for (auto& s : active_) {
    if (s->decoding()) continue;
    const uint64_t n = std::min(limits_.prefill_chunk, s->spec.prompt.size() - s->prefilled);
    if (step_tokens > 0 && step_tokens + n > limits_.step_tokens) continue;
    items_.push_back(
        {&s->cache, std::span<const int32_t>(s->spec.prompt.data() + s->prefilled, n), false});
    item_seq_.push_back(s.get());
    item_samples_.push_back(s->prefilled + n == s->spec.prompt.size());
    s->prefilled += n;
    step_tokens += n;
    prefilled += n;
  }
  const std::vector<float>& out = model_.forward(items_, pool);
  const uint64_t vocab = model_.output_size();

  for (size_t i = 0; i < items_.size(); ++i) {
    if (!item_samples_[i]) continue;
    Sequence& s = *item_seq_[i];
    row_.assign(out.begin() + static_cast<std::ptrdiff_t>(i * vocab),
                out.begin() + static_cast<std::ptrdiff_t>((i + 1) * vocab));
    StepEvent e;
    e.id = s.id;
    e.first_token = s.generated.empty();
    std::vector<float> raw;
    if (s.spec.logprobs >= 0) raw = row_;  // the sampler overwrites row_ as scratch
    e.token = s.sampler.next(row_);
    if (s.spec.logprobs >= 0)
      e.logprobs = token_logprobs(raw, e.token, static_cast<size_t>(s.spec.logprobs));
    s.generated.push_back(e.token);
    s.pending = e.token;
    events.push_back(std::move(e));
  }
  // Finished sequences leave; their slots go to waiting sequences next step. The event of a
  // sequence's last token carries its finish reason.
  for (size_t k = 0; k < active_.size();) {
    Sequence& s = *active_[k];
    std::string reason;
    if (!s.generated.empty() && s.decoding()) {
      const auto& stop = s.spec.stop_ids;
      if (std::find(stop.begin(), stop.end(), s.generated.back()) != stop.end())
        reason = "stop";
      else if (s.spec.stop_when && s.spec.stop_when(s.generated))
        reason = "stop";
      else if (s.generated.size() >= s.spec.max_new_tokens ||
               s.spec.prompt.size() + s.generated.size() >= s.cache.capacity())
        reason = "length";
    }
    if (reason.empty()) {
      ++k;
      continue;
    }
    for (auto it = events.rbegin(); it != events.rend(); ++it)
      if (it->id == s.id) {
        it->finish_reason = reason;
        it->tokens = std::move(s.generated);
        break;
      }
    active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(k));
  }
  return prefilled;
}

}  // namespace expo
