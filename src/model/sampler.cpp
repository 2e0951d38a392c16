#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace expo {

namespace {

// The SplitMix64 finaliser: a bijection of 64-bit words with full avalanche.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

double uniform_at(uint64_t seed, uint64_t stream, uint64_t step) {
  // Each word goes through its own offset and mix before it is folded in, so (seed, stream,
  // step) -> h is injective in each word with the other two fixed.
  uint64_t h = mix64(seed + 0x9E3779B97F4A7C15ULL);
  h = mix64(h ^ mix64(stream + 0x6A09E667F3BCC909ULL));
  h = mix64(h ^ mix64(step + 0xBB67AE8584CAA73BULL));
  return static_cast<double>(h >> 11) * 0x1.0p-53;  // 53 random bits: [0, 1)
}

void validate(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    usage_fail("--temperature must be a finite number >= 0 (0: greedy), got ", p.temperature);
  if (p.top_k < 0) usage_fail("--top-k must be >= 0 (0: off), got ", p.top_k);
  if (!(p.top_p > 0 && p.top_p <= 1))
    usage_fail("--top-p must be in (0, 1] (1: off), got ", p.top_p);
  if (!(p.min_p >= 0 && p.min_p <= 1))
    usage_fail("--min-p must be in [0, 1] (0: off), got ", p.min_p);
  if (!std::isfinite(p.presence_penalty))
    usage_fail("--presence-penalty must be a finite number, got ", p.presence_penalty);
  if (!std::isfinite(p.frequency_penalty))
    usage_fail("--frequency-penalty must be a finite number, got ", p.frequency_penalty);
  if (!std::isfinite(p.repetition_penalty) || p.repetition_penalty <= 0)
    usage_fail("--repetition-penalty must be a finite number > 0 (1: off), got ",
               p.repetition_penalty);
}

Sampler::Sampler(const SamplingParams& params, uint64_t stream, std::span<const int32_t> prompt)
    : params_(params), stream_(stream) {
  validate(params_);
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0)
      fail("sampler: prompt token ", i, " of stream ", stream, " has a negative id ", prompt[i]);
    seen_[prompt[i]] = true;
  }
}

void Sampler::apply_penalties(std::span<float> logits) const {
  const size_t vocab = logits.size();
  auto store = [&](int32_t id, double value, const char* option) {
    const auto f = static_cast<float>(value);
    if (!std::isfinite(f))
      fail("sampler: ", option, " made the logit of token ", id, " overflow a float at step ",
           step_, " of stream ", stream_, "; use a value closer to its default");
    logits[static_cast<size_t>(id)] = f;
  };
  auto check_id = [&](int32_t id) {
    if (static_cast<size_t>(id) >= vocab)
      fail("sampler: token id ", id, " (from the prompt or the generated text) is outside the ",
           vocab, " logits given at step ", step_, " of stream ", stream_);
  };

  // 1. Repetition (transformers): once per distinct token of prompt + generated text.
  const double rep = params_.repetition_penalty;
  if (rep != 1.0) {
    for (const auto& [id, unused] : seen_) {
      check_id(id);
      const double l = logits[static_cast<size_t>(id)];
      store(id, l < 0 ? l * rep : l / rep, "--repetition-penalty");
    }
  }
  // 2. Presence and frequency (OpenAI): generated tokens only.
  const double presence = params_.presence_penalty;
  const double frequency = params_.frequency_penalty;
  if (presence != 0.0 || frequency != 0.0) {
    for (const auto& [id, count] : generated_counts_) {
      check_id(id);
      const double l = logits[static_cast<size_t>(id)];
      store(id, l - (presence * (count > 0 ? 1.0 : 0.0) + frequency * count),
            "--presence-penalty/--frequency-penalty");
    }
  }
}

