#pragma once
// One sequence's keys and values, float32, laid out [layer][kv_head][position][head_dim] so a
// head's keys are contiguous rows for the attention dot products.
//
// The buffers are anonymous memory maps: pages are zero and take no memory until a position is
// written, so a cache sized for the whole context costs what the sequence uses (`expo serve`
// sizes each request's cache for its longest possible answer), and all of it goes back to the
// system when the cache is destroyed.
#include <cstddef>
#include <cstdint>

#include "model/config.h"

namespace expo {

class KvCache {
 public:
  KvCache(const ModelConfig& config, uint64_t capacity);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  uint64_t capacity() const { return capacity_; }
  uint64_t length() const { return length_; }  // positions already filled
  void set_length(uint64_t n) { length_ = n; }

  float* keys(uint64_t layer, uint64_t kv_head) { return k_ + offset(layer, kv_head); }
  float* values(uint64_t layer, uint64_t kv_head) { return v_ + offset(layer, kv_head); }

  static uint64_t bytes_for(const ModelConfig& config, uint64_t capacity) {
    return 2 * config.num_layers * config.num_kv_heads * capacity * config.head_dim * sizeof(float);
  }

 private:
  uint64_t offset(uint64_t layer, uint64_t kv_head) const {
    return ((layer * kv_heads_ + kv_head) * capacity_) * head_dim_;
  }
  uint64_t capacity_, length_ = 0, kv_heads_, head_dim_;
  size_t bytes_ = 0;  // of each buffer
  float* k_ = nullptr;
  float* v_ = nullptr;
};

}  // namespace expo
