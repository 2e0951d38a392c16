// config.json as the engine reads it (src/model/config.h): each family's defaults as its
// transformers config class sets them, the per-layer sliding windows and rope, and every field
// it does not implement refused by name. Also where a reward model reads a sequence
// (reward_model_input, src/model/scorer.h).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/scorer.h"
#include "test_util.h"

namespace expo {
namespace {

using nlohmann::json;

json base(const std::string& arch) {
  return json{{"architectures", {arch}}, {"hidden_size", 64},        {"intermediate_size", 96},
              {"num_hidden_layers", 4},  {"num_attention_heads", 4}, {"num_key_value_heads", 2},
              {"vocab_size", 100}};
}

ModelConfig parse(const json& j) { return parse_model_config(j, "config.json"); }

std::vector<uint64_t> windows(std::initializer_list<uint64_t> w) { return w; }

TEST(ModelConfig, FamilyDefaultsFollowTransformers) {
  // Qwen3Config: head_dim 128 when absent.
  EXPECT_EQ(parse(base("Qwen3ForCausalLM")).head_dim, 128u);
  EXPECT_EQ(parse(base("Qwen2ForCausalLM")).head_dim, 16u);
  // Gemma2Config: head_dim 256, tied, caps 50 and 30, query_pre_attn_scalar 256, even layers
  // slide with a window of 4096.
  const ModelConfig g2 = parse(base("Gemma2ForCausalLM"));
  EXPECT_EQ(g2.head_dim, 256u);
  EXPECT_TRUE(g2.tie_word_embeddings);
  EXPECT_EQ(g2.attn_softcap, 50.0);
  EXPECT_EQ(g2.final_softcap, 30.0);
  EXPECT_DOUBLE_EQ(g2.attention_scale, 1.0 / 16.0);
  EXPECT_DOUBLE_EQ(g2.embedding_scale, 8.0);
  EXPECT_TRUE(g2.norm_plus_one);
  EXPECT_EQ(g2.activation, Activation::kGeluTanh);
  EXPECT_EQ(g2.sliding_window, windows({4096, 0, 4096, 0}));
  // null turns a cap off.
  json j = base("Gemma2ForCausalLM");
  j["attn_logit_softcapping"] = nullptr;
  j["final_logit_softcapping"] = 5.0;
  EXPECT_EQ(parse(j).attn_softcap, 0.0);
  EXPECT_EQ(parse(j).final_softcap, 5.0);
  // Gemma3TextConfig: no caps, every 6th layer global, local layers on the local rope.
  j = base("Gemma3ForCausalLM");
  j["num_hidden_layers"] = 7;
  j["sliding_window"] = 8;
  const ModelConfig g3 = parse(j);
  EXPECT_EQ(g3.attn_softcap, 0.0);
  EXPECT_EQ(g3.final_softcap, 0.0);
  EXPECT_EQ(g3.sliding_window, windows({8, 8, 8, 8, 8, 0, 8}));
  EXPECT_EQ(g3.local_rope, (std::vector<bool>{true, true, true, true, true, false, true}));
  EXPECT_EQ(g3.rope_theta, 1000000.0);
  EXPECT_EQ(g3.rope_local_theta, 10000.0);
  EXPECT_EQ(g3.qk_norm, QkNorm::kPerHead);
  j["sliding_window_pattern"] = 2;
  EXPECT_EQ(parse(j).sliding_window, windows({8, 0, 8, 0, 8, 0, 8}));
  j["layer_types"] = {"full_attention",    "sliding_attention", "full_attention",
                      "sliding_attention", "full_attention",    "full_attention",
                      "sliding_attention"};
  EXPECT_EQ(parse(j).sliding_window, windows({0, 8, 0, 8, 0, 0, 8}));
  EXPECT_EQ(parse(j).local_rope, (std::vector<bool>{false, true, false, true, false, false, true}));
  // OLMo 2, Phi-3, Mixtral.
  const ModelConfig olmo = parse(base("Olmo2ForCausalLM"));
  EXPECT_EQ(olmo.norm_layout, NormLayout::kPost);
  EXPECT_EQ(olmo.qk_norm, QkNorm::kWhole);
  EXPECT_EQ(olmo.rms_norm_eps, 1e-5);
  const ModelConfig phi = parse(base("Phi3ForCausalLM"));
  EXPECT_TRUE(phi.fused_qkv && phi.fused_gate_up);
  EXPECT_EQ(phi.rotary_dim, 16u);
  const ModelConfig mix = parse(base("MixtralForCausalLM"));
  EXPECT_EQ(mix.num_experts, 8u);
  EXPECT_EQ(mix.experts_per_token, 2u);
  EXPECT_EQ(mix.rope_theta, 1000000.0);
}

TEST(ModelConfig, QwenSlidingWindowStartsAtMaxWindowLayers) {
  for (const char* arch : {"Qwen2ForCausalLM", "Qwen3ForCausalLM"}) {
    json j = base(arch);
    j["use_sliding_window"] = true;
    j["sliding_window"] = 8;
    // Without max_window_layers, transformers' default 28: none of 4 layers slides.
    EXPECT_EQ(parse(j).sliding_window, windows({0, 0, 0, 0})) << arch;
    j["num_hidden_layers"] = 30;
    const auto w = parse(j).sliding_window;
    EXPECT_EQ(w[27], 0u);
    EXPECT_EQ(w[28], 8u);
    EXPECT_EQ(w[29], 8u);
    j["num_hidden_layers"] = 4;
    j["max_window_layers"] = 1;
    EXPECT_EQ(parse(j).sliding_window, windows({0, 8, 8, 8})) << arch;
    j["max_window_layers"] = 0;
    EXPECT_EQ(parse(j).sliding_window, windows({8, 8, 8, 8})) << arch;
    j["use_sliding_window"] = false;
    EXPECT_EQ(parse(j).sliding_window, windows({0, 0, 0, 0})) << arch;
  }
}

TEST(ModelConfig, PartialRotaryAndLongRope) {
  json j = base("Phi3ForCausalLM");
  j["partial_rotary_factor"] = 0.5;
  j["max_position_embeddings"] = 64;
  j["original_max_position_embeddings"] = 16;
  j["rope_scaling"] = {{"type", "longrope"},
                       {"short_factor", {1.0, 1.5, 2.0, 2.5}},
                       {"long_factor", {2.0, 3.0, 4.0, 5.0}}};
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.rotary_dim, 8u);
  EXPECT_EQ(c.rope_scaling.kind, RopeKind::kLongRope);
  EXPECT_EQ(c.rope_scaling.original_max_position, 16u);
  // transformers: sqrt(1 + ln(64 / 16) / ln(16)).
  EXPECT_DOUBLE_EQ(c.rope_scaling.attention_factor, std::sqrt(1 + std::log(4.0) / std::log(16.0)));
  j["rope_scaling"]["attention_factor"] = 1.25;
  EXPECT_EQ(parse(j).rope_scaling.attention_factor, 1.25);
  j["rope_scaling"]["long_factor"] = {2.0, 3.0};
  EXPECT_ERROR(parse(j), "\"long_factor\" has 2 entries; rotary dimensions / 2 = 4");
  j["rope_scaling"]["long_factor"] = {2.0, 3.0, -1.0, 5.0};
  EXPECT_ERROR(parse(j), "\"long_factor\"[2] must be a positive number");
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  EXPECT_ERROR(parse(j), "type \"yarn\" is not supported");

