#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "core/json_reader.h"

namespace expo {

namespace {

using nlohmann::json;

struct ArchInfo {
  Family family;
  RewardHead reward;
};

const std::map<std::string, ArchInfo>& architectures() {
  static const std::map<std::string, ArchInfo> table{
      {"LlamaForCausalLM", {Family::kLlama, RewardHead::kNone}},
      {"MistralForCausalLM", {Family::kMistral, RewardHead::kNone}},
      {"Qwen2ForCausalLM", {Family::kQwen2, RewardHead::kNone}},
      {"Qwen3ForCausalLM", {Family::kQwen3, RewardHead::kNone}},
      {"InternLM2ForCausalLM", {Family::kInternLM2, RewardHead::kNone}},
      {"Gemma2ForCausalLM", {Family::kGemma2, RewardHead::kNone}},
      {"Gemma3ForCausalLM", {Family::kGemma3, RewardHead::kNone}},
      {"Olmo2ForCausalLM", {Family::kOlmo2, RewardHead::kNone}},
      {"Phi3ForCausalLM", {Family::kPhi3, RewardHead::kNone}},
      {"MixtralForCausalLM", {Family::kMixtral, RewardHead::kNone}},
      {"LlamaForSequenceClassification", {Family::kLlama, RewardHead::kScore}},
      {"MistralForSequenceClassification", {Family::kMistral, RewardHead::kScore}},
      {"Qwen2ForSequenceClassification", {Family::kQwen2, RewardHead::kScore}},
      {"Qwen3ForSequenceClassification", {Family::kQwen3, RewardHead::kScore}},
      {"Gemma2ForSequenceClassification", {Family::kGemma2, RewardHead::kScore}},
      {"InternLM2ForRewardModel", {Family::kInternLM2, RewardHead::kValue}},
  };
  return table;
}

// config.json read through the one strict JSON reader; a null field counts as absent, as in
// transformers' PretrainedConfig.
class ConfigReader {
 public:
  ConfigReader(const json& j, const std::string& source) : j_(j), reader_(source) {}
  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  uint64_t positive(const char* key) const {
    return static_cast<uint64_t>(reader_.get_int(j_, "", key, 1, INT64_MAX));
  }
  uint64_t positive_or(const char* key, uint64_t fallback) const {
    return has(key) ? positive(key) : fallback;
  }
  double number_or(const char* key, double fallback) const {
    return has(key) ? reader_.get_number(j_, "", key) : fallback;
  }
  bool boolean_or(const char* key, bool fallback) const {
    return has(key) ? reader_.get_bool(j_, "", key) : fallback;
  }
  std::string string_or(const char* key, const std::string& fallback) const {
    return reader_.opt_string(j_, "", key).value_or(fallback);
  }

 private:
  const json& j_;
  JsonReader reader_;
};

std::vector<int32_t> token_ids(const json& v, const std::string& source, const char* key) {
  std::vector<int32_t> ids;
  auto add = [&](const json& x) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0 || x.get<int64_t>() > INT32_MAX)
      fail(source, ": \"", key, "\" must be a token id or a list of them, got ", v.dump());
    const auto id = static_cast<int32_t>(x.get<int64_t>());
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  if (v.is_null()) return ids;
  if (v.is_array()) {
    for (const auto& x : v) add(x);
  } else {
    add(v);
  }
  return ids;
}

// A list of positive numbers (longrope's factors), `count` of them.
std::vector<double> positive_list(const json& r, const char* key, uint64_t count,
                                  const std::string& where) {
  if (!r.contains(key) || !r[key].is_array())
    fail(where, ": \"", key, "\" must be a list of ", count, " numbers");
  const json& v = r[key];
  if (v.size() != count)
    fail(where, ": \"", key, "\" has ", v.size(), " entries; rotary dimensions / 2 = ", count);
  std::vector<double> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number() || !(v[i].get<double>() > 0) || !std::isfinite(v[i].get<double>()))
      fail(where, ": \"", key, "\"[", i, "] must be a positive number, got ", v[i].dump());
    out.push_back(v[i].get<double>());
  }
  return out;
}

