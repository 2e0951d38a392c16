#include "gguf/gguf_checkpoint.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "gguf/gguf_arch.h"
#include "gguf/gguf_tokenizer.h"
#include "io/ggml_type.h"
#include "io/mapped_file.h"
#include "model/config.h"
#include "model/weights.h"

namespace expo {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The metadata keys of one architecture ("llama.block_count"), read with errors that name the
// file and the key.
class ArchKeys {
 public:
  ArchKeys(const GgufMetadata& m, std::string arch) : m_(m), a_(std::move(arch) + ".") {}

  uint64_t count(const std::string& key) const { return m_.get_count(a_ + key); }
  std::optional<uint64_t> find_count(const std::string& key) const {
    return m_.find_count(a_ + key);
  }
  std::optional<double> find_float(const std::string& key) const {
    const GgufValue* v = m_.find(a_ + key);
    if (!v) return std::nullopt;
    if (v->holds<float>()) return v->as<float>();
    if (v->holds<double>()) return v->as<double>();
    fail(m_.label(), ": metadata key ", a_ + key, " is ", v->type_name(), ", expected float32");
  }
  double get_float(const std::string& key) const {
    const auto v = find_float(key);
    if (!v) fail(m_.label(), ": metadata key ", a_ + key, " is missing");
    return *v;
  }
  std::optional<std::string> find_string(const std::string& key) const {
    return m_.find_string(a_ + key);
  }

