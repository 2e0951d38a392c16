#include "model/transformer.h"

#include <algorithm>
#include <cmath>
#include <limits>

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

}  // namespace

Transformer::Transformer(const LoadedModel& model) : config_(model.config()), w_(model.weights()) {}

const std::vector<float>& Transformer::forward(std::span<const ForwardItem> items,
                                               ThreadPool& pool) {
  const ModelConfig& c = config_;
  const uint64_t H = c.hidden_size, I = c.intermediate_size, D = c.head_dim, half = D / 2;
  const uint64_t qd = c.q_dim(), kvd = c.kv_dim();

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
  cos_.resize(T * half);
  sin_.resize(T * half);
  grow(x_, T * H);
  for (size_t i = 0; i < items.size(); ++i) {
    const ForwardItem& it = items[i];
    const uint64_t start = it.cache->length();
    const auto inv_freq = rope_inverse_frequencies(c, start + it.tokens.size());
    for (size_t j = 0; j < it.tokens.size(); ++j) {
      const uint64_t t = item_first_[i] + j;
      const int32_t id = it.tokens[j];
      if (id < 0 || static_cast<uint64_t>(id) >= c.vocab_size)
        fail("token id ", id, " at position ", start + j, " is out of range: the vocabulary has ",
             c.vocab_size, " entries");
      token_item_[t] = i;
      token_pos_[t] = start + j;
      rope_angles(start + j, inv_freq, &cos_[t * half], &sin_[t * half]);
      convert_row_to_f32(w_.embed.data, w_.embed.dtype, static_cast<uint64_t>(id) * H, H,
                         &x_[t * H]);
    }
  }

  grow(xn_, T * H);
  grow(q_, T * qd);
  grow(k_, T * kvd);
  grow(v_, T * kvd);
  grow(att_, T * qd);
  grow(tmp_, T * H);
  grow(gate_, T * I);
  grow(up_, T * I);
  const bool packed = c.family == Family::kInternLM2;
  if (packed) grow(qkv_, T * (qd + 2 * kvd));

  for (uint64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& L = w_.layers[l];
    for (uint64_t t = 0; t < T; ++t)
      rms_norm_f32(&x_[t * H], L.attn_norm.data(), H, c.rms_norm_eps, &xn_[t * H]);
    if (packed) {
      // wqkv rows are grouped per kv head: its query heads, then its key, then its value.
      matmul(L.qkv, bias_or_null(L.qkv_bias), xn_.data(), T, qkv_.data(), pool);
      const uint64_t groups = c.num_heads / c.num_kv_heads, width = qd + 2 * kvd;
      for (uint64_t t = 0; t < T; ++t) {
        const float* src = &qkv_[t * width];
        for (uint64_t g = 0; g < c.num_kv_heads; ++g) {
          const float* block = src + g * (groups + 2) * D;
          std::copy_n(block, groups * D, &q_[t * qd + g * groups * D]);
          std::copy_n(block + groups * D, D, &k_[t * kvd + g * D]);
          std::copy_n(block + (groups + 1) * D, D, &v_[t * kvd + g * D]);
        }
      }
    } else {
      matmul(L.q, bias_or_null(L.q_bias), xn_.data(), T, q_.data(), pool);
      matmul(L.k, bias_or_null(L.k_bias), xn_.data(), T, k_.data(), pool);
      matmul(L.v, bias_or_null(L.v_bias), xn_.data(), T, v_.data(), pool);
    }
    for (uint64_t t = 0; t < T; ++t) {
      for (uint64_t h = 0; h < c.num_heads; ++h)
        apply_rope(&q_[t * qd + h * D], D, &cos_[t * half], &sin_[t * half]);
      for (uint64_t g = 0; g < c.num_kv_heads; ++g) {
        apply_rope(&k_[t * kvd + g * D], D, &cos_[t * half], &sin_[t * half]);
        KvCache& cache = *items[token_item_[t]].cache;
        std::copy_n(&k_[t * kvd + g * D], D, cache.keys(l, g) + token_pos_[t] * D);
        std::copy_n(&v_[t * kvd + g * D], D, cache.values(l, g) + token_pos_[t] * D);
      }
    }
    attention(items, l, pool);
    matmul(L.o, bias_or_null(L.o_bias), att_.data(), T, tmp_.data(), pool);
    add_into(x_.data(), tmp_.data(), T * H);

    for (uint64_t t = 0; t < T; ++t)
      rms_norm_f32(&x_[t * H], L.ffn_norm.data(), H, c.rms_norm_eps, &xn_[t * H]);
    matmul(L.gate, bias_or_null(L.gate_bias), xn_.data(), T, gate_.data(), pool);
    matmul(L.up, bias_or_null(L.up_bias), xn_.data(), T, up_.data(), pool);
    silu_mul_f32(gate_.data(), up_.data(), T * I);
    matmul(L.down, bias_or_null(L.down_bias), gate_.data(), T, tmp_.data(), pool);
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
  for (const ForwardItem& it : items) it.cache->set_length(it.cache->length() + it.tokens.size());
  return out_;
}

void Transformer::attention(std::span<const ForwardItem> items, uint64_t layer, ThreadPool& pool) {
  const ModelConfig& c = config_;
  const uint64_t D = c.head_dim, qd = c.q_dim(), groups = c.num_heads / c.num_kv_heads;
  const uint64_t window = c.sliding_window[layer];
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
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
      float max = -std::numeric_limits<float>::infinity();
      for (uint64_t p = lo; p <= pos; ++p) {
        scores[p] = dot_f32(q, keys + p * D, D) * scale;
        max = std::max(max, scores[p]);
      }
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