// rope_scaling. `top_original` is a config's top-level original_max_position_embeddings
// (Phi-3's), 0 when absent.
RopeScaling parse_rope_scaling(const json& config, const std::string& source, const ModelConfig& c,
                               uint64_t top_original) {
  RopeScaling rope;
  if (!config.contains("rope_scaling") || config["rope_scaling"].is_null()) return rope;
  const json& r = config["rope_scaling"];
  if (!r.is_object()) fail(source, ": \"rope_scaling\" must be an object or null");
  const std::string where = source + ": rope_scaling";
  ConfigReader read(r, where);
  std::string type = read.string_or("rope_type", read.string_or("type", ""));
  if (type.empty()) fail(where, " has no \"rope_type\"");
  if (type == "default") return rope;
  if (type == "su") type = "longrope";  // Phi-3's first name for it
  const bool phi3 = c.family == Family::kPhi3;
  if (type != "linear" && type != "llama3" && type != "dynamic" && !(type == "longrope" && phi3))
    fail(where, " type \"", type, "\" is not supported (supported: linear, llama3, dynamic",
         phi3 ? ", longrope" : "; longrope for Phi3ForCausalLM", ")");
  if (type == "longrope") {
    rope.kind = RopeKind::kLongRope;
    // As transformers: the top-level original_max_position_embeddings when the config has one,
    // and then the attention factor from max_position_embeddings / it.
    rope.original_max_position = top_original ? top_original
                                              : read.positive_or("original_max_position_embeddings",
                                                                 c.max_position_embeddings);
    const double factor = top_original ? static_cast<double>(c.max_position_embeddings) /
                                             static_cast<double>(top_original)
                                       : read.number_or("factor", 1.0);
    const uint64_t half = c.rotary_dim / 2;
    rope.short_factor = positive_list(r, "short_factor", half, where);
    rope.long_factor = positive_list(r, "long_factor", half, where);
    if (read.has("attention_factor")) {
      rope.attention_factor = read.number_or("attention_factor", 1.0);
      if (!(rope.attention_factor > 0)) fail(where, ": \"attention_factor\" must be positive");
    } else {
      rope.attention_factor =
          factor <= 1.0
              ? 1.0
              : std::sqrt(1.0 + std::log(factor) /
                                    std::log(static_cast<double>(rope.original_max_position)));
    }
    for (const char* key :
         {"beta_fast", "beta_slow", "mrope_section", "low_freq_factor", "high_freq_factor"})
      if (r.contains(key) && !r[key].is_null())
        fail(where, ": \"", key, "\" is not part of the longrope scaling the engine implements");
    return rope;
  }
  rope.factor = read.number_or("factor", 0.0);
  if (!(rope.factor >= 1.0))
    fail(where, ": \"factor\" must be a number >= 1, got ", r.value("factor", json()).dump());
  if (type == "linear") {
    rope.kind = RopeKind::kLinear;
  } else if (type == "llama3") {
    rope.kind = RopeKind::kLlama3;
    rope.low_freq_factor = read.number_or("low_freq_factor", 0.0);
    rope.high_freq_factor = read.number_or("high_freq_factor", 0.0);
    rope.original_max_position = read.positive("original_max_position_embeddings");
    if (!(rope.low_freq_factor > 0) || !(rope.high_freq_factor > rope.low_freq_factor))
      fail(where, ": llama3 needs 0 < low_freq_factor < high_freq_factor");
  } else {
    rope.kind = RopeKind::kDynamic;
    rope.original_max_position =
        read.positive_or("original_max_position_embeddings", c.max_position_embeddings);
  }
  for (const char* key : {"attention_factor", "beta_fast", "beta_slow", "short_factor",
                          "long_factor", "mrope_section"})
    if (r.contains(key) && !r[key].is_null())
      fail(where, ": \"", key, "\" is not supported by the ", type, " rope the engine implements");
  return rope;
}

Activation parse_activation(const std::string& name, const std::string& source, const char* key) {
  if (name == "silu" || name == "swish") return Activation::kSilu;
  if (name == "gelu_pytorch_tanh" || name == "gelu_new") return Activation::kGeluTanh;
  if (name == "gelu") return Activation::kGelu;
  fail(source, ": ", key, " \"", name,
       "\" is not supported (supported: silu, gelu_pytorch_tanh, gelu_new, gelu)");
}

// Per family: the defaults of its transformers config class where they differ.
struct FamilyDefaults {
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  uint64_t head_dim = 0;  // 0: hidden_size / num_attention_heads
};

FamilyDefaults family_defaults(Family f) {
  FamilyDefaults d;
  switch (f) {
    case Family::kQwen3:
      d.head_dim = 128;
      break;
    case Family::kGemma2:
      d.head_dim = 256;
      d.tie_word_embeddings = true;
      break;
    case Family::kGemma3:
      d.head_dim = 256;
      d.tie_word_embeddings = true;
      d.rope_theta = 1000000.0;
      break;
    case Family::kOlmo2:
    case Family::kPhi3:
      d.rms_norm_eps = 1e-5;
      break;
    case Family::kMixtral:
      d.rms_norm_eps = 1e-5;
      d.rope_theta = 1000000.0;
      break;
    default:
      break;
  }
  return d;
}

