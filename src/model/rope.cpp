#include "model/rope.h"

#include <cmath>
#include <numbers>

namespace expo {

RopeFrequencies rope_frequencies(const ModelConfig& c, uint64_t seq_len, bool local) {
  const uint64_t half = c.rotary_dim / 2;
  const double d = static_cast<double>(c.rotary_dim);
  RopeFrequencies out;
  out.inv_freq.resize(half);
  auto& inv = out.inv_freq;
  if (local) {  // Gemma 3's sliding layers: the local base, no scaling
    for (uint64_t i = 0; i < half; ++i) inv[i] = 1.0 / std::pow(c.rope_local_theta, 2.0 * i / d);
    return out;
  }
  const RopeScaling& r = c.rope_scaling;
  double base = c.rope_theta;
  if (r.kind == RopeKind::kDynamic && seq_len > r.original_max_position) {
    const double ratio = r.factor * static_cast<double>(seq_len) / r.original_max_position;
    base = c.rope_theta * std::pow(ratio - (r.factor - 1.0), d / (d - 2.0));
  }
  for (uint64_t i = 0; i < half; ++i) inv[i] = 1.0 / std::pow(base, 2.0 * i / d);
  if (r.kind == RopeKind::kLinear) {
    for (auto& f : inv) f /= r.factor;
  } else if (r.kind == RopeKind::kLlama3) {
    const double orig = static_cast<double>(r.original_max_position);
    const double low_wavelen = orig / r.low_freq_factor;
    const double high_wavelen = orig / r.high_freq_factor;
    for (auto& f : inv) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f /= r.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth =
            (orig / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
        f = (1.0 - smooth) * f / r.factor + smooth * f;
      }
    }
  } else if (r.kind == RopeKind::kFreqFactors) {
    for (uint64_t i = 0; i < half; ++i) inv[i] /= r.freq_factors[i];
  } else if (r.kind == RopeKind::kLongRope) {
    const auto& ext = seq_len > r.original_max_position ? r.long_factor : r.short_factor;
    for (uint64_t i = 0; i < half; ++i) inv[i] /= ext[i];
    out.attention_factor = r.attention_factor;
  }
  return out;
}

void rope_angles(uint64_t position, const RopeFrequencies& freq, double* cos, double* sin) {
  for (size_t i = 0; i < freq.inv_freq.size(); ++i) {
    const double angle = static_cast<double>(position) * freq.inv_freq[i];
    cos[i] = std::cos(angle) * freq.attention_factor;
    sin[i] = std::sin(angle) * freq.attention_factor;
  }
}

void apply_rope(float* x, uint64_t rotary_dim, const double* cos, const double* sin) {
  const uint64_t half = rotary_dim / 2;
  for (uint64_t i = 0; i < half; ++i) {
    const double a = x[i], b = x[i + half];
    x[i] = static_cast<float>(a * cos[i] - b * sin[i]);
    x[i + half] = static_cast<float>(b * cos[i] + a * sin[i]);
  }
}

}  // namespace expo
