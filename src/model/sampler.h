#pragma once
// Choosing the next token from a row of logits.
//
// Each sequence owns a Sampler. Its random numbers come from a counter-based generator keyed by
// (seed, stream, step), where `stream` identifies the prompt (prompt_stream: a hash of its tokens)
// and `step` counts the tokens this sequence has generated. So a sequence's tokens depend only on
// its own logits and that key: not on the thread count, the batch it shares, or the order in
// which prompts are scheduled.
//
// Order of operations, as vLLM and transformers apply them:
//   1. repetition_penalty (transformers): for every token id in prompt + generated text, a
//      positive logit is divided by the penalty, a negative one multiplied by it.
//   2. presence_penalty / frequency_penalty (OpenAI): over generated tokens only,
//      logit -= presence * (count > 0) + frequency * count.
//   3. temperature == 0: greedy, the argmax (the lowest id among equal maxima). Otherwise:
//   4. logits / temperature, softmax (in float64, max subtracted);
//   5. top_k: keep the k most probable (ties broken by lower id);
//   6. top_p: keep the smallest prefix of the sorted tokens whose probability sum reaches top_p
//      (at least one token);
//   7. min_p: drop tokens whose probability is below min_p * (largest probability);
//   8. renormalise and draw by inverse CDF over the kept tokens in sorted order.
//
// Details the list leaves open, settled as vLLM settles them where it does:
//   - "Sorted" is by probability descending, equal probabilities by lower token id, so every
//     step is deterministic. Everything after the penalties is float64. A token's weight is
//     exp((logit - max) / temperature), so the most probable weighs exactly 1; probabilities
//     are weights / total, and every threshold is applied to weights (the 1 / total cancels).
//   - A sum over a set of tokens (the softmax total, the weight top_k keeps, the weight kept
//     for the draw) adds weights in token id order; the running sums of top_p and of the draw
//     add them in sorted order. (This fixes every result to the bit.)
//   - top_p is measured against the distribution left by top_k (renormalised over the k kept
//     tokens), as in vLLM and transformers: keep the first j sorted tokens for the smallest j
//     with  sum(first j) >= top_p * sum(kept by top_k).
//   - min_p compares with the largest probability, which no renormalisation changes.
//   - The draw: u = uniform_at(seed, stream, step) with step = generated() before the call;
//     the first sorted kept token whose running sum exceeds u * (sum of kept weights); if
//     rounding leaves none, the last kept token of positive weight. A greedy step draws
//     nothing but still counts as a step.
//   - Penalties are computed in float64 and stored back into the float logits.
//   - A non-finite logit (NaN or +-inf) is an error naming the token id and step, as are a
//     prompt or generated token id outside the vocabulary and a penalty that overflows a float.
//   - Cost: greedy is one pass. Sampling is one exp() per token plus a sort of only the tokens
//     that can matter: top_k uses selection (nth_element) and sorts k; top_p, min_p and plain
//     sampling sort just the head of the distribution that can be kept or drawn (thresholds
//     with a proven margin, falling back to more of the order when rounding needs it), so the
//     results are those of a full sort. Scratch buffers are reused from call to call.
#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace expo {

struct SamplingParams {
  double temperature = 0.0;  // 0: greedy
  int top_k = 0;             // 0: off
  double top_p = 1.0;        // 1: off
  double min_p = 0.0;        // 0: off
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  double repetition_penalty = 1.0;  // 1: off
  uint64_t seed = 0;
};

// Throws expo::Error naming the field when a value is out of range (temperature < 0,
// top_k < 0, top_p not in (0, 1], min_p not in [0, 1], repetition_penalty <= 0, non-finite).
void validate(const SamplingParams& params);

class Sampler {
 public:
  Sampler(const SamplingParams& params, uint64_t stream, std::span<const int32_t> prompt);

  // Picks the next token from `logits` (vocab entries; the sampler may overwrite them as
  // scratch) and records it as generated.
  int32_t next(std::span<float> logits);

  size_t generated() const { return step_; }

  // Steps 1 and 2 alone, in place: what next() does to `logits` before choosing. (For tests and
  // for callers that want to show the penalised scores.)
  void apply_penalties(std::span<float> logits) const;

 private:
  SamplingParams params_;
  uint64_t stream_;
  uint64_t step_ = 0;
  std::unordered_map<int32_t, uint32_t> generated_counts_;  // for presence/frequency
  std::unordered_map<int32_t, bool> seen_;                  // prompt + generated, for repetition
  // Reused from call to call (no allocation per token once grown to the vocabulary).
  struct Candidate {
    double weight;  // exp((logit - max) / temperature)
    int32_t id;
  };
  std::vector<double> weights_;     // by token id
  std::vector<Candidate> scratch_;  // sorted (partly) by weight
};

// A uniform double in [0, 1) that depends only on (seed, stream, step): a counter-based
// generator (for example SplitMix64 / Philox-style mixing of the three words).
double uniform_at(uint64_t seed, uint64_t stream, uint64_t step);

}  // namespace expo