// layer_types: "sliding_attention" layers get `window`, "full_attention" layers none.
void read_layer_types(const json& config, const std::string& source, uint64_t window,
                      std::vector<uint64_t>& sliding) {
  const json& types = config["layer_types"];
  if (!types.is_array()) fail(source, ": \"layer_types\" must be a list");
  if (types.size() != sliding.size())
    fail(source, ": layer_types has ", types.size(), " entries for ", sliding.size(), " layers");
  for (size_t i = 0; i < sliding.size(); ++i) {
    const std::string t = types[i].is_string() ? types[i].get<std::string>() : "";
    if (t == "sliding_attention") {
      if (window == 0)
        fail(source, ": layer_types[", i, "] is sliding_attention but there is no sliding_window");
      sliding[i] = window;
    } else if (t != "full_attention") {
      fail(source, ": layer_types[", i, "] is ", types[i].dump(),
           " (supported: full_attention, sliding_attention)");
    }
  }
}

}  // namespace

const std::vector<std::string>& supported_architectures() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& [name, info] : architectures()) n.push_back(name);
    return n;
  }();
  return names;
}

ModelConfig parse_model_config(const json& config, const std::string& source) {
  if (!config.is_object()) fail(source, ": not a JSON object");
  std::string supported;
  for (const auto& name : supported_architectures())
    supported += (supported.empty() ? "" : ", ") + name;
  if (!config.contains("architectures") || !config["architectures"].is_array() ||
      config["architectures"].empty() || !config["architectures"][0].is_string())
    fail(source, ": no \"architectures\" list naming the model class (supported: ", supported, ")");
  ModelConfig c;
  c.architecture = config["architectures"][0].get<std::string>();
  const auto arch = architectures().find(c.architecture);
  if (arch == architectures().end())
    fail(source, ": architecture ", c.architecture,
         " is not supported by the built-in engine (supported: ", supported, ")");
  c.family = arch->second.family;
  c.reward_head = arch->second.reward;
  c.is_reward_model = c.reward_head != RewardHead::kNone;
  const Family f = c.family;
  const bool gemma = f == Family::kGemma2 || f == Family::kGemma3;
  const FamilyDefaults defaults = family_defaults(f);

  ConfigReader read(config, source);
  if (gemma) {
    // Gemma's MLP reads hidden_activation; hidden_act, when there, is not used.
    c.activation = parse_activation(read.string_or("hidden_activation", "gelu_pytorch_tanh"),
                                    source, "hidden_activation");
  } else {
    c.activation = parse_activation(read.string_or("hidden_act", "silu"), source, "hidden_act");
  }
  if (config.contains("quantization_config"))
    fail(source,
         ": quantized checkpoints (quantization_config) are not supported; use BF16, F16 or F32 "
         "weights");

  c.hidden_size = read.positive("hidden_size");
  c.intermediate_size = read.positive("intermediate_size");
  c.num_layers = read.positive("num_hidden_layers");
  c.num_heads = read.positive("num_attention_heads");
  c.num_kv_heads = read.positive_or("num_key_value_heads", c.num_heads);
  if (c.num_heads % c.num_kv_heads != 0)
    fail(source, ": num_attention_heads (", c.num_heads,
         ") is not a multiple of num_key_value_heads (", c.num_kv_heads, ")");
  if (read.has("head_dim")) {
    c.head_dim = read.positive("head_dim");
  } else if (defaults.head_dim) {
    c.head_dim = defaults.head_dim;
  } else {
    if (c.hidden_size % c.num_heads != 0)
      fail(source, ": hidden_size (", c.hidden_size, ") is not a multiple of num_attention_heads (",
           c.num_heads, ") and there is no head_dim");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  c.rotary_dim = c.head_dim;
  if (read.has("partial_rotary_factor")) {
    const double factor = read.number_or("partial_rotary_factor", 1.0);
    if (f != Family::kPhi3 && factor != 1.0)
      fail(source, ": partial_rotary_factor != 1 is not supported for ", c.architecture,
           " (it is for Phi3ForCausalLM)");
    if (!(factor > 0 && factor <= 1))
      fail(source, ": partial_rotary_factor must be in (0, 1], got ", factor);
    c.rotary_dim = static_cast<uint64_t>(static_cast<double>(c.head_dim) * factor);
  }
  if (c.rotary_dim == 0 || c.rotary_dim % 2 != 0)
    fail(source, ": rope rotates ", c.rotary_dim, " dimensions of each head (head_dim ", c.head_dim,
         "); it must be a positive even number");
  c.vocab_size = read.positive("vocab_size");
  if (c.vocab_size > INT32_MAX) fail(source, ": vocab_size ", c.vocab_size, " is too large");
  c.max_position_embeddings = read.positive_or("max_position_embeddings", 2048);
  c.rms_norm_eps = read.number_or("rms_norm_eps", defaults.rms_norm_eps);
  if (!(c.rms_norm_eps > 0)) fail(source, ": rms_norm_eps must be positive");
  c.rope_theta = read.number_or("rope_theta", defaults.rope_theta);
  if (!(c.rope_theta > 1)) fail(source, ": rope_theta must be > 1");
  uint64_t top_original = 0;
  if (f == Family::kPhi3) top_original = read.positive_or("original_max_position_embeddings", 0);
  c.rope_scaling = parse_rope_scaling(config, source, c, top_original);
  c.tie_word_embeddings = read.boolean_or("tie_word_embeddings", defaults.tie_word_embeddings);
  c.attention_scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));

  switch (f) {
    case Family::kLlama:
      c.qkv_bias = c.o_bias = read.boolean_or("attention_bias", false);
      c.mlp_bias = read.boolean_or("mlp_bias", false);
      break;
    case Family::kMistral:
    case Family::kMixtral:
      if (read.boolean_or("attention_bias", false) || read.boolean_or("mlp_bias", false))
        fail(source, ": attention_bias/mlp_bias are not part of the ", c.architecture,
             " architecture");
      break;
    case Family::kQwen2:
      c.qkv_bias = true;
      break;
    case Family::kQwen3:
    case Family::kGemma2:
    case Family::kGemma3:
    case Family::kOlmo2:
      c.qkv_bias = c.o_bias = read.boolean_or("attention_bias", false);
      break;
    case Family::kPhi3:
      break;
    case Family::kInternLM2:
      c.qkv_bias = c.o_bias = read.boolean_or("bias", true);  // InternLM2Config's default
      break;
  }

  // The math each family adds to the Llama decoder.
  if (gemma) {
    c.norm_layout = NormLayout::kSandwich;
    c.norm_plus_one = true;
    c.embedding_scale = std::sqrt(static_cast<double>(c.hidden_size));
    const double scalar = read.number_or("query_pre_attn_scalar", 256.0);
    if (!(scalar > 0)) fail(source, ": query_pre_attn_scalar must be positive");
    c.attention_scale = 1.0 / std::sqrt(scalar);
    // Gemma2Config caps attention scores at 50 and logits at 30 unless told otherwise; Gemma 3
    // caps nothing by default. null turns a cap off.
    const bool two = f == Family::kGemma2;
    auto cap = [&](const char* key, double fallback) {
      if (!config.contains(key)) return fallback;
      if (config[key].is_null()) return 0.0;
      const double v = read.number_or(key, 0.0);
      if (!(v > 0)) fail(source, ": ", key, " must be a positive number or null");
      return v;
    };
    c.attn_softcap = cap("attn_logit_softcapping", two ? 50.0 : 0.0);
    c.final_softcap = cap("final_logit_softcapping", two ? 30.0 : 0.0);
    if (f == Family::kGemma3) {
      c.qk_norm = QkNorm::kPerHead;
      c.rope_local_theta = read.number_or("rope_local_base_freq", 10000.0);
      if (!(c.rope_local_theta > 1)) fail(source, ": rope_local_base_freq must be > 1");
    }
  } else {
    for (const char* key :
         {"query_pre_attn_scalar", "attn_logit_softcapping", "final_logit_softcapping"})
      if (read.has(key))
        fail(source, ": ", key, " is not part of the ", c.architecture, " architecture");
  }
  if (f == Family::kQwen3) c.qk_norm = QkNorm::kPerHead;
  if (f == Family::kOlmo2) {
    c.norm_layout = NormLayout::kPost;
    c.qk_norm = QkNorm::kWhole;
  }
  if (read.has("clip_qkv")) fail(source, ": clip_qkv is not supported");
  if (read.boolean_or("use_bidirectional_attention", false))
    fail(source, ": use_bidirectional_attention is not supported (the engine is causal)");
  if (f == Family::kPhi3) c.fused_qkv = c.fused_gate_up = true;
  if (f == Family::kMixtral) {
    c.num_experts = read.positive_or("num_local_experts", 8);
    c.experts_per_token = read.positive_or("num_experts_per_tok", 2);
    if (c.experts_per_token > c.num_experts)
      fail(source, ": num_experts_per_tok (", c.experts_per_token, ") exceeds num_local_experts (",
           c.num_experts, ")");
  } else if (read.has("num_local_experts") || read.has("num_experts")) {
    fail(source, ": mixture-of-experts fields are not part of the ", c.architecture,
         " architecture");
  }

  // Sliding-window attention, per layer.
  c.sliding_window.assign(c.num_layers, 0);
  c.local_rope.assign(c.num_layers, false);
  switch (f) {
    case Family::kMistral:
    case Family::kMixtral:
    case Family::kPhi3:
      if (read.has("sliding_window"))
        c.sliding_window.assign(c.num_layers, read.positive("sliding_window"));
      break;
    case Family::kQwen2:
    case Family::kQwen3:
      if (read.has("layer_types")) {
        read_layer_types(config, source, read.positive_or("sliding_window", 0), c.sliding_window);
      } else if (read.boolean_or("use_sliding_window", false) && read.has("sliding_window")) {
        // Layers from max_window_layers up slide; Qwen2Config and Qwen3Config default it to 28.
        const uint64_t window = read.positive("sliding_window");
        const uint64_t first = read.has("max_window_layers")
                                   ? static_cast<uint64_t>(JsonReader(source).get_int(
                                         config, "", "max_window_layers", 0, INT64_MAX))
                                   : 28;
        for (uint64_t i = first; i < c.num_layers; ++i) c.sliding_window[i] = window;
      }
      break;
    case Family::kGemma2:
    case Family::kGemma3: {
      const uint64_t window = read.positive_or("sliding_window", 4096);
      if (read.has("layer_types")) {
        read_layer_types(config, source, window, c.sliding_window);
      } else if (f == Family::kGemma2) {
        for (uint64_t i = 0; i < c.num_layers; i += 2) c.sliding_window[i] = window;
      } else {
        // Every pattern-th layer is global, the others slide (Gemma3TextConfig).
        const uint64_t pattern = read.positive_or("sliding_window_pattern", 6);
        for (uint64_t i = 0; i < c.num_layers; ++i)
          if ((i + 1) % pattern != 0) c.sliding_window[i] = window;
      }
      if (f == Family::kGemma3)
        for (uint64_t i = 0; i < c.num_layers; ++i) c.local_rope[i] = c.sliding_window[i] != 0;
      break;
    }
    default:
      if (read.has("sliding_window") || read.has("layer_types"))
        fail(source, ": sliding-window attention is not part of the ", c.architecture,
             " architecture");
      break;
  }

  if (c.is_reward_model) {
    if (c.reward_head == RewardHead::kValue) {
      c.num_labels = 1;  // v_head: one value
      if (!read.has("reward_token_id"))
        fail(source, ": ", c.architecture,
             " needs \"reward_token_id\", the token its get_score appends before reading");
      const auto ids = token_ids(config["reward_token_id"], source, "reward_token_id");
      if (ids.size() != 1 || static_cast<uint64_t>(ids[0]) >= c.vocab_size)
        fail(source, ": reward_token_id must be one token id below vocab_size ", c.vocab_size);
      c.reward_token_id = ids[0];
    } else if (read.has("num_labels")) {
      c.num_labels = read.positive("num_labels");
    } else if (config.contains("id2label") && config["id2label"].is_object()) {
      c.num_labels = config["id2label"].size();
    } else {
      c.num_labels = 2;  // transformers' default
    }
    if (c.num_labels == 0) fail(source, ": id2label is empty");
  }
  if (config.contains("eos_token_id"))
    c.eos_token_ids = token_ids(config["eos_token_id"], source, "eos_token_id");
  if (config.contains("bos_token_id") && !config["bos_token_id"].is_null()) {
    auto ids = token_ids(config["bos_token_id"], source, "bos_token_id");
    if (ids.size() == 1) c.bos_token_id = ids[0];
  }
  if (config.contains("pad_token_id") && !config["pad_token_id"].is_null()) {
    auto ids = token_ids(config["pad_token_id"], source, "pad_token_id");
    if (ids.size() != 1) fail(source, ": \"pad_token_id\" must be one token id");
    c.pad_token_id = ids[0];
  }
  return c;
}

void merge_generation_config(ModelConfig& config, const json& generation_config,
                             const std::string& source) {
  if (!generation_config.is_object()) fail(source, ": not a JSON object");
  if (!generation_config.contains("eos_token_id")) return;
  for (int32_t id : token_ids(generation_config["eos_token_id"], source, "eos_token_id"))
    if (std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), id) ==
        config.eos_token_ids.end())
      config.eos_token_ids.push_back(id);
}

}  // namespace expo
