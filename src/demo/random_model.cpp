#include "demo/random_model.h"

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "io/safetensors_writer.h"
#include "io/sharding.h"

namespace expo {

namespace {

std::vector<TensorLayout> llama_tensors(const RandomLlamaSpec& spec) {
  const uint64_t h = spec.hidden, inter = spec.intermediate, v = spec.vocab;
  const uint64_t head_dim = h / spec.heads, kv = head_dim * spec.kv_heads;
  std::vector<TensorLayout> t;
  t.push_back({"model.embed_tokens.weight", spec.dtype, {v, h}});
  for (int l = 0; l < spec.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back({p + "input_layernorm.weight", spec.dtype, {h}});
    t.push_back({p + "self_attn.q_proj.weight", spec.dtype, {h, h}});
    t.push_back({p + "self_attn.k_proj.weight", spec.dtype, {kv, h}});
    t.push_back({p + "self_attn.v_proj.weight", spec.dtype, {kv, h}});
    t.push_back({p + "self_attn.o_proj.weight", spec.dtype, {h, h}});
    t.push_back({p + "post_attention_layernorm.weight", spec.dtype, {h}});
    t.push_back({p + "mlp.gate_proj.weight", spec.dtype, {inter, h}});
    t.push_back({p + "mlp.up_proj.weight", spec.dtype, {inter, h}});
    t.push_back({p + "mlp.down_proj.weight", spec.dtype, {h, inter}});
  }
  t.push_back({"model.norm.weight", spec.dtype, {h}});
  if (spec.reward_model)
    t.push_back({"score.weight", spec.dtype, {1, h}});
  else if (!spec.tied)
    t.push_back({"lm_head.weight", spec.dtype, {v, h}});
  return t;
}

nlohmann::ordered_json llama_config(const RandomLlamaSpec& spec) {
  nlohmann::ordered_json config{
      {"architectures",
       {spec.reward_model ? "LlamaForSequenceClassification" : "LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_size", spec.hidden},
      {"intermediate_size", spec.intermediate},
      {"num_hidden_layers", spec.layers},
      {"num_attention_heads", spec.heads},
      {"num_key_value_heads", spec.kv_heads},
      {"vocab_size", spec.vocab},
      {"max_position_embeddings", spec.max_positions},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", 10000.0},
      {"hidden_act", "silu"},
      {"tie_word_embeddings", spec.tied && !spec.reward_model},
      {"bos_token_id", spec.bos_id},
      {"eos_token_id", spec.eos_id},
      {"torch_dtype", spec.dtype == DType::BF16  ? "bfloat16"
                      : spec.dtype == DType::F16 ? "float16"
                                                 : "float32"}};
  if (spec.reward_model) {
    config["num_labels"] = 1;
    config["id2label"] = {{"0", "LABEL_0"}};
    config["label2id"] = {{"LABEL_0", 0}};
    config["pad_token_id"] = spec.eos_id;
  }
  return config;
}

}  // namespace

void write_llama(const fs::path& dir, const RandomLlamaSpec& spec, const WeightFn& weight) {
  if (!is_arithmetic_float(spec.dtype)) fail("random models need a float dtype");
  if (spec.hidden % spec.heads != 0 || spec.heads % spec.kv_heads != 0)
    fail("random model: hidden size must divide into heads, heads into kv heads");
  fs::create_directories(dir);
  std::vector<TensorData> tensors;
  for (const auto& layout : llama_tensors(spec)) {
    TensorData t{layout, std::vector<uint8_t>(layout.num_bytes())};
    const uint64_t n = layout.num_bytes() / dtype_size(layout.dtype);
    for (uint64_t i = 0; i < n; ++i)
      store_from_double(t.bytes.data(), layout.dtype, i, weight(layout.name, layout.shape, i));
    tensors.push_back(std::move(t));
  }
  std::vector<uint64_t> sizes;
  for (const auto& t : tensors) sizes.push_back(t.bytes.size());
  const auto shards = plan_shards(sizes, spec.max_shard_size);
  std::vector<std::string> names;
  std::vector<size_t> shard_of;
  uint64_t total = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    std::vector<TensorData> part;
    for (size_t i : shards[s]) {
      names.push_back(tensors[i].layout.name);
      shard_of.push_back(s);
      total += tensors[i].bytes.size();
      part.push_back(tensors[i]);
    }
    write_safetensors_file((dir / shard_file_name(s, shards.size())).string(), part,
                           {{"format", "pt"}});
  }
  if (shards.size() > 1)
    write_text_file(dir / "model.safetensors.index.json",
                    make_shard_index(names, shard_of, shards.size(), total).dump(2) + "\n");
  write_text_file(dir / "config.json", llama_config(spec).dump(2) + "\n");
  write_text_file(
      dir / "generation_config.json",
      nlohmann::ordered_json{{"bos_token_id", spec.bos_id}, {"eos_token_id", spec.eos_id}}.dump(2) +
          "\n");
}

void write_random_llama(const fs::path& dir, const RandomLlamaSpec& spec, uint64_t seed,
                        uint64_t noise_seed, double noise) {
  std::mt19937_64 rng(seed), noise_rng(noise_seed);
  std::normal_distribution<double> normal(0.0, 0.02);
  std::normal_distribution<double> jitter(0.0, noise);
  write_llama(dir, spec, [&](const std::string&, const std::vector<uint64_t>& shape, uint64_t) {
    double v = shape.size() == 1 ? 1.0 + normal(rng) : normal(rng);
    if (noise_seed) v += jitter(noise_rng);
    return v;
  });
}

void write_random_pair(const fs::path& sft_dir, const fs::path& aligned_dir,
                       const RandomLlamaSpec& spec, uint64_t seed) {
  write_random_llama(sft_dir, spec, seed);
  write_random_llama(aligned_dir, spec, seed, seed + 1, 0.002);
}

}  // namespace expo
