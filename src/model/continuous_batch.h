#pragma once
// Continuous batching, one step at a time: up to `max_batch` sequences decode together, one
// token each per step, sharing every weight read; a sequence added between steps starts its
// prefill in the next step (in chunks, beside the others' decoding); a finished or cancelled
// sequence frees its slot and KV cache at once. generate() (a fixed list of prompts) and
// `expo serve` (requests arriving while others decode) both drive this one loop.
//
// Each sequence carries its own sampling options, seed, length limit and stop ids, so requests
// with different settings share steps. Its tokens depend only on the model, its prompt, its
// options and its stream number: never on the thread count, the batch size, or which other
// sequences shared its steps (the forward pass is batch-invariant and the sampler is keyed by
// (seed, stream, step)). Long prompts are prefilled in chunks whose boundaries depend only on
// the prompt itself.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/kv_cache.h"
#include "model/sampler.h"
#include "model/transformer.h"

namespace expo {

// The random stream of a prompt: a hash of its token ids, so that the same prompt with the
// same seed draws the same numbers wherever it comes from (a prompt file at any position,
// `expo serve`), and different prompts draw different ones.
uint64_t prompt_stream(std::span<const int32_t> prompt);

// The log-probabilities of one generated token under the model's raw distribution
// (log_softmax of the logits, before penalties and temperature, as vLLM reports them).
struct TokenLogprobs {
  int32_t token = -1;
  double logprob = 0;
  std::vector<std::pair<int32_t, double>> top;  // the `top` most probable, most probable first
};

// log_softmax(logits)[token] and the `top` most probable tokens (ties: lower id first), in
// float64. A slow obvious version of this is in the tests.
TokenLogprobs token_logprobs(std::span<const float> logits, int32_t token, size_t top);

struct SequenceSpec {
  std::vector<int32_t> prompt;
  uint64_t stream = 0;  // seeds this sequence's random numbers (prompt_stream, usually)
  SamplingParams sampling;
  uint64_t max_new_tokens = 256;
  std::vector<int32_t> stop_ids;  // generation ends after one of these ("stop")
  int logprobs = -1;              // -1: none; k >= 0: each token's logprob and the top k
  // Called after each token that is not a stop id, with the tokens so far; true ends the
  // sequence there with finish_reason "stop" (stop strings, for example).
  std::function<bool(std::span<const int32_t> generated)> stop_when;
};

struct BatchLimits {
  uint64_t max_batch = 16;       // sequences in flight
  uint64_t prefill_chunk = 512;  // prompt tokens per sequence per step
  uint64_t step_tokens = 2048;   // soft cap on tokens per step (prefill waits beyond it)
  uint64_t context_length = 0;   // tokens a sequence may reach; 0: the model's context
};

// What one step did to one sequence.
struct StepEvent {
  uint64_t id = 0;
  int32_t token = -1;           // the token sampled this step; -1 when none (cancelled)
  TokenLogprobs logprobs;       // when the sequence asked for them
  bool first_token = false;     // the sequence's first generated token (prefill is done)
  std::string finish_reason;    // "" while running; "stop", "length" or "cancelled"
  std::vector<int32_t> tokens;  // all generated tokens, once finished (a stop token included)
};

class ContinuousBatch {
 public:
  ContinuousBatch(Transformer& model, const BatchLimits& limits);
  ~ContinuousBatch();
  ContinuousBatch(const ContinuousBatch&) = delete;
  ContinuousBatch& operator=(const ContinuousBatch&) = delete;

  // Whether a sequence can join now (fewer than max_batch in flight).
  bool has_room() const;
  // Adds a sequence (checked by the caller: see check_requests); it joins the next step.
  // Returns its id (0, 1, 2, ... in order of addition).
  uint64_t add(SequenceSpec spec);
  // Ends a sequence before the next step: step() reports it once with "cancelled" and frees
  // its slot. Unknown or finished ids are ignored.
  void cancel(uint64_t id);
  size_t running() const;
  bool empty() const { return running() == 0; }

  // One forward pass over every running sequence (decode tokens and prefill chunks), sampling
  // for those that reached the end of their prompt. `events` receives one entry per sampled
  // token and per finished or cancelled sequence (cleared first). Returns the prompt tokens
  // prefilled in this step.
  uint64_t step(ThreadPool& pool, std::vector<StepEvent>& events);

  uint64_t context_length() const { return context_; }

 private:
  struct Sequence;
  Transformer& model_;
  BatchLimits limits_;
  uint64_t context_;
  uint64_t next_id_ = 0;
  std::vector<std::unique_ptr<Sequence>> active_;
  // Scratch reused from step to step.
  std::vector<ForwardItem> items_;
  std::vector<Sequence*> item_seq_;
  std::vector<bool> item_samples_;
  std::vector<float> row_;
};

}  // namespace expo
