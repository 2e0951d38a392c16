#include "model/kv_cache.h"

namespace expo {

KvCache::KvCache(const ModelConfig& c, uint64_t capacity)
    : capacity_(capacity), kv_heads_(c.num_kv_heads), head_dim_(c.head_dim) {
  const uint64_t n = c.num_layers * c.num_kv_heads * capacity * c.head_dim;
  k_.resize(n);
  v_.resize(n);
}

}  // namespace expo
