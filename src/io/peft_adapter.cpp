#include "io/peft_adapter.h"

#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"
#include "core/fs.h"
#include "io/hf_cache.h"

namespace expo {

namespace fs = std::filesystem;
using nlohmann::json;

uint64_t LoraModule::rows() const {
  const auto& as = a->info->shape;
  const auto& bs = b->info->shape;
  return transposed ? as[1] : bs[0];
}

uint64_t LoraModule::cols() const {
  const auto& as = a->info->shape;
  const auto& bs = b->info->shape;
  return transposed ? bs[0] : as[1];
}

namespace {

// A config field that must be absent, null, false or empty for expo to apply the adapter
// exactly, with why.
struct Unsupported {
  const char* field;
  const char* reason;
};
const Unsupported kUnsupported[] = {
    {"use_dora", "DoRA rescales each column by a learned magnitude; expo applies plain LoRA only"},
    {"lora_bias", "a LoRA bias (lora_B.bias) is not supported"},
    {"layer_replication", "layer replication changes the model's layers"},
    {"trainable_token_indices", "trainable tokens are not supported"},
    {"alora_invocation_tokens", "activated LoRA applies the adapter to part of a sequence only"},
    {"target_parameters", "LoRA on parameters (target_parameters) is not supported"},
    {"use_qalora", "QA-LoRA is not supported"},
};

bool is_set(const json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_array() || v.is_object() || v.is_string()) return !v.empty();
  return true;
}

// A positive number field of the config (r, lora_alpha, a pattern's value).
double positive_number(const json& v, const std::string& where, bool integer) {
  if (!v.is_number() || (integer && !v.is_number_integer()))
    fail(where, " is ", v.dump(), "; expected ", integer ? "a positive integer" : "a number");
  const double x = v.get<double>();
  if (!std::isfinite(x) || x <= 0 || (integer && x > 1e9))
    fail(where, " is ", v.dump(), "; expected ", integer ? "a positive integer" : "a number > 0");
  return x;
}

struct Pattern {
  std::string key;
  std::regex regex;
  double value;
};

const Pattern* match_pattern(const std::vector<Pattern>& patterns, const std::string& module) {
  for (const auto& p : patterns)
    if (std::regex_match(module, p.regex)) return &p;
  return nullptr;
}

std::string last_component(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  const auto slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

}  // namespace

std::optional<fs::path> PeftAdapter::find(const std::string& spec, const std::string& revision) {
  std::error_code ec;
  fs::path path(spec);
  if (fs::exists(path, ec)) {
    if (fs::is_directory(path, ec) && fs::exists(path / "adapter_config.json", ec)) return path;
    return std::nullopt;
  }
  if (!looks_like_repo_id(spec)) return std::nullopt;
  try {
    const fs::path snapshot = resolve_hf_snapshot(spec, revision);
    if (fs::exists(snapshot / "adapter_config.json", ec)) return snapshot;
  } catch (const Error&) {
    // Not in the cache: Checkpoint::open says so when the spec is opened as a model.
  }
  return std::nullopt;
}

PeftAdapter PeftAdapter::open(const std::string& spec, const std::string& revision) {
  const auto folder = find(spec, revision);
  if (!folder) fail(spec, ": not a PEFT adapter folder (no adapter_config.json)");
  PeftAdapter adapter;
  adapter.spec_ = spec;
  adapter.folder_ = *folder;
  const std::string file = adapter.config_path().string();

  json config;
  try {
    config = json::parse(read_text_file(adapter.config_path()));
  } catch (const json::exception& e) {
    fail(file, ": not valid JSON: ", e.what());
  }
  if (!config.is_object()) fail(file, ": not a JSON object");
  if (const auto it = config.find("peft_type"); it != config.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "LORA")
      fail(file, ": peft_type is ", it->dump(), "; expo applies LoRA adapters (\"LORA\") only");
  }
  for (const auto& u : kUnsupported)
    if (const auto it = config.find(u.field); it != config.end() && is_set(*it))
      fail(file, ": ", u.field, " is ", it->dump(), ": ", u.reason);
  for (const char* field : {"r", "lora_alpha"})
    if (!config.contains(field))
      fail(file, ": no \"", field, "\"; a LoRA config needs r and lora_alpha");
  const double r = positive_number(config["r"], file + ": r", true);
  const double lora_alpha = positive_number(config["lora_alpha"], file + ": lora_alpha", false);
  auto flag = [&](const char* field) {
    const auto it = config.find(field);
    if (it == config.end() || it->is_null()) return false;
    if (!it->is_boolean()) fail(file, ": ", field, " is ", it->dump(), "; expected true or false");
    return it->get<bool>();
  };
  const bool rslora = flag("use_rslora");
  const bool fan_in_fan_out = flag("fan_in_fan_out");
  // PEFT matches pattern keys in their insertion order; nlohmann's json sorts object keys, so
  // the order is recovered from the file's text with an ordered parse.
  const auto ordered = nlohmann::ordered_json::parse(read_text_file(adapter.config_path()));
  auto patterns_in_order = [&](const char* field, bool integer) {
    std::vector<Pattern> out;
    const auto it = ordered.find(field);
    if (it == ordered.end() || it->is_null()) return out;
    if (!it->is_object()) fail(file, ": ", field, " is ", it->dump(), "; expected an object");
    for (const auto& [key, value] : it->items()) {
      const std::string where = file + ": " + field + "[\"" + key + "\"]";
      Pattern p;
      p.key = key;
      p.value = positive_number(json::parse(value.dump()), where, integer);
      try {
        p.regex = std::regex("(.*\\.)?(" + key + ")", std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        fail(where, ": not a regular expression: ", e.what());
      }
      out.push_back(std::move(p));
    }
    return out;
  };
  const auto rank_pattern = patterns_in_order("rank_pattern", true);
  const auto alpha_pattern = patterns_in_order("alpha_pattern", false);
  if (const auto it = config.find("base_model_name_or_path"); it != config.end()) {
    if (it->is_string())
      adapter.base_model_ = it->get<std::string>();
    else if (!it->is_null())
      fail(file, ": base_model_name_or_path is ", it->dump(), "; expected a string");
  }

  const fs::path weights_path = adapter.folder_ / "adapter_model.safetensors";
  if (!fs::exists(weights_path)) {
    if (fs::exists(adapter.folder_ / "adapter_model.bin"))
      fail(adapter.folder_.string(),
           ": the adapter's weights are adapter_model.bin (a PyTorch pickle); expo reads "
           "adapter_model.safetensors only (save the adapter with safe_serialization=True)");
    fail(adapter.folder_.string(), ": no adapter_model.safetensors beside adapter_config.json");
  }
  adapter.weights_ = std::make_shared<const Checkpoint>(Checkpoint::open(weights_path.string()));
  const std::string weights_file = weights_path.string();

  // Group the keys by module.
  struct Parts {
    const CheckpointTensor* a = nullptr;
    const CheckpointTensor* b = nullptr;
    bool embedding = false;
  };
  std::map<std::string, Parts> parts;
  std::vector<std::string> order;
  const std::string prefix = kPeftKeyPrefix;
  for (const auto& t : adapter.weights_->tensors()) {
    const std::string& key = t.name();
    if (!key.starts_with(prefix))
      fail(weights_file, ": tensor '", key, "' does not start with '", prefix,
           "', as every key of a PEFT LoRA adapter does");
    const std::string name = key.substr(prefix.size());
    struct Suffix {
      const char* text;
      bool is_a, embedding;
    };
    static const Suffix kSuffixes[] = {{".lora_A.weight", true, false},
                                       {".lora_B.weight", false, false},
                                       {".lora_embedding_A", true, true},
                                       {".lora_embedding_B", false, true}};
    bool lora = false;
    for (const auto& s : kSuffixes) {
      if (!name.ends_with(s.text)) continue;
      const std::string module = name.substr(0, name.size() - std::strlen(s.text));
      if (module.empty()) fail(weights_file, ": tensor '", key, "' names no module");
      auto [it, fresh] = parts.try_emplace(module);
      if (fresh) order.push_back(module);
      const CheckpointTensor*& slot = s.is_a ? it->second.a : it->second.b;
      if (slot)
        fail(weights_file, ": module '", module, "' has two ", s.is_a ? "A" : "B", " factors");
      if ((it->second.a || it->second.b) && it->second.embedding != s.embedding)
        fail(weights_file, ": module '", module, "' mixes lora_A/lora_B with lora_embedding_A/B");
      slot = &t;
      it->second.embedding = s.embedding;
      lora = true;
      break;
    }
    if (lora) continue;
    if (name.find("lora_magnitude_vector") != std::string::npos)
      fail(weights_file, ": tensor '", key,
           "' is a DoRA magnitude vector; expo applies plain LoRA only");
    if (name.find(".lora_") != std::string::npos || name.starts_with("lora_"))
      fail(weights_file, ": tensor '", key,
           "' is not a LoRA key expo knows (lora_A.weight, lora_B.weight, lora_embedding_A, "
           "lora_embedding_B)");
    adapter.full_.push_back({name, &t});
  }

  for (const auto& module : order) {
    const Parts& p = parts.at(module);
    if (!p.a || !p.b)
      fail(weights_file, ": module '", module, "' has lora_", p.a ? "A" : "B", " but no lora_",
           p.a ? "B" : "A");
    LoraModule m;
    m.module = module;
    m.target = module + ".weight";
    m.a = p.a;
    m.b = p.b;
    m.embedding = p.embedding;
    m.transposed = p.embedding || fan_in_fan_out;
    for (const CheckpointTensor* t : {p.a, p.b}) {
      if (t->info->shape.size() != 2)
        fail(weights_file, ": tensor '", t->name(), "' has shape ", t->info->shape_string(),
             "; a LoRA factor is a matrix");
      if (!is_arithmetic_float(t->info->dtype))
        fail(weights_file, ": tensor '", t->name(), "' is ", dtype_name(t->info->dtype),
             "; LoRA factors must be floating point (bf16, f16, f32, f64)");
    }
    const uint64_t rank_a = p.a->info->shape[0], rank_b = p.b->info->shape[1];
    if (rank_a != rank_b)
      fail(weights_file, ": module '", module, "': ", p.a->name(), " ", p.a->info->shape_string(),
           " has rank ", rank_a, " but ", p.b->name(), " ", p.b->info->shape_string(), " has rank ",
           rank_b);
    const Pattern* rp = match_pattern(rank_pattern, module);
    const Pattern* ap = match_pattern(alpha_pattern, module);
    const double rank = rp ? rp->value : r;
    if (double(rank_a) != rank)
      fail(weights_file, ": module '", module, "' has rank ", rank_a, " (", p.a->name(), " ",
           p.a->info->shape_string(), ") but ", file, " gives r ", rank,
           rp ? " (rank_pattern \"" + rp->key + "\")" : std::string(" (r)"));
    m.rank = rank_a;
    m.lora_alpha = ap ? ap->value : lora_alpha;
    m.scale = rslora ? m.lora_alpha / std::sqrt(double(m.rank)) : m.lora_alpha / double(m.rank);
    adapter.modules_.push_back(std::move(m));
  }
  if (adapter.modules_.empty() && adapter.full_.empty())
    fail(weights_file, ": the adapter holds no tensors");
  return adapter;
}

std::string base_model_mismatch(const PeftAdapter& adapter, const std::string& model_spec,
                                const std::string& option) {
  const std::string& named = adapter.base_model_name();
  if (named.empty()) return "";
  std::string ours = model_spec;
  std::error_code ec;
  if (fs::exists(model_spec, ec)) ours = canonical_or_absolute(model_spec).string();
  if (last_component(named) == last_component(ours)) return "";
  return adapter.config_path().string() + ": base_model_name_or_path is '" + named + "', but " +
         option + " is " + model_spec + "; check that the adapter was trained on this model";
}

}  // namespace expo
