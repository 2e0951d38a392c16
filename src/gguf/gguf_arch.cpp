#include "gguf/gguf_arch.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "model/rope.h"

namespace expo {

namespace {

const char* gguf_arch_name(const ModelConfig& c) {
  switch (c.family) {
    case Family::kLlama:
    case Family::kMistral:
    case Family::kMixtral:
      return "llama";
    case Family::kQwen2:
      return "qwen2";
    case Family::kQwen3:
      return "qwen3";
    case Family::kGemma2:
      return "gemma2";
    case Family::kGemma3:
      return "gemma3";
    case Family::kOlmo2:
      return "olmo2";
    case Family::kPhi3:
      return "phi3";
    case Family::kInternLM2:
      return "internlm2";
  }
  return "";
}

// The graphs whose rope pairs dimension i with i + 1 (llama.cpp's "normal" rope) read q and k
// with each head's halves interleaved; the others pair i with i + d/2, as transformers does.
bool interleaves_rope(const ModelConfig& c) {
  return c.family == Family::kLlama || c.family == Family::kMistral ||
         c.family == Family::kMixtral || c.family == Family::kInternLM2;
}

class RecipeBuilder {
 public:
  RecipeBuilder(const ModelConfig& c, const std::vector<std::string>& names)
      : c_(c), names_(names.begin(), names.end()) {}

  bool has(const std::string& name) const { return names_.count(name) != 0; }

  GgufTensorRecipe& add(std::string gguf, std::vector<uint64_t> shape,
                        std::vector<std::string> sources) {
    for (const auto& s : sources)
      if (!has(s)) fail("internal: GGUF recipe reads ", s, ", which the checkpoint does not have");
    GgufTensorRecipe& t = recipe.tensors.emplace_back();
    t.name = std::move(gguf);
    t.shape = std::move(shape);
    t.sources = std::move(sources);
    t.always_f32 = t.shape.size() == 1;
    return t;
  }
  void norm(std::string gguf, const std::string& hf, uint64_t size) {
    add(std::move(gguf), {size}, {hf}).add = c_.norm_plus_one ? 1.0 : 0.0;
  }

  GgufModelRecipe recipe;

