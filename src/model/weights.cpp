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
  bool plus_one = false;  // a Gemma norm: the engine keeps 1 + weight
};

std::vector<WeightSpec> for_each_weight(const ModelConfig& c, ModelWeights& w) {
  std::vector<WeightSpec> specs;
  auto matrix = [&](std::string name, uint64_t rows, uint64_t cols, WeightView& view) {
    specs.push_back({std::move(name), {rows, cols}, &view, nullptr});
  };
  auto vector = [&](std::string name, uint64_t size, std::vector<float>& v) {
    specs.push_back({std::move(name), {size}, nullptr, &v});
  };
  auto norm = [&](std::string name, uint64_t size, std::vector<float>& v) {
    specs.push_back({std::move(name), {size}, nullptr, &v, c.norm_plus_one});
  };
  const uint64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, D = c.head_dim;
  const uint64_t qd = c.q_dim(), kvd = c.kv_dim();
  w.layers.resize(c.num_layers);
  const bool internlm = c.family == Family::kInternLM2;
  matrix(internlm ? "model.tok_embeddings.weight" : "model.embed_tokens.weight", V, H, w.embed);
  for (uint64_t i = 0; i < c.num_layers; ++i) {
    LayerWeights& L = w.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    if (internlm) {
      vector(p + "attention_norm.weight", H, L.attn_norm);
      matrix(p + "attention.wqkv.weight", qd + 2 * kvd, H, L.qkv);
      if (c.qkv_bias) vector(p + "attention.wqkv.bias", qd + 2 * kvd, L.qkv_bias);
      matrix(p + "attention.wo.weight", H, qd, L.o);
      if (c.o_bias) vector(p + "attention.wo.bias", H, L.o_bias);
      vector(p + "ffn_norm.weight", H, L.ffn_norm);
      matrix(p + "feed_forward.w1.weight", I, H, L.gate);
      matrix(p + "feed_forward.w3.weight", I, H, L.up);
      matrix(p + "feed_forward.w2.weight", H, I, L.down);
      continue;
    }
    const std::string a = p + "self_attn.";
    switch (c.norm_layout) {
      case NormLayout::kPre:
        norm(p + "input_layernorm.weight", H, L.attn_norm);
        norm(p + "post_attention_layernorm.weight", H, L.ffn_norm);
        break;
      case NormLayout::kSandwich:
        norm(p + "input_layernorm.weight", H, L.attn_norm);
        norm(p + "post_attention_layernorm.weight", H, L.post_attn_norm);
        norm(p + "pre_feedforward_layernorm.weight", H, L.ffn_norm);
        norm(p + "post_feedforward_layernorm.weight", H, L.post_ffn_norm);
        break;
      case NormLayout::kPost:
        norm(p + "post_attention_layernorm.weight", H, L.post_attn_norm);
        norm(p + "post_feedforward_layernorm.weight", H, L.post_ffn_norm);
        break;
    }
    if (c.fused_qkv) {
      matrix(a + "qkv_proj.weight", qd + 2 * kvd, H, L.qkv);
    } else {
      matrix(a + "q_proj.weight", qd, H, L.q);
      matrix(a + "k_proj.weight", kvd, H, L.k);
      matrix(a + "v_proj.weight", kvd, H, L.v);
    }
    if (c.qkv_bias) {
      vector(a + "q_proj.bias", qd, L.q_bias);
      vector(a + "k_proj.bias", kvd, L.k_bias);
      vector(a + "v_proj.bias", kvd, L.v_bias);
    }
    if (c.qk_norm == QkNorm::kPerHead) {
      norm(a + "q_norm.weight", D, L.q_norm);
      norm(a + "k_norm.weight", D, L.k_norm);
    } else if (c.qk_norm == QkNorm::kWhole) {
      norm(a + "q_norm.weight", qd, L.q_norm);
      norm(a + "k_norm.weight", kvd, L.k_norm);
    }
    matrix(a + "o_proj.weight", H, qd, L.o);
    if (c.o_bias) vector(a + "o_proj.bias", H, L.o_bias);
    if (c.num_experts) {
      const std::string m = p + "block_sparse_moe.";
      matrix(m + "gate.weight", c.num_experts, H, L.router);
      L.experts.resize(c.num_experts);
      for (uint64_t e = 0; e < c.num_experts; ++e) {
        const std::string x = m + "experts." + std::to_string(e) + ".";
        matrix(x + "w1.weight", I, H, L.experts[e].gate);
        matrix(x + "w3.weight", I, H, L.experts[e].up);
        matrix(x + "w2.weight", H, I, L.experts[e].down);
      }
      continue;
    }
    if (c.fused_gate_up) {
      matrix(p + "mlp.gate_up_proj.weight", 2 * I, H, L.gate_up);
    } else {
      matrix(p + "mlp.gate_proj.weight", I, H, L.gate);
      matrix(p + "mlp.up_proj.weight", I, H, L.up);
    }
    matrix(p + "mlp.down_proj.weight", H, I, L.down);
    if (c.mlp_bias) {
      vector(p + "mlp.gate_proj.bias", I, L.gate_bias);
      vector(p + "mlp.up_proj.bias", I, L.up_bias);
      vector(p + "mlp.down_proj.bias", H, L.down_bias);
    }
  }
  norm("model.norm.weight", H, w.final_norm);
  if (c.reward_head == RewardHead::kScore) {
    matrix("score.weight", c.num_labels, H, w.head);
  } else if (c.reward_head == RewardHead::kValue) {
    matrix("v_head.weight", 1, H, w.head);
  } else if (!c.tie_word_embeddings) {
    matrix(internlm ? "output.weight" : "lm_head.weight", V, H, w.head);
  }
  return specs;
}

