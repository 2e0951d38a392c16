#include "model/transformer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "model/rope.h"
#include "model/vector_ops.h"

namespace expo {

namespace {

void grow(std::vector<float>& v, uint64_t n) {
  if (v.size() < n) v.resize(n);
}

void add_into(float* x, const float* y, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) x[i] += y[i];
}

const float* bias_or_null(const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); }

// Runs fn(begin, end) over [0, n) in one piece per thread of the pool (pieces a multiple of
// 64 elements), or in one call when n is below `min_parallel` (waking the pool costs about as
// much as a few thousand libm calls). Only for elementwise work: each element gets the same
// operations whatever the split, so results do not depend on the thread count or the batch.
template <typename Fn>
void parallel_elementwise(uint64_t n, uint64_t min_parallel, ThreadPool& pool, const Fn& fn) {
  const uint64_t parts = pool.size();
  if (parts < 2 || n < min_parallel) {
    fn(uint64_t{0}, n);
    return;
  }
  const uint64_t piece = ((n + parts - 1) / parts + 63) & ~uint64_t{63};
  pool.parallel_for(parts, [&](size_t p) {
    const uint64_t lo = std::min<uint64_t>(p * piece, n), hi = std::min<uint64_t>(lo + piece, n);
    if (lo < hi) fn(lo, hi);
  });
}

// gate = act(gate) * up, elementwise, shared by the pool when there is enough of it. The GELUs
// cost a double tanh or erf per element (about 14 ns: 1.4 ms per decoded token of the
// Gemma-2-shaped benchmark model), SiLU a float exp (about 3 ns).
void activation_mul(Activation act, float* gate, const float* up, uint64_t n, ThreadPool& pool) {
  const uint64_t min_parallel = act == Activation::kSilu ? 65536 : 4096;
  parallel_elementwise(n, min_parallel, pool, [&](uint64_t lo, uint64_t hi) {
    switch (act) {
      case Activation::kSilu:
        silu_mul_f32(gate + lo, up + lo, hi - lo);
        break;
      case Activation::kGeluTanh:
        gelu_tanh_mul_f32(gate + lo, up + lo, hi - lo);
        break;
      case Activation::kGelu:
        gelu_mul_f32(gate + lo, up + lo, hi - lo);
        break;
    }
  });
}

// RMSNorm of T rows of `width` floats, in place.
void norm_rows(float* x, uint64_t T, uint64_t width, const std::vector<float>& weight, double eps) {
  for (uint64_t t = 0; t < T; ++t)
    rms_norm_f32(&x[t * width], weight.data(), width, eps, &x[t * width]);
}

}  // namespace

uint64_t activation_bytes_per_token(const ModelConfig& c) {
  const uint64_t H = c.hidden_size, I = c.intermediate_size;
  // x, xn, tmp and the final norm's row; q, k, v, attention output; packed qkv.
  uint64_t floats = 4 * H + 2 * c.q_dim() + 2 * c.kv_dim() + (c.q_dim() + 2 * c.kv_dim());
  if (c.num_experts) {  // per token: router logits, and k copies of input, gate, up and output
    floats += c.num_experts + c.experts_per_token * (2 * H + 2 * I);
  } else {
    floats += (c.fused_gate_up ? 4 : 2) * I;
  }
  return floats * sizeof(float);
}

Transformer::Transformer(const LoadedModel& model) : config_(model.config()), w_(model.weights()) {}

