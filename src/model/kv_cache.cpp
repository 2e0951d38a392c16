#include "model/kv_cache.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/units.h"

namespace expo {

namespace {

float* map_zeroed(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    fail("cannot reserve ", format_bytes(bytes), " for a KV cache: ", std::strerror(errno),
         "; use a shorter --max-context or a smaller --batch-size");
  return static_cast<float*>(p);
}

}  // namespace

KvCache::KvCache(const ModelConfig& c, uint64_t capacity)
    : capacity_(capacity), kv_heads_(c.num_kv_heads), head_dim_(c.head_dim) {
  bytes_ = c.num_layers * c.num_kv_heads * capacity * c.head_dim * sizeof(float);
  k_ = map_zeroed(bytes_);
  try {
    v_ = map_zeroed(bytes_);
  } catch (...) {
    if (k_) munmap(k_, bytes_);
    throw;
  }
}

KvCache::~KvCache() {
  if (k_) munmap(k_, bytes_);
  if (v_) munmap(v_, bytes_);
}

}  // namespace expo