bool is_engine_dtype(DType d) { return d == DType::F32 || d == DType::BF16 || d == DType::F16; }

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
    const DType dtype = t->info->dtype;
    if (dtype == DType::Q8_0) {
      if (!s.matrix || s.shape[1] % 32 != 0)
        problems.push_back("tensor '" + s.name + "' is Q8_0, which the engine reads only for " +
                           "matrices of whole 32-value blocks per row");
    } else if (!is_engine_dtype(dtype)) {
      problems.push_back("tensor '" + s.name + "' has dtype " + std::string(dtype_name(dtype)) +
                         " (the engine reads F32, BF16 and F16, and Q8_0 matrices from GGUF)");
    }
  }
  std::vector<std::string> unknown;
  for (const auto& t : checkpoint.tensors())
    if (!expected.count(t.name()) && !is_ignorable_tensor(t.name(), config))
      unknown.push_back(t.name());
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

// A vector's values in float32; a Gemma norm's as 1 + weight, added in float32 as transformers
// does.
void to_floats(const void* data, DType dtype, const WeightSpec& spec) {
  std::vector<float>& out = *spec.vector;
  out.resize(spec.shape[0]);
  convert_row_to_f32(data, dtype, 0, out.size(), out.data());
  if (spec.plus_one)
    for (float& x : out) x = 1.0f + x;
}

}  // namespace

bool is_ignorable_tensor(const std::string& name, const ModelConfig& c) {
  if (name.size() > 23 && name.ends_with(".rotary_emb.inv_freq")) return true;
  if (c.tie_word_embeddings && (name == "lm_head.weight" || name == "output.weight")) return true;
  return false;
}

std::vector<std::string> model_tensor_names(const ModelConfig& config) {
  ModelWeights unused;
  std::vector<std::string> names;
  for (const auto& s : for_each_weight(config, unused)) names.push_back(s.name);
  return names;
}

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
        to_floats(t->data(), t->info->dtype, s);
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
        to_floats(scratch.data(), entry->out_dtype, s);
      }
      model->bytes_ += bytes;
    }
  }
  if (model->config_.tie_word_embeddings && !model->config_.is_reward_model)
    model->weights_.head = model->weights_.embed;
  return model;
}

}  // namespace expo