int32_t Sampler::next(std::span<float> logits) {
  const size_t vocab = logits.size();
  if (vocab == 0) fail("sampler: no logits given at step ", step_, " of stream ", stream_);
  if (vocab > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    fail("sampler: ", vocab, " logits is more than a token id can index");
  for (size_t i = 0; i < vocab; ++i) {
    if (!std::isfinite(logits[i]))
      fail("sampler: the logit of token ", i, " is ", logits[i], " at step ", step_, " of stream ",
           stream_, "; the model produced a non-finite value");
  }
  apply_penalties(logits);

  auto record = [&](int32_t token) {
    ++step_;
    ++generated_counts_[token];
    seen_[token] = true;
    return token;
  };

  // 3. Greedy: the first (lowest id) of the maxima.
  size_t best = 0;
  for (size_t i = 1; i < vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  if (params_.temperature == 0.0) return record(static_cast<int32_t>(best));

  // 4. Weights exp((logit - max) / T): the most probable token weighs exactly 1, no weight
  // overflows, and probabilities are weights / total.
  const double max_logit = logits[best];
  const double temperature = params_.temperature;
  weights_.resize(vocab);  // these two allocate only when the vocabulary grows
  scratch_.resize(vocab);
  double total = 0.0;
  for (size_t i = 0; i < vocab; ++i) {
    const double w = std::exp((static_cast<double>(logits[i]) - max_logit) / temperature);
    weights_[i] = w;
    scratch_[i] = {w, static_cast<int32_t>(i)};
    total += w;
  }

  const auto before = [](const Candidate& a, const Candidate& b) {
    return a.weight > b.weight || (a.weight == b.weight && a.id < b.id);
  };
  const auto first = scratch_.begin();
  // scratch_[0, n) is always the first n tokens of the fully sorted order. widen() extends it
  // to every token of weight >= threshold (0: all) without sorting the rest: the tokens it
  // brings in all weigh less than those already in, so they sort after them.
  size_t n = 0;
  const auto widen = [&](double threshold) {
    const auto end =
        threshold > 0.0
            ? std::partition(first + static_cast<ptrdiff_t>(n), scratch_.end(),
                             [threshold](const Candidate& c) { return c.weight >= threshold; })
            : scratch_.end();
    std::sort(first + static_cast<ptrdiff_t>(n), end, before);
    n = static_cast<size_t>(end - first);
  };
  // The weights of the first `count` sorted tokens, added in id order.
  const auto mass_of_first = [&](size_t count) {
    if (count == vocab) return total;
    const Candidate last = scratch_[count - 1];
    double sum = 0.0;
    for (size_t i = 0; i < vocab; ++i) {
      const double w = weights_[i];
      if (w > last.weight || (w == last.weight && static_cast<int32_t>(i) <= last.id)) sum += w;
    }
    return sum;
  };

  const bool top_k_on = params_.top_k > 0 && static_cast<size_t>(params_.top_k) < vocab;
  const double top_p = params_.top_p;
  const double min_weight = params_.min_p;  // min_p * (largest weight, which is exactly 1)
  const double u = uniform_at(params_.seed, stream_, step_);

  if (!top_k_on && top_p >= 1.0 && min_weight == 0.0) {
    // 8 alone (no filter): the draw needs the sorted order only as far as the token it picks.
    // The tokens below (total - target) / (2 * vocab) weigh less than half of what lies past
    // the target, so the walk almost always ends among the tokens above that; if rounding
    // says otherwise it widens to all. The sums are those of a full sort, bit for bit.
    const double target = u * total;
    widen(0.5 * (total - target) / static_cast<double>(vocab));
    double cumulative = 0.0;
    for (size_t i = 0;; ++i) {
      if (i == n) {
        if (n == vocab) break;
        widen(0.0);
      }
      cumulative += scratch_[i].weight;
      if (target < cumulative) return record(scratch_[i].id);
    }
  } else {
    // 5. top_k: selection, then a sort of the k survivors.
    double mass = total;  // what top_p is measured against
    if (top_k_on) {
      n = static_cast<size_t>(params_.top_k);
      std::nth_element(first, first + static_cast<ptrdiff_t>(n), scratch_.end(), before);
      std::sort(first, first + static_cast<ptrdiff_t>(n), before);
      mass = mass_of_first(n);
    }
    // 6. top_p: the shortest sorted prefix whose weight reaches top_p * mass. Without top_k,
    // only tokens that can be in it are sorted: those at or above min_p's threshold, and
    // those above (1 - top_p) * total / (2 * vocab), since all the tokens below that weigh
    // at most half of the (1 - top_p) * total top_p drops. If rounding (or a top_p within
    // 1e-15 of 1) says the prefix is longer, it widens to every token min_p keeps.
    if (top_p < 1.0) {
      if (!top_k_on)
        widen(std::max(min_weight, 0.5 * (1.0 - top_p) * total / static_cast<double>(vocab)));
      const double target = top_p * mass;
      double cumulative = 0.0;
      size_t cut = 0;
      for (;;) {
        while (cut < n && cumulative < target) cumulative += scratch_[cut++].weight;
        const size_t had = n;
        if (cumulative < target && !top_k_on) widen(min_weight);
        if (n == had) break;
      }
      n = cut;
    }
    // 7. min_p: drop the sorted tail below min_p * (the largest weight, 1). The most probable
    // token always stays.
    if (min_weight > 0.0) {
      if (!top_k_on && top_p >= 1.0) widen(min_weight);
      while (n > 1 && scratch_[n - 1].weight < min_weight) --n;
    }
    // 8. Renormalise and draw by inverse CDF in sorted order.
    const double kept =
        top_k_on && n == static_cast<size_t>(params_.top_k) ? mass : mass_of_first(n);
    const double target = u * kept;
    double cumulative = 0.0;
    for (size_t i = 0; i < n; ++i) {
      cumulative += scratch_[i].weight;
      if (target < cumulative) return record(scratch_[i].id);
    }
  }
  // Only when rounding leaves the sorted cumulative sum below the target (the id-order sum it
  // came from can be a little larger): the last kept token of positive weight.
  while (n > 1 && scratch_[n - 1].weight == 0.0) --n;
  return record(scratch_[n - 1].id);
}

}  // namespace expo
