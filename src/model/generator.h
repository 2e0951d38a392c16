#pragma once
// Generation for a list of prompts with continuous batching (model/continuous_batch.h): up to
// `max_batch` sequences decode together, one token each per step, sharing every weight read; when
// one finishes its slot (and KV cache) goes to the next waiting prompt, whose prompt is prefilled
// in the same steps as the others decode.
//
// Results are reproducible: a prompt's tokens depend only on the model, the prompt, the
// sampling options and its stream number (a hash of the prompt), never on the thread count, the
// batch size or which prompts it shared steps with. Long prompts are prefilled in chunks whose
// boundaries depend only on the prompt itself.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/sampler.h"
#include "model/transformer.h"

namespace expo {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  uint64_t stream = 0;  // seeds this prompt's random numbers: prompt_stream(prompt), usually
};

struct GenerationOptions {
  SamplingParams sampling;
  uint64_t max_new_tokens = 256;
  std::vector<int32_t> stop_ids;  // generation ends after one of these ("stop")
  uint64_t max_batch = 16;        // sequences in flight
  uint64_t prefill_chunk = 512;   // prompt tokens per sequence per step
  uint64_t step_tokens = 2048;    // soft cap on tokens per step (prefill waits beyond it)
  uint64_t context_length = 0;    // tokens a sequence may reach; 0: the model's context
  // Called after each token that is not a stop id, with the request's index and its tokens so
  // far; true ends the sequence there with finish_reason "stop" (stop strings, for example).
  std::function<bool(size_t request, std::span<const int32_t> generated)> stop_when;
};

struct GenerationResult {
  size_t request = 0;           // index into the requests
  std::vector<int32_t> tokens;  // generated tokens (a stop token included)
  std::string finish_reason;    // "stop" or "length"
};

struct GenerationStats {
  uint64_t finished = 0, total = 0;
  uint64_t prompt_tokens = 0, generated_tokens = 0;
  double seconds = 0;
};

// The generation stop ids: `explicit_ids` when given; nothing with `ignore_eos`; otherwise the
// model's eos ids followed by the template's end-of-turn tokens not already among them.
std::vector<int32_t> default_stop_ids(std::span<const int32_t> explicit_ids, bool ignore_eos,
                                      std::span<const int32_t> eos_ids,
                                      std::span<const int32_t> template_stop_ids);

// The model's usable context: max_position_embeddings (times the factor for dynamic rope).
uint64_t model_context_length(const ModelConfig& config);

// Checks every request before any work (empty prompt, token ids, length against the context)
// with errors that name the request through `name(index)`.
void check_requests(const Transformer& model, std::span<const GenerationRequest> requests,
                    const GenerationOptions& options,
                    const std::function<std::string(size_t)>& name);

// Runs every request; on_result is called as each finishes (in completion order), on_step
// after every step.
void generate(Transformer& model, std::span<const GenerationRequest> requests,
              const GenerationOptions& options, ThreadPool& pool,
              const std::function<void(GenerationResult&&)>& on_result,
              const std::function<void(const GenerationStats&)>& on_step = {});

}  // namespace expo