const std::vector<float>& Transformer::forward(std::span<const ForwardItem> items,
                                               ThreadPool& pool) {
  const ModelConfig& c = config_;
  const uint64_t H = c.hidden_size, D = c.head_dim, half = c.rotary_dim / 2;
  const uint64_t qd = c.q_dim(), kvd = c.kv_dim();
  const bool local_rope =
      std::find(c.local_rope.begin(), c.local_rope.end(), true) != c.local_rope.end();

  // Positions and checks, before any work.
  uint64_t T = 0, out_rows = 0;
  item_first_.assign(items.size(), 0);
  for (size_t i = 0; i < items.size(); ++i) {
    const ForwardItem& it = items[i];
    if (it.tokens.empty()) fail("internal: a forward item has no tokens");
    if (it.cache->length() + it.tokens.size() > it.cache->capacity())
      fail("sequence of ", it.cache->length() + it.tokens.size(),
           " tokens exceeds its KV cache of ", it.cache->capacity());
    item_first_[i] = T;
    T += it.tokens.size();
    out_rows += it.all_logits ? it.tokens.size() : 1;
  }
  token_item_.resize(T);
  token_pos_.resize(T);
  for (int r = 0; r < (local_rope ? 2 : 1); ++r) {
    cos_[r].resize(T * half);
    sin_[r].resize(T * half);
  }
  grow(x_, T * H);
  const float embed_scale = static_cast<float>(c.embedding_scale);
  for (size_t i = 0; i < items.size(); ++i) {
    const ForwardItem& it = items[i];
    const uint64_t start = it.cache->length();
    RopeFrequencies freq[2];
    freq[0] = rope_frequencies(c, start + it.tokens.size());
    if (local_rope) freq[1] = rope_frequencies(c, start + it.tokens.size(), true);
    for (size_t j = 0; j < it.tokens.size(); ++j) {
      const uint64_t t = item_first_[i] + j;
      const int32_t id = it.tokens[j];
      if (id < 0 || static_cast<uint64_t>(id) >= c.vocab_size)
        fail("token id ", id, " at position ", start + j, " is out of range: the vocabulary has ",
             c.vocab_size, " entries");
      token_item_[t] = i;
      token_pos_[t] = start + j;
      for (int r = 0; r < (local_rope ? 2 : 1); ++r)
        rope_angles(start + j, freq[r], &cos_[r][t * half], &sin_[r][t * half]);
      float* x = &x_[t * H];
      convert_row_to_f32(w_.embed.data, w_.embed.dtype, static_cast<uint64_t>(id) * H, H, x);
      if (c.embedding_scale != 1)
        for (uint64_t h = 0; h < H; ++h) x[h] *= embed_scale;
    }
  }

  grow(xn_, T * H);
  grow(q_, T * qd);
  grow(k_, T * kvd);
  grow(v_, T * kvd);
  grow(att_, T * qd);
  grow(tmp_, T * H);
  const bool packed = !w_.layers.empty() && w_.layers[0].qkv.data;
  if (packed) grow(qkv_, T * (qd + 2 * kvd));

  for (uint64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& L = w_.layers[l];
    if (L.attn_norm.empty()) {  // OLMo 2: the attention reads the residual stream itself
      std::copy_n(x_.data(), T * H, xn_.data());
    } else {
      for (uint64_t t = 0; t < T; ++t)
        rms_norm_f32(&x_[t * H], L.attn_norm.data(), H, c.rms_norm_eps, &xn_[t * H]);
    }
    if (packed) {
      matmul(L.qkv, bias_or_null(L.qkv_bias), xn_.data(), T, qkv_.data(), pool);
      const uint64_t width = qd + 2 * kvd;
      if (c.family == Family::kInternLM2) {
        // wqkv rows are grouped per kv head: its query heads, then its key, then its value.
        const uint64_t groups = c.num_heads / c.num_kv_heads;
        for (uint64_t t = 0; t < T; ++t) {
          const float* src = &qkv_[t * width];
          for (uint64_t g = 0; g < c.num_kv_heads; ++g) {
            const float* block = src + g * (groups + 2) * D;
            std::copy_n(block, groups * D, &q_[t * qd + g * groups * D]);
            std::copy_n(block + groups * D, D, &k_[t * kvd + g * D]);
            std::copy_n(block + (groups + 1) * D, D, &v_[t * kvd + g * D]);
          }
        }
      } else {  // Phi-3: all queries, then all keys, then all values
        for (uint64_t t = 0; t < T; ++t) {
          const float* src = &qkv_[t * width];
          std::copy_n(src, qd, &q_[t * qd]);
          std::copy_n(src + qd, kvd, &k_[t * kvd]);
          std::copy_n(src + qd + kvd, kvd, &v_[t * kvd]);
        }
      }
    } else {
      matmul(L.q, bias_or_null(L.q_bias), xn_.data(), T, q_.data(), pool);
      matmul(L.k, bias_or_null(L.k_bias), xn_.data(), T, k_.data(), pool);
      matmul(L.v, bias_or_null(L.v_bias), xn_.data(), T, v_.data(), pool);
    }
    if (c.qk_norm == QkNorm::kWhole) {
      norm_rows(q_.data(), T, qd, L.q_norm, c.rms_norm_eps);
      norm_rows(k_.data(), T, kvd, L.k_norm, c.rms_norm_eps);
    } else if (c.qk_norm == QkNorm::kPerHead) {
      norm_rows(q_.data(), T * c.num_heads, D, L.q_norm, c.rms_norm_eps);
      norm_rows(k_.data(), T * c.num_kv_heads, D, L.k_norm, c.rms_norm_eps);
    }
    const int r = c.local_rope[l] ? 1 : 0;
    for (uint64_t t = 0; t < T; ++t) {
      const double* cs = &cos_[r][t * half];
      const double* sn = &sin_[r][t * half];
      for (uint64_t h = 0; h < c.num_heads; ++h)
        apply_rope(&q_[t * qd + h * D], c.rotary_dim, cs, sn);
      for (uint64_t g = 0; g < c.num_kv_heads; ++g) {
        apply_rope(&k_[t * kvd + g * D], c.rotary_dim, cs, sn);
        KvCache& cache = *items[token_item_[t]].cache;
        std::copy_n(&k_[t * kvd + g * D], D, cache.keys(l, g) + token_pos_[t] * D);
        std::copy_n(&v_[t * kvd + g * D], D, cache.values(l, g) + token_pos_[t] * D);
      }
    }
    attention(items, l, pool);
    matmul(L.o, bias_or_null(L.o_bias), att_.data(), T, tmp_.data(), pool);
    if (!L.post_attn_norm.empty()) norm_rows(tmp_.data(), T, H, L.post_attn_norm, c.rms_norm_eps);
    add_into(x_.data(), tmp_.data(), T * H);

    if (L.ffn_norm.empty()) {
      std::copy_n(x_.data(), T * H, xn_.data());
    } else {
      for (uint64_t t = 0; t < T; ++t)
        rms_norm_f32(&x_[t * H], L.ffn_norm.data(), H, c.rms_norm_eps, &xn_[t * H]);
    }
    mlp(l, T, pool);
    if (!L.post_ffn_norm.empty()) norm_rows(tmp_.data(), T, H, L.post_ffn_norm, c.rms_norm_eps);
    add_into(x_.data(), tmp_.data(), T * H);
  }

  // The rows that are asked for, normed, through the head.
  grow(rows_, out_rows * H);
  uint64_t r = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const ForwardItem& it = items[i];
    const uint64_t first = it.all_logits ? item_first_[i] : item_first_[i] + it.tokens.size() - 1;
    const uint64_t last = item_first_[i] + it.tokens.size();
    for (uint64_t t = first; t < last; ++t, ++r)
      rms_norm_f32(&x_[t * H], w_.final_norm.data(), H, c.rms_norm_eps, &rows_[r * H]);
  }
  out_.resize(out_rows * output_size());
  matmul(w_.head, nullptr, rows_.data(), out_rows, out_.data(), pool);
  if (c.final_softcap > 0 && !c.is_reward_model)  // a tanh per logit: 256000 for a Gemma
    parallel_elementwise(out_.size(), 4096, pool, [&](uint64_t lo, uint64_t hi) {
      softcap_f32(out_.data() + lo, hi - lo, c.final_softcap);
    });
  for (const ForwardItem& it : items) it.cache->set_length(it.cache->length() + it.tokens.size());
  return out_;
}

