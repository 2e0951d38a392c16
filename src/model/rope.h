#pragma once
// Rotary position embeddings as transformers applies them to Llama-family models: the
// "rotate half" form (dimension i pairs with i + rotary_dim/2) over the first rotary_dim
// dimensions of each head (all of them but for Phi-3's partial rotary), with the frequency
// schedules of rope_scaling: default, linear, llama3, dynamic NTK and longrope, and Gemma 3's
// local rope for its sliding layers.
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace expo {

struct RopeFrequencies {
  std::vector<double> inv_freq;   // rotary_dim / 2 of them
  double attention_factor = 1.0;  // cos and sin are multiplied by it (longrope)
};

// The frequencies for a forward call whose largest position is seq_len - 1, for a global
// layer or (Gemma 3) a local one. Only dynamic and longrope scaling depend on seq_len: beyond
// the original context they change the frequencies for every position of that call (keys
// already cached keep their rotation), which is what transformers does.
RopeFrequencies rope_frequencies(const ModelConfig& config, uint64_t seq_len, bool local = false);

// cos and sin of position * inv_freq[i], times the attention factor, computed once per token
// and shared by every head and layer that use these frequencies.
void rope_angles(uint64_t position, const RopeFrequencies& freq, double* cos, double* sin);

// Rotates the first rotary_dim floats of one head vector in place with the angles of its
// token; the rest of the head is left as it is.
void apply_rope(float* head, uint64_t rotary_dim, const double* cos, const double* sin);

}  // namespace expo
