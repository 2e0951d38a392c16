#include "model/weights.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "core/error.h"
#include "core/units.h"
#include "merge/extrapolate_tensor.h"
#include "merge/plan.h"

namespace expo {

namespace {

// One tensor the architecture needs: its name and shape, and where it goes (a matrix view or
// a float32 vector).
struct WeightSpec {
  std::string name;
  std::vector<uint64_t> shape;
  WeightView* matrix = nullptr;
  std::vector<float>* vector = nullptr;
};

std::vector<WeightSpec> for_each_weight(const ModelConfig& c, ModelWeights& w) {
  std::vector<WeightSpec> specs;
  auto matrix = [&](std::string name, uint64_t rows, uint64_t cols, WeightView& view) {
    specs.push_back({std::move(name), {rows, cols}, &view, nullptr});
  };
  auto vector = [&](std::string name, uint64_t size, std::vector<float>& v) {
    specs.push_back({std::move(name), {size}, nullptr, &v});
  };
  const uint64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  w.layers.resize(c.num_layers);
  const bool internlm = c.family == Family::kInternLM2;
  matrix(internlm ? "model.tok_embeddings.weight" : "model.embed_tokens.weight", V, H, w.embed);
  for (uint64_t i = 0; i < c.num_layers; ++i) {
    LayerWeights& L = w.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    if (internlm) {
      vector(p + "attention_norm.weight", H, L.attn_norm);
      matrix(p + "attention.wqkv.weight", c.q_dim() + 2 * c.kv_dim(), H, L.qkv);
      if (c.qkv_bias) vector(p + "attention.wqkv.bias", c.q_dim() + 2 * c.kv_dim(), L.qkv_bias);
      matrix(p + "attention.wo.weight", H, c.q_dim(), L.o);
      if (c.o_bias) vector(p + "attention.wo.bias", H, L.o_bias);
      vector(p + "ffn_norm.weight", H, L.ffn_norm);
      matrix(p + "feed_forward.w1.weight", I, H, L.gate);
      matrix(p + "feed_forward.w3.weight", I, H, L.up);
      matrix(p + "feed_forward.w2.weight", H, I, L.down);
      continue;
    }
    vector(p + "input_layernorm.weight", H, L.attn_norm);
    matrix(p + "self_attn.q_proj.weight", c.q_dim(), H, L.q);
    matrix(p + "self_attn.k_proj.weight", c.kv_dim(), H, L.k);
    matrix(p + "self_attn.v_proj.weight", c.kv_dim(), H, L.v);
    if (c.qkv_bias) {
      vector(p + "self_attn.q_proj.bias", c.q_dim(), L.q_bias);
      vector(p + "self_attn.k_proj.bias", c.kv_dim(), L.k_bias);
      vector(p + "self_attn.v_proj.bias", c.kv_dim(), L.v_bias);
    }
    matrix(p + "self_attn.o_proj.weight", H, c.q_dim(), L.o);
    if (c.o_bias) vector(p + "self_attn.o_proj.bias", H, L.o_bias);
    vector(p + "post_attention_layernorm.weight", H, L.ffn_norm);
    matrix(p + "mlp.gate_proj.weight", I, H, L.gate);
    matrix(p + "mlp.up_proj.weight", I, H, L.up);
    matrix(p + "mlp.down_proj.weight", H, I, L.down);
    if (c.mlp_bias) {
      vector(p + "mlp.gate_proj.bias", I, L.gate_bias);
      vector(p + "mlp.up_proj.bias", I, L.up_bias);
      vector(p + "mlp.down_proj.bias", H, L.down_bias);
    }
  }
  vector("model.norm.weight", H, w.final_norm);
  if (c.is_reward_model) {
    matrix("score.weight", c.num_labels, H, w.head);
  } else if (!c.tie_word_embeddings) {
    matrix(internlm ? "output.weight" : "lm_head.weight", V, H, w.head);
  }
  return specs;
}

bool is_engine_dtype(DType d) { return d == DType::F32 || d == DType::BF16 || d == DType::F16; }

// Tensors a checkpoint may carry that the engine does not use.
bool is_ignorable(const std::string& name, const ModelConfig& c) {
  if (name.size() > 23 && name.ends_with(".rotary_emb.inv_freq")) return true;
  if (c.tie_word_embeddings && (name == "lm_head.weight" || name == "output.weight")) return true;
  return false;
}

// Checks names, shapes and dtypes of every spec against `lookup` and lists every problem at
// once; also lists tensors the architecture does not have.
void check_tensors(const std::vector<WeightSpec>& specs, const ModelConfig& config,
                   const Checkpoint& checkpoint, const std::string& what) {
  std::vector<std::string> problems;
  std::set<std::string> expected;
  for (const auto& s : specs) {
    expected.insert(s.name);
    const CheckpointTensor* t = checkpoint.find(s.name);
    if (!t) {
      problems.push_back("missing tensor '" + s.name + "'");
      continue;
    }
    if (t->info->shape != s.shape) {
      TensorInfo want;
      want.shape = s.shape;
      problems.push_back("tensor '" + s.name + "' has shape " + t->info->shape_string() +
                         ", config.json implies " + want.shape_string());
    }
    if (!is_engine_dtype(t->info->dtype))
      problems.push_back("tensor '" + s.name + "' has dtype " +
                         std::string(dtype_name(t->info->dtype)) +
                         " (the engine reads F32, BF16 and F16)");
  }
  std::vector<std::string> unknown;
  for (const auto& t : checkpoint.tensors())
    if (!expected.count(t.name()) && !is_ignorable(t.name(), config)) unknown.push_back(t.name());
  if (!unknown.empty()) {
    std::string list;
    for (size_t i = 0; i < unknown.size() && i < 5; ++i) list += (i ? ", " : "") + unknown[i];
    if (unknown.size() > 5) list += str(", ... (", unknown.size(), " in all)");
    problems.push_back(str("tensors that ", config.architecture, " does not have: ", list));
  }
  if (problems.empty()) return;
  std::string message =
      str(what, " (", checkpoint.spec(), ") does not match ", config.architecture, ":");
  for (const auto& p : problems) message += "\n  " + p;
  fail(message);
}

void to_floats(const void* data, DType dtype, uint64_t count, std::vector<float>& out) {
  out.resize(count);
  convert_row_to_f32(data, dtype, 0, count, out.data());
}

}  // namespace

void check_model_tensors(const ModelConfig& config, const Checkpoint& checkpoint,
                         const std::string& what) {
  ModelWeights unused;
  check_tensors(for_each_weight(config, unused), config, checkpoint, what);
}

LoadedModel::~LoadedModel() {
  // The checkpoint outlives this model when its source stays open (a search loads alpha 0
  // through the aligned checkpoint it holds for the whole run): hand back the pages the model
  // read, as unmapping does for a checkpoint opened for one model, so that they stop counting
  // in the process's memory (the page cache keeps them).
  if (!checkpoint_ || checkpoint_.use_count() == 1) return;
  for (const CheckpointTensor& t : checkpoint_->tensors())
    t.file->release(*t.info, 0, t.info->num_bytes());
}

std::unique_ptr<LoadedModel> LoadedModel::load(const ModelSource& source, ThreadPool& pool) {
  if (source.is_pair()) fail("internal: extrapolation on load needs an alpha");
  return load(source, 0.0, false, pool);
}

std::unique_ptr<LoadedModel> LoadedModel::load(const ModelSource& source, double alpha,
                                               bool allow_nonfinite, ThreadPool& pool) {
  if (source.empty()) fail("internal: no model to load");
  if (!source.is_pair() && alpha != 0)
    fail("internal: alpha ", alpha, " for ", source.checkpoint().spec(), ", which is not a pair");
  if (source.fixed_alpha()) alpha = *source.fixed_alpha();
  auto model = std::make_unique<LoadedModel>();
  model->config_ = source.config();
  model->folder_ = source.folder();
  const auto specs = for_each_weight(model->config_, model->weights_);
  if (!source.computed()) {
    model->checkpoint_ = source.shared_checkpoint();
    const Checkpoint& ck = *model->checkpoint_;
    for (const auto& s : specs) {
      const CheckpointTensor* t = ck.find(s.name);  // there: checked when the source was opened
      if (s.matrix) {
        *s.matrix = WeightView{t->data(), t->info->dtype, s.shape[0], s.shape[1]};
      } else {
        to_floats(t->data(), t->info->dtype, s.shape[0], *s.vector);
      }
      model->bytes_ += t->info->num_bytes();
    }
  } else {
    std::map<std::string, const PlanEntry*> entries;
    for (const auto& e : source.plan()->entries) entries[e.name()] = &e;
    std::vector<uint8_t> scratch;
    for (const auto& s : specs) {
      const PlanEntry* entry = entries.at(s.name);
      const uint64_t bytes = entry->out_bytes();
      if (s.matrix) {
        model->owned_.push_back(std::make_unique<uint8_t[]>(bytes));
        extrapolate_entry_to_memory(*entry, alpha, allow_nonfinite, model->owned_.back().get(),
                                    pool);
        *s.matrix =
            WeightView{model->owned_.back().get(), entry->out_dtype, s.shape[0], s.shape[1]};
      } else {
        scratch.resize(bytes);
        extrapolate_entry_to_memory(*entry, alpha, allow_nonfinite, scratch.data(), pool);
        to_floats(scratch.data(), entry->out_dtype, s.shape[0], *s.vector);
      }
      model->bytes_ += bytes;
    }
  }
  if (model->config_.tie_word_embeddings && !model->config_.is_reward_model)
    model->weights_.head = model->weights_.embed;
  return model;
}

}  // namespace expo