void Transformer::mlp(uint64_t layer, uint64_t T, ThreadPool& pool) {
  const ModelConfig& c = config_;
  const LayerWeights& L = w_.layers[layer];
  const uint64_t I = c.intermediate_size;
  if (c.num_experts) {
    experts(layer, T, pool);
    return;
  }
  grow(gate_, T * I);
  grow(up_, T * I);
  if (L.gate_up.data) {  // Phi-3: [gate | up] per token
    grow(gate_up_, T * 2 * I);
    matmul(L.gate_up, nullptr, xn_.data(), T, gate_up_.data(), pool);
    for (uint64_t t = 0; t < T; ++t) {
      std::copy_n(&gate_up_[t * 2 * I], I, &gate_[t * I]);
      std::copy_n(&gate_up_[t * 2 * I + I], I, &up_[t * I]);
    }
  } else {
    matmul(L.gate, bias_or_null(L.gate_bias), xn_.data(), T, gate_.data(), pool);
    matmul(L.up, bias_or_null(L.up_bias), xn_.data(), T, up_.data(), pool);
  }
  activation_mul(c.activation, gate_.data(), up_.data(), T * I, pool);
  matmul(L.down, bias_or_null(L.down_bias), gate_.data(), T, tmp_.data(), pool);
}

void Transformer::experts(uint64_t layer, uint64_t T, ThreadPool& pool) {
  const ModelConfig& c = config_;
  const LayerWeights& L = w_.layers[layer];
  const uint64_t H = c.hidden_size, I = c.intermediate_size;
  const uint64_t E = c.num_experts, K = c.experts_per_token;
  grow(router_, T * E);
  matmul(L.router, nullptr, xn_.data(), T, router_.data(), pool);

  // Per token: softmax over the experts, the top K (the lower index first on a tie), their
  // weights renormalized to sum to 1, kept in ascending expert order, the order their outputs
  // are added in.
  chosen_.resize(T * K);
  chosen_weight_.resize(T * K);
  std::vector<uint32_t> order(E);
  std::vector<float> prob(E);
  for (uint64_t t = 0; t < T; ++t) {
    const float* logits = &router_[t * E];
    const float max = *std::max_element(logits, logits + E);
    float sum = 0;
    for (uint64_t e = 0; e < E; ++e) sum += prob[e] = std::exp(logits[e] - max);
    for (uint64_t e = 0; e < E; ++e) prob[e] /= sum;
    std::iota(order.begin(), order.end(), 0u);
    std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](uint32_t a, uint32_t b) {
      return prob[a] != prob[b] ? prob[a] > prob[b] : a < b;
    });
    std::sort(order.begin(), order.begin() + K);
    float top = 0;
    for (uint64_t k = 0; k < K; ++k) top += prob[order[k]];
    for (uint64_t k = 0; k < K; ++k) {
      chosen_[t * K + k] = order[k];
      chosen_weight_[t * K + k] = prob[order[k]] / top;
    }
  }

  // Each expert's tokens gathered into consecutive rows (expert by expert), run through it.
  expert_tokens_.assign(E, {});
  for (uint64_t s = 0; s < T * K; ++s) expert_tokens_[chosen_[s]].push_back(s);
  std::vector<uint64_t> row_of_slot(T * K);
  grow(expert_in_, T * K * H);
  grow(expert_out_, T * K * H);
  grow(gate_, T * K * I);
  grow(up_, T * K * I);
  uint64_t row = 0;
  for (uint64_t e = 0; e < E; ++e) {
    const uint64_t first = row, n = expert_tokens_[e].size();
    for (uint64_t s : expert_tokens_[e]) {
      row_of_slot[s] = row;
      std::copy_n(&xn_[(s / K) * H], H, &expert_in_[row * H]);
      ++row;
    }
    if (n == 0) continue;
    const ExpertWeights& x = L.experts[e];
    matmul(x.gate, nullptr, &expert_in_[first * H], n, &gate_[first * I], pool);
    matmul(x.up, nullptr, &expert_in_[first * H], n, &up_[first * I], pool);
    activation_mul(c.activation, &gate_[first * I], &up_[first * I], n * I, pool);
    matmul(x.down, nullptr, &gate_[first * I], n, &expert_out_[first * H], pool);
  }
  for (uint64_t t = 0; t < T; ++t) {
    float* out = &tmp_[t * H];
    std::fill_n(out, H, 0.0f);
    for (uint64_t k = 0; k < K; ++k) {
      const float w = chosen_weight_[t * K + k];
      const float* y = &expert_out_[row_of_slot[t * K + k] * H];
      for (uint64_t h = 0; h < H; ++h) out[h] += w * y[h];
    }
  }
}

