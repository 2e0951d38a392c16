#include "demo/demo_models.h"

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace expo {

namespace {

// The policy's weights: random, plus the planted direction; `aligned` adds alignment's change.
WeightFn policy_weights(const RandomLlamaSpec& spec, uint64_t seed, bool aligned,
                        const DemoPairOptions& o) {
  auto rng = std::make_shared<std::mt19937_64>(seed);
  auto noise_rng = std::make_shared<std::mt19937_64>(seed + 1);
  const uint64_t h = spec.hidden;
  return [=](const std::string& name, const std::vector<uint64_t>& shape, uint64_t i) {
    std::normal_distribution<double> normal(0.0, 0.02), noise(0.0, o.noise);
    double v = shape.size() == 1 ? 1.0 + normal(*rng) : normal(*rng);
    if (name == "model.embed_tokens.weight" && i % h == 0) v += o.embed_bias;
    if (aligned && shape.size() == 2) {
      v += noise(*noise_rng);
      if (name == "lm_head.weight" && i % h == 0 && demo_readable_token(i / h)) v += o.boost;
    }
    return v;
  };
}

}  // namespace

bool demo_readable_token(uint64_t id) { return id == ' ' || (id >= 'a' && id <= 'z'); }

void write_demo_pair(const std::filesystem::path& sft_dir, const std::filesystem::path& aligned_dir,
                     const RandomLlamaSpec& spec, uint64_t seed, const DemoPairOptions& options) {
  if (spec.hidden < 2 || spec.tied) fail("demo models need hidden >= 2 and an untied head");
  write_llama(sft_dir, spec, policy_weights(spec, seed, false, options));
  write_llama(aligned_dir, spec, policy_weights(spec, seed, true, options));
}

void write_demo_reward_model(const std::filesystem::path& dir, RandomLlamaSpec spec,
                             uint64_t seed) {
  if (spec.hidden < 2) fail("demo models need hidden >= 2");
  spec.reward_model = true;
  const uint64_t h = spec.hidden;
  const double copy = std::sqrt(0.25);  // v_proj and o_proj: dimension 1, scaled by 0.25 in all
  std::mt19937_64 rng(seed);
  write_llama(dir, spec,
              [&](const std::string& name, const std::vector<uint64_t>& shape, uint64_t i) {
                std::normal_distribution<double> small(0.0, 0.005);
                if (shape.size() == 1) return 1.0;  // norms
                if (name == "model.embed_tokens.weight") {
                  const uint64_t token = i / h, dim = i % h;
                  if (dim == 0) return 1.0;
                  if (dim == 1) return demo_readable_token(token) ? 1.0 : -1.0;
                  return small(rng);
                }
                if (name == "model.layers.0.self_attn.v_proj.weight")
                  return i == 1 ? copy : 0.0;  // [0][1]
                if (name == "model.layers.0.self_attn.o_proj.weight")
                  return i == h ? copy : 0.0;                           // [1][0]
                if (name == "score.weight") return i == 1 ? 1.0 : 0.0;  // [0][1]
                return 0.0;
              });
}

}  // namespace expo
