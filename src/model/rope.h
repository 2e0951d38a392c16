#pragma once
// Rotary position embeddings as transformers applies them to Llama-family models: the
// "rotate half" form (dimension i pairs with i + head_dim/2), with the frequency schedules of
// rope_scaling: default, linear, llama3 and dynamic NTK.
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace expo {

// The inverse frequencies (head_dim / 2 of them) for a forward call whose largest position
// is seq_len - 1. Only dynamic scaling depends on seq_len: beyond the original context it
// raises the base for every position of that call (keys already cached keep their rotation),
// which is what transformers does.
std::vector<double> rope_inverse_frequencies(const ModelConfig& config, uint64_t seq_len);

// cos and sin of position * inv_freq[i], computed once per token and shared by every head and
// layer.
void rope_angles(uint64_t position, const std::vector<double>& inv_freq, double* cos, double* sin);

// Rotates one head vector (head_dim floats) in place with the angles of its token.
void apply_rope(float* head, uint64_t head_dim, const double* cos, const double* sin);

}  // namespace expo