 private:
  const GgufMetadata& m_;
  std::string a_;
};

// A 1-D F32 tensor's values (rope factors), checked.
std::vector<double> f32_values(const GgufContents& g, const uint8_t* data, const GgufTensorInfo& t,
                               const std::string& label) {
  if (t.type != GgmlType::F32 || t.dims.size() != 1)
    fail(label, ": tensor ", t.name, " is ", ggml_type_name(t.type), " ", t.dims_string(),
         "; expected a 1-D F32 tensor");
  std::vector<double> out(t.dims[0]);
  const uint8_t* p = data + g.data_start + t.offset;
  for (size_t i = 0; i < out.size(); ++i) {
    float v;
    std::memcpy(&v, p + 4 * i, 4);
    out[i] = v;
  }
  return out;
}

// The types the engine multiplies by (not F64).
std::optional<DType> engine_dtype(GgmlType t) {
  const auto dtype = dtype_of_ggml(t);
  return dtype == DType::F64 ? std::nullopt : dtype;
}

// A folder under the system's temporary directory, removed with everything in it when the last
// checkpoint holding it goes.
class TempFolder {
 public:
  TempFolder() {
    std::string pattern = (fs::temp_directory_path() / "expo-gguf-XXXXXX").string();
    if (!::mkdtemp(pattern.data()))
      fail("cannot create a temporary folder in ", fs::temp_directory_path().string(), ": ",
           std::strerror(errno));
    path_ = pattern;
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Bytes in memory, mapped as a file (memfd) so that they read like any checkpoint's: through
// the map, and with pread for extrapolation on load.
std::unique_ptr<MappedFile> memory_file(const std::vector<uint8_t>& bytes,
                                        const std::string& name) {
  const int fd = ::memfd_create("expo-gguf", MFD_CLOEXEC);
  if (fd < 0) fail(name, ": cannot create a memory file: ", std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      fail(name, ": cannot fill a memory file: ", std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  std::unique_ptr<MappedFile> file;
  try {
    file = std::make_unique<MappedFile>("/proc/self/fd/" + std::to_string(fd), name);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return file;
}

}  // namespace

GgufHfConfig gguf_hf_config(const GgufContents& g, const uint8_t* data, const std::string& label) {
  const GgufMetadata& m = g.metadata;
  const std::string arch = m.get_string("general.architecture");
  const ArchKeys k(m, arch);
  auto has = [&](const std::string& name) { return g.find_tensor(name) != nullptr; };
  GgufHfConfig out;
  json& c = out.config;

  static const std::set<std::string> kArchs = {"llama",  "qwen2", "qwen3", "gemma2",
                                               "gemma3", "olmo2", "phi3",  "internlm2"};
  if (!kArchs.count(arch))
    fail(label, ": GGUF architecture '", arch,
         "'; the engine reads llama, qwen2, qwen3, gemma2, gemma3, olmo2, phi3 and internlm2");
  const GgufTensorInfo* embd = g.find_tensor("token_embd.weight");
  if (!embd || embd->dims.size() != 2)
    fail(label, ": no 2-D tensor token_embd.weight (the token embedding)");

  const uint64_t H = k.count("embedding_length");
  const uint64_t heads = k.count("attention.head_count");
  if (heads == 0) fail(label, ": ", arch, ".attention.head_count is 0");
  const uint64_t D = k.find_count("attention.key_length").value_or(H / heads);
  if (const auto v = k.find_count("attention.value_length"); v && *v != D)
    fail(label, ": ", arch, ".attention.value_length ", *v, " differs from key_length ", D,
         "; the engine's attention has one head size");
  const uint64_t rope_dim = k.find_count("rope.dimension_count").value_or(D);
  c["hidden_size"] = H;
  c["intermediate_size"] = k.count("feed_forward_length");
  c["num_hidden_layers"] = k.count("block_count");
  c["num_attention_heads"] = heads;
  c["num_key_value_heads"] = k.find_count("attention.head_count_kv").value_or(heads);
  c["head_dim"] = D;
  c["vocab_size"] = embd->dims[1];
  c["max_position_embeddings"] = k.count("context_length");
  c["rms_norm_eps"] = k.get_float("attention.layer_norm_rms_epsilon");
  c["rope_theta"] = k.find_float("rope.freq_base").value_or(10000.0);
  c["tie_word_embeddings"] = !has("output.weight");
  if (const auto bos = m.find_count("tokenizer.ggml.bos_token_id")) c["bos_token_id"] = *bos;
  json eos = json::array();
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"})
    if (const auto id = m.find_count(key);
        id && std::find(eos.begin(), eos.end(), *id) == eos.end())
      eos.push_back(*id);
  if (!eos.empty()) c["eos_token_id"] = eos;
  if (const auto pad = m.find_count("tokenizer.ggml.padding_token_id")) c["pad_token_id"] = *pad;

  const std::string scaling = k.find_string("rope.scaling.type").value_or("none");
  if (scaling == "linear") {
    c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", k.get_float("rope.scaling.factor")}};
  } else if (scaling != "none" && scaling != "") {
    fail(label, ": ", arch, ".rope.scaling.type is '", scaling,
         "'; the engine reads linear rope scaling from GGUF (and Llama 3's rope_freqs, "
         "Phi-3's rope factors)");
  }
  if (rope_dim != D && arch != "phi3")
    fail(label, ": ", arch, ".rope.dimension_count ", rope_dim, " differs from the head size ", D,
         "; partial rope is read for phi3 only");

  const bool q_bias = has("blk.0.attn_q.bias"), o_bias = has("blk.0.attn_output.bias");
  const bool gemma = arch == "gemma2" || arch == "gemma3";
  if (arch == "llama" || arch == "internlm2") {
    if (const auto experts = k.find_count("expert_count"); experts && *experts > 0) {
      c["architectures"] = {"MixtralForCausalLM"};
      c["num_local_experts"] = *experts;
      c["num_experts_per_tok"] = k.count("expert_used_count");
      c["sliding_window"] = nullptr;
    } else {
      // InternLM2 computes what Llama does; its GGUF has q, k and v apart, in llama's names.
      c["architectures"] = {"LlamaForCausalLM"};
      if (q_bias != o_bias)
        fail(label, ": blk.0.attn_q.bias and blk.0.attn_output.bias: one without the other; ",
             "the engine's Llama has attention biases on all four projections or none");
      c["attention_bias"] = q_bias;
      c["mlp_bias"] = has("blk.0.ffn_gate.bias");
    }
    if (const GgufTensorInfo* f = g.find_tensor("rope_freqs.weight"))
      out.form.rope_freq_factors = f32_values(g, data, *f, label);
  } else if (arch == "qwen2" || arch == "qwen3") {
    c["architectures"] = {arch == "qwen2" ? "Qwen2ForCausalLM" : "Qwen3ForCausalLM"};
    c["use_sliding_window"] = false;
  } else if (gemma) {
    c["architectures"] = {arch == "gemma2" ? "Gemma2ForCausalLM" : "Gemma3ForCausalLM"};
    c["hidden_activation"] = "gelu_pytorch_tanh";
    c["query_pre_attn_scalar"] = D;
    // llama.cpp's defaults where a key is absent.
    c["sliding_window"] = k.find_count("attention.sliding_window").value_or(4096);
    if (arch == "gemma2") {
      c["attn_logit_softcapping"] = k.find_float("attn_logit_softcapping").value_or(50.0);
      c["final_logit_softcapping"] = k.find_float("final_logit_softcapping").value_or(30.0);
    } else {
      c["attn_logit_softcapping"] = nullptr;
      const auto cap = k.find_float("final_logit_softcapping");
      c["final_logit_softcapping"] = cap ? json(*cap) : json(nullptr);
      c["sliding_window_pattern"] = k.find_count("attention.sliding_window_pattern").value_or(6);
      c["rope_local_base_freq"] = 10000.0;
    }
  } else if (arch == "olmo2") {
    c["architectures"] = {"Olmo2ForCausalLM"};
  } else if (arch == "phi3") {
    c["architectures"] = {"Phi3ForCausalLM"};
    if (rope_dim != D) c["partial_rotary_factor"] = static_cast<double>(rope_dim) / D;
    const auto window = k.find_count("attention.sliding_window");
    c["sliding_window"] = window ? json(*window) : json(nullptr);
    const GgufTensorInfo* lf = g.find_tensor("rope_factors_long.weight");
    const GgufTensorInfo* sf = g.find_tensor("rope_factors_short.weight");
    if ((lf != nullptr) != (sf != nullptr))
      fail(label,
           ": rope_factors_long.weight and rope_factors_short.weight: one without the other");
    if (lf) {
      json rope = {{"type", "longrope"},
                   {"long_factor", f32_values(g, data, *lf, label)},
                   {"short_factor", f32_values(g, data, *sf, label)}};
      if (const auto f = k.find_float("rope.scaling.attn_factor")) rope["attention_factor"] = *f;
      c["rope_scaling"] = rope;
      c["original_max_position_embeddings"] = k.count("rope.scaling.original_context_length");
    }
  }
  if (q_bias && arch != "llama" && arch != "internlm2" && arch != "qwen2")
    fail(label, ": blk.0.attn_q.bias: llama.cpp's ", arch, " graph has no attention biases");
  return out;
}

Checkpoint open_gguf_checkpoint(const std::string& spec) {
  auto file = std::make_unique<MappedFile>(spec);
  const GgufContents g = parse_gguf(file->data(), file->size(), file->size(), spec);
  GgufHfConfig hf = gguf_hf_config(g, file->data(), spec);
  const ModelConfig config =
      parse_model_config(hf.config, spec + " (its GGUF metadata as config.json)");
  const GgufModelRecipe recipe = gguf_recipe(config, model_tensor_names(config));

  // The recipes read backwards: each GGUF tensor as the Hugging Face tensors it was made of.
  SafetensorsHeader view;  // views of the file's data section
  view.data_start = g.data_start;
  SafetensorsHeader moved;  // rows put back in transformers' order, in memory
  std::vector<uint8_t> moved_bytes;
  std::set<std::string> used;
  if (!hf.form.rope_freq_factors.empty()) used.insert("rope_freqs.weight");
  for (const GgufTensorRecipe& r : recipe.tensors) {
    used.insert(r.name);
    if (r.sources.empty()) continue;  // computed (rope factors): read into the config
    const GgufTensorInfo* t = g.find_tensor(r.name);
    if (!t)
      fail(spec, ": no tensor ", r.name, ", which a ", recipe.arch, " model of this shape has");
    TensorInfo want;
    want.shape = r.shape;
    if (t->shape() != r.shape)
      fail(spec, ": tensor ", r.name, " has shape ", t->shape_string(), "; the metadata implies ",
           want.shape_string());
    const auto dtype = engine_dtype(t->type);
    if (!dtype || (*dtype == DType::Q8_0 && r.shape.size() == 1))
      fail(spec, ": tensor ", r.name, " is ", ggml_type_name(t->type),
           "; the engine reads F32, F16, BF16 and Q8_0 GGUF tensors (Q8_0 for matrices)");
    if (r.add != 0) {
      if (r.add != 1) fail("internal: GGUF recipe adds ", r.add, " to ", r.name);
      hf.form.norms_hold_one = true;
    }
    const uint64_t cols = r.shape.back();
    const uint64_t row_bytes = dtype_bytes(*dtype, r.shape.size() == 1 ? 1 : cols);
    if (r.sources.size() > 1) {  // Mixtral's experts, stacked: one view per expert
      const uint64_t slice = t->num_bytes / r.sources.size();
      for (size_t e = 0; e < r.sources.size(); ++e) {
        TensorInfo& info = view.tensors.emplace_back();
        info.name = r.sources[e];
        info.dtype = *dtype;
        info.shape = {r.shape[1], r.shape[2]};
        info.begin = t->offset + e * slice;
        info.end = info.begin + slice;
      }
    } else if (!r.rows.empty()) {  // llama.cpp's rope order: row i of the GGUF is row rows[i]
      const uint64_t n = r.rows.size();
      if (n * row_bytes != t->num_bytes) fail("internal: GGUF row order of ", r.name);
      std::vector<bool> seen(n, false);
      const uint64_t begin = moved_bytes.size();
      moved_bytes.resize(begin + t->num_bytes);
      const uint8_t* src = file->data() + g.data_start + t->offset;
      for (uint64_t i = 0; i < n; ++i) {
        const uint64_t to = r.rows[i];
        if (to >= n || seen[to]) fail("internal: GGUF row order of ", r.name, " is no permutation");
        seen[to] = true;
        std::memcpy(moved_bytes.data() + begin + to * row_bytes, src + i * row_bytes, row_bytes);
      }
      TensorInfo& info = moved.tensors.emplace_back();
      info.name = r.sources[0];
      info.dtype = *dtype;
      info.shape = r.shape;
      info.begin = begin;
      info.end = begin + t->num_bytes;
    } else {
      TensorInfo& info = view.tensors.emplace_back();
      info.name = r.sources[0];
      info.dtype = *dtype;
      info.shape = r.shape;
      info.begin = t->offset;
      info.end = t->offset + t->num_bytes;
    }
  }
  for (const GgufTensorInfo& t : g.tensors)
    if (!used.count(t.name))
      fail(spec, ": tensor ", t.name, " is not part of the ", config.architecture,
           " the metadata describes (", recipe.arch, ")");

  // The config and tokenizer files, where the rest of expo looks for them.
  auto folder = std::make_shared<TempFolder>();
  const GgufTokenizerFiles tok = gguf_tokenizer_files(g.metadata, spec);
  write_text_file(folder->path() / "config.json", hf.config.dump(2) + "\n");
  write_text_file(folder->path() / "tokenizer.json", tok.tokenizer_json);
  write_text_file(folder->path() / "tokenizer_config.json", tok.tokenizer_config_json);
  std::error_code ec;
  const fs::path resolved = fs::weakly_canonical(fs::absolute(spec), ec);
  write_text_file(folder->path() / ".expo-gguf-source", ec ? spec : resolved.string());

  std::vector<std::unique_ptr<SafetensorsFile>> files;
  files.push_back(std::make_unique<SafetensorsFile>(std::move(file), std::move(view)));
  if (!moved.tensors.empty())
    files.push_back(std::make_unique<SafetensorsFile>(
        memory_file(moved_bytes, spec + " (q and k rows in transformers' order)"),
        std::move(moved)));
  return Checkpoint::from_parts(spec, folder->path(), std::move(files), std::move(hf.config),
                                std::move(hf.form), folder);
}

GgufTokenizerFolder gguf_tokenizer_folder(const std::string& path) {
  const MappedFile file(path);
  const GgufContents g = parse_gguf(file.data(), file.size(), file.size(), path);
  const GgufTokenizerFiles tok = gguf_tokenizer_files(g.metadata, path);
  auto folder = std::make_shared<TempFolder>();
  write_text_file(folder->path() / "tokenizer.json", tok.tokenizer_json);
  write_text_file(folder->path() / "tokenizer_config.json", tok.tokenizer_config_json);
  return {folder->path(), folder};
}

void register_gguf_checkpoints() { set_gguf_checkpoint_opener(&open_gguf_checkpoint); }

}  // namespace expo