 private:
  const ModelConfig& c_;
  std::set<std::string> names_;
};

[[noreturn]] void refuse(const ModelConfig& c, const std::string& what) {
  fail("GGUF: ", c.architecture, ": ", what);
}

}  // namespace

std::vector<uint64_t> rope_interleave_rows(uint64_t heads, uint64_t head_dim) {
  std::vector<uint64_t> rows(heads * head_dim);
  const uint64_t half = head_dim / 2;
  for (uint64_t h = 0; h < heads; ++h)
    for (uint64_t i = 0; i < half; ++i)
      for (uint64_t j = 0; j < 2; ++j) rows[h * head_dim + 2 * i + j] = h * head_dim + j * half + i;
  return rows;
}

GgufModelRecipe gguf_recipe(const ModelConfig& c, const std::vector<std::string>& tensor_names) {
  if (c.is_reward_model) refuse(c, "a reward model; GGUF output is for causal language models");
  RecipeBuilder b(c, tensor_names);
  GgufModelRecipe& r = b.recipe;
  r.arch = gguf_arch_name(c);
  const std::string a = r.arch + ".";
  const uint64_t H = c.hidden_size, I = c.intermediate_size, D = c.head_dim, V = c.vocab_size;
  const uint64_t qd = c.q_dim(), kvd = c.kv_dim();
  const bool interleave = interleaves_rope(c);

  // What llama.cpp would compute differently.
  const bool gemma = c.family == Family::kGemma2 || c.family == Family::kGemma3;
  if (gemma && std::abs(c.attention_scale * std::sqrt(static_cast<double>(D)) - 1.0) > 1e-12)
    refuse(c,
           "query_pre_attn_scalar differs from head_dim; llama.cpp's Gemma graphs choose the "
           "attention scale from the model size, not from this field");
  if (c.qkv_bias && c.family != Family::kLlama && c.family != Family::kQwen2)
    refuse(c, "attention biases are not read by llama.cpp's " + r.arch + " graph");
  if (c.o_bias && c.family != Family::kLlama)
    refuse(c, "an o_proj bias is not read by llama.cpp's " + r.arch + " graph");
  if (c.activation != (gemma ? Activation::kGeluTanh : Activation::kSilu))
    refuse(c, "llama.cpp's " + r.arch + " graph has a fixed activation; this config changes it");
  const RopeScaling& rope = c.rope_scaling;
  if (rope.kind == RopeKind::kDynamic) {
    r.notes.push_back("llama.cpp has no dynamic NTK rope: the GGUF model is the same up to " +
                      std::to_string(rope.original_max_position) + " tokens, not beyond");
  } else if (rope.kind == RopeKind::kLlama3 && c.family != Family::kLlama) {
    refuse(c, "llama3 rope scaling is read by llama.cpp's llama graph only");
  }
  for (uint64_t l = 0; l < c.num_layers; ++l) {
    const uint64_t w = c.sliding_window[l];
    if (w == 0) continue;
    if (c.family == Family::kGemma2 && (l % 2 != 0 || w != c.sliding_window[0]))
      refuse(c, "llama.cpp's gemma2 slides on even layers with one window; this config differs");
    if (c.family == Family::kGemma3 && (l % 6 == 5 || w != c.sliding_window[0]))
      refuse(c, "llama.cpp's gemma3 slides on every layer but each sixth; this config differs");
  }
  if (c.family == Family::kGemma2)
    for (uint64_t l = 0; l < c.num_layers; l += 2)
      if (c.sliding_window[l] == 0)
        refuse(c, "llama.cpp's gemma2 slides on even layers; layer " + std::to_string(l) +
                      " does not");
  if (c.family == Family::kGemma3) {
    for (uint64_t l = 0; l < c.num_layers; ++l)
      if ((l % 6 != 5) != (c.sliding_window[l] != 0))
        refuse(c, "llama.cpp's gemma3 slides on every layer but each sixth; layer " +
                      std::to_string(l) + " differs");
    if (c.rope_local_theta != 10000.0)
      refuse(c, "rope_local_base_freq is not 10000, which llama.cpp's gemma3 uses");
  }
  const bool swa_in_gguf = gemma || c.family == Family::kPhi3;
  const uint64_t window = *std::max_element(c.sliding_window.begin(), c.sliding_window.end());
  if (window && !swa_in_gguf)
    r.notes.push_back("llama.cpp's " + r.arch + " graph attends to the whole context: the GGUF " +
                      "model is the same as this one up to the sliding window of " +
                      std::to_string(window) + " tokens, not beyond");

  // Hyperparameters.
  GgufMetadata& m = r.metadata;
  auto u32 = [](uint64_t v) { return GgufValue(static_cast<uint32_t>(v)); };
  auto f32 = [](double v) { return GgufValue(static_cast<float>(v)); };
  m.add("general.architecture", GgufValue(r.arch));
  m.add(a + "vocab_size", u32(V));
  m.add(a + "context_length", u32(c.max_position_embeddings));
  m.add(a + "embedding_length", u32(H));
  m.add(a + "block_count", u32(c.num_layers));
  m.add(a + "feed_forward_length", u32(I));
  m.add(a + "attention.head_count", u32(c.num_heads));
  m.add(a + "attention.head_count_kv", u32(c.num_kv_heads));
  m.add(a + "attention.key_length", u32(D));
  m.add(a + "attention.value_length", u32(D));
  m.add(a + "attention.layer_norm_rms_epsilon", f32(c.rms_norm_eps));
  m.add(a + "rope.freq_base", f32(c.rope_theta));
  m.add(a + "rope.dimension_count", u32(c.rotary_dim));
  if (rope.kind == RopeKind::kLinear) {
    m.add(a + "rope.scaling.type", GgufValue("linear"));
    m.add(a + "rope.scaling.factor", f32(rope.factor));
  }
  if (c.num_experts) {
    m.add(a + "expert_count", u32(c.num_experts));
    m.add(a + "expert_used_count", u32(c.experts_per_token));
  }
  if (c.family == Family::kGemma2) {
    m.add(a + "attn_logit_softcapping", f32(c.attn_softcap));
    m.add(a + "final_logit_softcapping", f32(c.final_softcap));
    if (c.attn_softcap == 0 || c.final_softcap == 0)
      refuse(c, "a soft-cap turned off; llama.cpp's gemma2 always caps");
  }
  if (c.family == Family::kGemma3) {
    if (c.attn_softcap != 0) refuse(c, "attention soft-capping is not read by llama.cpp's gemma3");
    if (c.final_softcap != 0) m.add(a + "final_logit_softcapping", f32(c.final_softcap));
  }
  if (swa_in_gguf && window) m.add(a + "attention.sliding_window", u32(window));
  if (c.family == Family::kPhi3 && rope.kind == RopeKind::kLongRope) {
    m.add(a + "rope.scaling.attn_factor", f32(rope.attention_factor));
    m.add(a + "rope.scaling.original_context_length", u32(rope.original_max_position));
    r.notes.push_back(
        "llama.cpp chooses Phi-3's long or short rope factors by the context size it is given, "
        "not by each sequence's length as transformers does: load it with a context of at most " +
        std::to_string(rope.original_max_position) + " for the short factors");
  }

  // Tensors.
  const bool internlm = c.family == Family::kInternLM2;
  b.add("token_embd.weight", {V, H},
        {internlm ? "model.tok_embeddings.weight" : "model.embed_tokens.weight"});
  if (rope.kind == RopeKind::kLlama3) {
    // llama.cpp divides each frequency by rope_freqs: the default one over the scaled one.
    ModelConfig plain = c;
    plain.rope_scaling = RopeScaling{};
    const auto base = rope_frequencies(plain, 1).inv_freq;
    const auto scaled = rope_frequencies(c, 1).inv_freq;
    GgufTensorRecipe t;
    t.name = "rope_freqs.weight";
    t.shape = {base.size()};
    for (size_t i = 0; i < base.size(); ++i) t.values.push_back(base[i] / scaled[i]);
    t.always_f32 = true;
    r.tensors.push_back(std::move(t));
  }
  if (rope.kind == RopeKind::kLongRope) {
    for (const auto& [name, factors] :
         {std::pair{"rope_factors_long.weight", &rope.long_factor},
          std::pair{"rope_factors_short.weight", &rope.short_factor}}) {
      GgufTensorRecipe t;
      t.name = name;
      t.shape = {factors->size()};
      t.values = *factors;
      t.always_f32 = true;
      r.tensors.push_back(std::move(t));
    }
  }
  const auto q_rows = interleave ? rope_interleave_rows(c.num_heads, D) : std::vector<uint64_t>{};
  const auto k_rows =
      interleave ? rope_interleave_rows(c.num_kv_heads, D) : std::vector<uint64_t>{};
  for (uint64_t l = 0; l < c.num_layers; ++l) {
    const std::string hf = "model.layers." + std::to_string(l) + ".";
    const std::string g = "blk." + std::to_string(l) + ".";
    if (internlm) {
      b.norm(g + "attn_norm.weight", hf + "attention_norm.weight", H);
      // wqkv rows are grouped per kv head: its query heads, then its key, then its value.
      const uint64_t groups = c.num_heads / c.num_kv_heads;
      std::vector<uint64_t> q, k, v;
      for (uint64_t kv = 0; kv < c.num_kv_heads; ++kv) {
        const uint64_t block = kv * (groups + 2) * D;
        for (uint64_t i = 0; i < groups * D; ++i) q.push_back(block + i);
        for (uint64_t i = 0; i < D; ++i) k.push_back(block + groups * D + i);
        for (uint64_t i = 0; i < D; ++i) v.push_back(block + (groups + 1) * D + i);
      }
      auto permuted = [](const std::vector<uint64_t>& rows, const std::vector<uint64_t>& order) {
        std::vector<uint64_t> out(order.size());
        for (size_t i = 0; i < order.size(); ++i) out[i] = rows[order[i]];
        return out;
      };
      const std::string wqkv = hf + "attention.wqkv.weight";
      b.add(g + "attn_q.weight", {qd, H}, {wqkv}).rows = permuted(q, q_rows);
      b.add(g + "attn_k.weight", {kvd, H}, {wqkv}).rows = permuted(k, k_rows);
      b.add(g + "attn_v.weight", {kvd, H}, {wqkv}).rows = v;
      b.add(g + "attn_output.weight", {H, qd}, {hf + "attention.wo.weight"});
      b.norm(g + "ffn_norm.weight", hf + "ffn_norm.weight", H);
      b.add(g + "ffn_gate.weight", {I, H}, {hf + "feed_forward.w1.weight"});
      b.add(g + "ffn_up.weight", {I, H}, {hf + "feed_forward.w3.weight"});
      b.add(g + "ffn_down.weight", {H, I}, {hf + "feed_forward.w2.weight"});
      continue;
    }
    const std::string at = hf + "self_attn.";
    switch (c.norm_layout) {
      case NormLayout::kPre:
        b.norm(g + "attn_norm.weight", hf + "input_layernorm.weight", H);
        b.norm(g + "ffn_norm.weight", hf + "post_attention_layernorm.weight", H);
        break;
      case NormLayout::kSandwich:
        b.norm(g + "attn_norm.weight", hf + "input_layernorm.weight", H);
        b.norm(g + "post_attention_norm.weight", hf + "post_attention_layernorm.weight", H);
        b.norm(g + "ffn_norm.weight", hf + "pre_feedforward_layernorm.weight", H);
        b.norm(g + "post_ffw_norm.weight", hf + "post_feedforward_layernorm.weight", H);
        break;
      case NormLayout::kPost:
        b.norm(g + "post_attention_norm.weight", hf + "post_attention_layernorm.weight", H);
        b.norm(g + "post_ffw_norm.weight", hf + "post_feedforward_layernorm.weight", H);
        break;
    }
    if (c.fused_qkv) {
      b.add(g + "attn_qkv.weight", {qd + 2 * kvd, H}, {at + "qkv_proj.weight"});
    } else {
      b.add(g + "attn_q.weight", {qd, H}, {at + "q_proj.weight"}).rows = q_rows;
      b.add(g + "attn_k.weight", {kvd, H}, {at + "k_proj.weight"}).rows = k_rows;
      b.add(g + "attn_v.weight", {kvd, H}, {at + "v_proj.weight"});
    }
    if (c.qkv_bias) {
      b.add(g + "attn_q.bias", {qd}, {at + "q_proj.bias"}).rows = q_rows;
      b.add(g + "attn_k.bias", {kvd}, {at + "k_proj.bias"}).rows = k_rows;
      b.add(g + "attn_v.bias", {kvd}, {at + "v_proj.bias"});
    }
    if (c.qk_norm == QkNorm::kPerHead) {
      b.norm(g + "attn_q_norm.weight", at + "q_norm.weight", D);
      b.norm(g + "attn_k_norm.weight", at + "k_norm.weight", D);
    } else if (c.qk_norm == QkNorm::kWhole) {
      b.norm(g + "attn_q_norm.weight", at + "q_norm.weight", qd);
      b.norm(g + "attn_k_norm.weight", at + "k_norm.weight", kvd);
    }
    b.add(g + "attn_output.weight", {H, qd}, {at + "o_proj.weight"});
    if (c.o_bias) b.add(g + "attn_output.bias", {H}, {at + "o_proj.bias"});
    if (c.num_experts) {
      const std::string moe = hf + "block_sparse_moe.";
      b.add(g + "ffn_gate_inp.weight", {c.num_experts, H}, {moe + "gate.weight"});
      for (const auto& [name, w, rows, cols] : {std::tuple{"ffn_gate_exps.weight", "w1", I, H},
                                                std::tuple{"ffn_up_exps.weight", "w3", I, H},
                                                std::tuple{"ffn_down_exps.weight", "w2", H, I}}) {
        std::vector<std::string> experts;
        for (uint64_t e = 0; e < c.num_experts; ++e)
          experts.push_back(moe + "experts." + std::to_string(e) + "." + w + ".weight");
        b.add(g + name, {c.num_experts, rows, cols}, experts);
      }
      continue;
    }
    if (c.fused_gate_up) {
      b.add(g + "ffn_up.weight", {2 * I, H}, {hf + "mlp.gate_up_proj.weight"});
    } else {
      b.add(g + "ffn_gate.weight", {I, H}, {hf + "mlp.gate_proj.weight"});
      b.add(g + "ffn_up.weight", {I, H}, {hf + "mlp.up_proj.weight"});
    }
    b.add(g + "ffn_down.weight", {H, I}, {hf + "mlp.down_proj.weight"});
    if (c.mlp_bias) {
      b.add(g + "ffn_gate.bias", {I}, {hf + "mlp.gate_proj.bias"});
      b.add(g + "ffn_up.bias", {I}, {hf + "mlp.up_proj.bias"});
      b.add(g + "ffn_down.bias", {H}, {hf + "mlp.down_proj.bias"});
    }
  }
  b.norm("output_norm.weight", "model.norm.weight", H);
  const std::string head = internlm ? "output.weight" : "lm_head.weight";
  if (!c.tie_word_embeddings && b.has(head)) b.add("output.weight", {V, H}, {head});
  return std::move(b.recipe);
}

}  // namespace expo