  json llama = base("LlamaForCausalLM");
  llama["partial_rotary_factor"] = 0.5;
  EXPECT_ERROR(parse(llama), "partial_rotary_factor != 1 is not supported for LlamaForCausalLM");
  llama.erase("partial_rotary_factor");
  llama["rope_scaling"] = {{"rope_type", "longrope"}, {"short_factor", {1}}, {"long_factor", {1}}};
  EXPECT_ERROR(parse(llama), "\"longrope\" is not supported", "longrope for Phi3ForCausalLM");
}

TEST(ModelConfig, FieldsTheEngineDoesNotImplementAreRefusedByName) {
  json j = base("LlamaForCausalLM");
  j["num_local_experts"] = 4;
  EXPECT_ERROR(parse(j), "mixture-of-experts fields are not part of the LlamaForCausalLM");
  j = base("LlamaForCausalLM");
  j["attn_logit_softcapping"] = 30.0;
  EXPECT_ERROR(parse(j), "attn_logit_softcapping is not part of the LlamaForCausalLM");
  j = base("Olmo2ForCausalLM");
  j["clip_qkv"] = 8.0;
  EXPECT_ERROR(parse(j), "clip_qkv is not supported");
  j = base("Gemma3ForCausalLM");
  j["use_bidirectional_attention"] = true;
  EXPECT_ERROR(parse(j), "use_bidirectional_attention is not supported");
  j = base("Olmo2ForCausalLM");
  j["sliding_window"] = 8;
  EXPECT_ERROR(parse(j), "sliding-window attention is not part of the Olmo2ForCausalLM");
  j = base("Gemma2ForCausalLM");
  j["hidden_activation"] = "relu";
  EXPECT_ERROR(parse(j), "hidden_activation \"relu\" is not supported");
  j = base("Gemma2ForCausalLM");
  j["layer_types"] = {"full_attention", "chunked_attention", "full_attention", "full_attention"};
  EXPECT_ERROR(parse(j), "layer_types[1] is \"chunked_attention\"");
  j = base("Qwen3ForCausalLM");
  j["layer_types"] = {"full_attention", "sliding_attention", "full_attention", "full_attention"};
  EXPECT_ERROR(parse(j), "layer_types[1] is sliding_attention but there is no sliding_window");
  j = base("MixtralForCausalLM");
  j["num_local_experts"] = 2;
  j["num_experts_per_tok"] = 3;
  EXPECT_ERROR(parse(j), "num_experts_per_tok (3) exceeds num_local_experts (2)");
  j = base("InternLM2ForRewardModel");
  EXPECT_ERROR(parse(j), "InternLM2ForRewardModel needs \"reward_token_id\"");
  j["reward_token_id"] = 100;
  EXPECT_ERROR(parse(j), "reward_token_id must be one token id below vocab_size 100");
  // Gemma 3's multimodal class is not the text model.
  EXPECT_ERROR(parse(base("Gemma3ForConditionalGeneration")),
               "Gemma3ForConditionalGeneration is not supported", "Gemma3ForCausalLM");
}

TEST(ModelConfig, RewardHeadsReadWhereTransformersReads) {
  json j = base("Qwen3ForSequenceClassification");
  j["num_labels"] = 1;
  j["pad_token_id"] = 7;
  const ModelConfig score = parse(j);
  EXPECT_EQ(score.reward_head, RewardHead::kScore);
  // The last token that is not pad: a pad in the middle stays, trailing pads go.
  EXPECT_EQ(reward_model_input(score, {1, 7, 5, 6, 7, 7}), (std::vector<int32_t>{1, 7, 5, 6}));
  EXPECT_EQ(reward_model_input(score, {1, 2, 3}), (std::vector<int32_t>{1, 2, 3}));
  // All pad: transformers' argmax over zeros reads the first token.
  EXPECT_EQ(reward_model_input(score, {7, 7, 7}), (std::vector<int32_t>{7}));
  j.erase("pad_token_id");
  EXPECT_EQ(reward_model_input(parse(j), {1, 7, 7}), (std::vector<int32_t>{1, 7, 7}));

  j = base("InternLM2ForRewardModel");
  j["reward_token_id"] = 92;
  j["pad_token_id"] = 2;
  const ModelConfig value = parse(j);
  EXPECT_EQ(value.reward_head, RewardHead::kValue);
  EXPECT_EQ(value.num_labels, 1u);
  EXPECT_EQ(reward_model_input(value, {1, 5, 2}), (std::vector<int32_t>{1, 5, 2, 92}));
  // A causal LM reads what it is given.
  EXPECT_EQ(reward_model_input(parse(base("LlamaForCausalLM")), {1, 0, 0}),
            (std::vector<int32_t>{1, 0, 0}));
}

}  // namespace
}  // namespace expo