void Transformer::attention(std::span<const ForwardItem> items, uint64_t layer, ThreadPool& pool) {
  const ModelConfig& c = config_;
  const uint64_t D = c.head_dim, qd = c.q_dim(), groups = c.num_heads / c.num_kv_heads;
  const uint64_t window = c.sliding_window[layer];
  const float scale = static_cast<float>(c.attention_scale);
  const double cap = c.attn_softcap;
  const size_t tasks = items.size() * c.num_heads;
  if (scores_.size() < tasks) scores_.resize(tasks);
  pool.parallel_for(tasks, [&](size_t task) {
    const size_t i = task / c.num_heads;
    const uint64_t h = task % c.num_heads, g = h / groups;
    const ForwardItem& it = items[i];
    KvCache& cache = *it.cache;
    const float* keys = cache.keys(layer, g);
    const float* values = cache.values(layer, g);
    std::vector<float>& scores = scores_[task];
    for (size_t j = 0; j < it.tokens.size(); ++j) {
      const uint64_t t = item_first_[i] + j;
      const uint64_t pos = cache.length() + j;
      const uint64_t lo = (window && pos + 1 > window) ? pos + 1 - window : 0;
      const float* q = &q_[t * qd + h * D];
      if (scores.size() < pos + 1) scores.resize(pos + 1);
      for (uint64_t p = lo; p <= pos; ++p) scores[p] = dot_f32(q, keys + p * D, D) * scale;
      if (cap > 0) softcap_f32(&scores[lo], pos + 1 - lo, cap);
      float max = -std::numeric_limits<float>::infinity();
      for (uint64_t p = lo; p <= pos; ++p) max = std::max(max, scores[p]);
      float sum = 0.0f;
      for (uint64_t p = lo; p <= pos; ++p) {
        scores[p] = std::exp(scores[p] - max);
        sum += scores[p];
      }
      float* out = &att_[t * qd + h * D];
      std::fill_n(out, D, 0.0f);
      const float inv = 1.0f / sum;
      for (uint64_t p = lo; p <= pos; ++p) axpy_f32(out, scores[p] * inv, values + p * D, D);
    }
  });
}

}  // namespace expo
