#pragma once
// SplitMix64 (Steele, Lea and Flood 2014; the constants of Vigna's reference code): a tiny
// generator whose output is fixed by its seed on every platform and standard library, unlike
// std::shuffle or std::uniform_int_distribution. Prompt shuffling and MT-Bench answer ids use
// it so that a seed means the same thing everywhere.
#include <cstdint>
#include <string_view>

namespace expo {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, bound) without modulo bias: draws below 2^64 mod bound are rejected.
  // bound must be > 0.
  uint64_t below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;  // == 2^64 mod bound
    for (;;) {
      const uint64_t r = next();
      if (r >= threshold) return r % bound;
    }
  }

 private:
  uint64_t state_;
};

// FNV-1a, 64 bits: a stable hash of text (for seeding per prompt id).
inline uint64_t fnv1a64(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace expo
