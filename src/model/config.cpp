#include "model/config.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "core/json_reader.h"

namespace expo {

namespace {

using nlohmann::json;

struct ArchInfo {
  Family family;
  bool reward;
};

const std::map<std::string, ArchInfo>& architectures() {
  static const std::map<std::string, ArchInfo> table{
      {"LlamaForCausalLM", {Family::kLlama, false}},
      {"MistralForCausalLM", {Family::kMistral, false}},
      {"Qwen2ForCausalLM", {Family::kQwen2, false}},
      {"InternLM2ForCausalLM", {Family::kInternLM2, false}},
      {"LlamaForSequenceClassification", {Family::kLlama, true}},
      {"MistralForSequenceClassification", {Family::kMistral, true}},
      {"Qwen2ForSequenceClassification", {Family::kQwen2, true}},
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

RopeScaling parse_rope_scaling(const json& config, const std::string& source,
                               uint64_t max_positions) {
  RopeScaling rope;
  if (!config.contains("rope_scaling") || config["rope_scaling"].is_null()) return rope;
  const json& r = config["rope_scaling"];
  if (!r.is_object()) fail(source, ": \"rope_scaling\" must be an object or null");
  const std::string where = source + ": rope_scaling";
  ConfigReader read(r, where);
  std::string type = read.string_or("rope_type", read.string_or("type", ""));
  if (type.empty()) fail(where, " has no \"rope_type\"");
  if (type == "default") return rope;
  if (type != "linear" && type != "llama3" && type != "dynamic")
    fail(where, " type \"", type, "\" is not supported (supported: linear, llama3, dynamic)");
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
        read.positive_or("original_max_position_embeddings", max_positions);
  }
  for (const char* key : {"attention_factor", "beta_fast", "beta_slow", "short_factor",
                          "long_factor", "mrope_section"})
    if (r.contains(key) && !r[key].is_null())
      fail(where, ": \"", key, "\" is not supported by the ", type, " rope the engine implements");
  return rope;
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
  c.is_reward_model = arch->second.reward;

  ConfigReader read(config, source);
  const std::string act = read.string_or("hidden_act", "silu");
  if (act != "silu") fail(source, ": hidden_act \"", act, "\" is not supported (supported: silu)");
  if (config.contains("quantization_config"))
    fail(source,
         ": quantized checkpoints (quantization_config) are not supported; use BF16, F16 or F32 "
         "weights");
  // pretraining_tp only changes how transformers splits its matmuls; the math is the same.
  if (read.has("partial_rotary_factor") && read.number_or("partial_rotary_factor", 1.0) != 1.0)
    fail(source, ": partial_rotary_factor != 1 is not supported");

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
  } else {
    if (c.hidden_size % c.num_heads != 0)
      fail(source, ": hidden_size (", c.hidden_size, ") is not a multiple of num_attention_heads (",
           c.num_heads, ") and there is no head_dim");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0)
    fail(source, ": head_dim ", c.head_dim, " must be even for rotary embeddings");
  c.vocab_size = read.positive("vocab_size");
  if (c.vocab_size > INT32_MAX) fail(source, ": vocab_size ", c.vocab_size, " is too large");
  c.max_position_embeddings = read.positive_or("max_position_embeddings", 2048);
  c.rms_norm_eps = read.number_or("rms_norm_eps", 1e-6);
  if (!(c.rms_norm_eps > 0)) fail(source, ": rms_norm_eps must be positive");
  c.rope_theta = read.number_or("rope_theta", 10000.0);
  if (!(c.rope_theta > 1)) fail(source, ": rope_theta must be > 1");
  c.rope_scaling = parse_rope_scaling(config, source, c.max_position_embeddings);
  c.tie_word_embeddings = read.boolean_or("tie_word_embeddings", false);

  switch (c.family) {
    case Family::kLlama:
      c.qkv_bias = c.o_bias = read.boolean_or("attention_bias", false);
      c.mlp_bias = read.boolean_or("mlp_bias", false);
      break;
    case Family::kMistral:
      if (read.boolean_or("attention_bias", false) || read.boolean_or("mlp_bias", false))
        fail(source, ": attention_bias/mlp_bias are not part of the Mistral architecture");
      break;
    case Family::kQwen2:
      c.qkv_bias = true;
      break;
    case Family::kInternLM2:
      c.qkv_bias = c.o_bias = read.boolean_or("bias", true);  // InternLM2Config's default
      break;
  }

  // Sliding-window attention, per layer.
  c.sliding_window.assign(c.num_layers, 0);
  if (c.family == Family::kMistral && read.has("sliding_window")) {
    c.sliding_window.assign(c.num_layers, read.positive("sliding_window"));
  } else if (c.family == Family::kQwen2) {
    if (config.contains("layer_types") && config["layer_types"].is_array()) {
      const json& types = config["layer_types"];
      if (types.size() != c.num_layers)
        fail(source, ": layer_types has ", types.size(), " entries for ", c.num_layers, " layers");
      for (size_t i = 0; i < c.num_layers; ++i) {
        const std::string t = types[i].is_string() ? types[i].get<std::string>() : "";
        if (t == "sliding_attention") {
          c.sliding_window[i] = read.positive("sliding_window");
        } else if (t != "full_attention") {
          fail(source, ": layer_types[", i, "] is ", types[i].dump(),
               " (supported: full_attention, sliding_attention)");
        }
      }
    } else if (read.boolean_or("use_sliding_window", false)) {
      const uint64_t window = read.positive("sliding_window");
      const uint64_t first = read.has("max_window_layers") ? read.positive("max_window_layers") : 0;
      for (uint64_t i = first; i < c.num_layers; ++i) c.sliding_window[i] = window;
    }
  } else if (c.family == Family::kLlama && read.has("sliding_window")) {
    fail(source, ": sliding_window is not part of the Llama architecture");
  }

  if (c.is_reward_model) {
    if (read.has("num_labels")) {
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
