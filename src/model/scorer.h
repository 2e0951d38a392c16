#pragma once
// Scoring many token sequences with a reward model (*ForSequenceClassification): each
// sequence's output row at its last token. Sequences are packed into forward passes up to a
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

// Returns one row of output_size() values per sequence (the reward is label 0 for the usual
// single-label reward model). Throws naming the sequence index for an empty sequence or one
// longer than the model's context.
std::vector<std::vector<float>> score_sequences(
    Transformer& model, std::span<const std::vector<int32_t>> sequences, ThreadPool& pool,
    const ScoreOptions& options = {}, const std::function<void(size_t done)>& on_progress = {});

}  // namespace expo
