#pragma once
// Scoring many token sequences with a reward model: each sequence's output row where
// transformers reads it (`reward_model_input`). Sequences are packed into forward passes up to a
// token budget; each row depends only on its own sequence, so packing changes nothing.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "model/transformer.h"

namespace expo {

struct ScoreOptions {
  uint64_t batch_tokens = 2048;  // tokens per forward pass (a longer sequence goes alone)
};

// The tokens a reward model reads for `tokens` (a rendered conversation), as transformers reads
// them: InternLM2ForRewardModel appends its reward_token_id (as its get_score does) and reads
// the last token; a *ForSequenceClassification head reads the last token that is not
// pad_token_id (the first token when all are), so the tokens after it, which change nothing in
// a causal model, are dropped. Other models: `tokens` as they are.
std::vector<int32_t> reward_model_input(const ModelConfig& config, std::vector<int32_t> tokens);

// Each sequence is read through reward_model_input. Returns one row of output_size() values
// per sequence (the reward is label 0 for the usual
// single-label reward model). Throws naming the sequence index for an empty sequence or one
// longer than the model's context.
std::vector<std::vector<float>> score_sequences(
    Transformer& model, std::span<const std::vector<int32_t>> sequences, ThreadPool& pool,
    const ScoreOptions& options = {}, const std::function<void(size_t done)>& on_progress = {});

}  // namespace expo
