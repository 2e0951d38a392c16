#pragma once
// The models of `expo demo`: small Llamas whose weights are random but for a few planted
// directions, so that the pipeline has something real to find. The "SFT" model writes random
// bytes; "alignment" moved it towards readable text (the space and the letters a-z) and added
// noise, as training does; the reward model scores the fraction of readable tokens in a
// conversation. Extrapolating the pair amplifies both the useful direction and the noise, so
// the reward rises with alpha and falls again once the noise takes over: the shape the paper
// reports for real models, on models small enough to run in seconds.
//
// How the directions are planted (hidden dimensions 0 and 1 are reserved):
//  - policy: every token embedding gets +embed_bias in dimension 0, so the final hidden state
//    points along it whatever the context; alignment adds `boost` to dimension 0 of the head's
//    rows of the readable tokens (raising their logits in every context) and normal(0, noise)
//    to every matrix. theta1 + alpha (theta1 - theta0) multiplies both by 1 + alpha: the boost
//    raises readable tokens, until the noise in the layers washes dimension 0 out of the
//    hidden state.
//  - reward model: embeddings are 1 in dimension 0 and +1 (readable) or -1 (other) in
//    dimension 1; the first layer's attention is uniform (zero queries and keys) and copies
//    dimension 1 to the last position, so after the final norm dimension 1 grows with the
//    mean over the conversation; the score head reads dimension 1. Everything else is zero
//    (the second layer and the MLPs pass the residual through).
#include <cstdint>
#include <filesystem>

#include "demo/random_model.h"

namespace expo {

struct DemoPairOptions {
  double embed_bias = 0.5;
  double boost = 0.2;
  double noise = 0.004;
};

// Token ids the reward model calls readable: the bytes of ' ' and 'a'..'z'.
bool demo_readable_token(uint64_t id);

void write_demo_pair(const std::filesystem::path& sft_dir, const std::filesystem::path& aligned_dir,
                     const RandomLlamaSpec& spec, uint64_t seed,
                     const DemoPairOptions& options = {});

// spec.reward_model is set here; spec.hidden must be at least 2.
void write_demo_reward_model(const std::filesystem::path& dir, RandomLlamaSpec spec, uint64_t seed);

}  // namespace expo
