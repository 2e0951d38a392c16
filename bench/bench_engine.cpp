// Engine speed on one model: prefill and decode tokens/s, decode at batch 1 against the
// memory-bandwidth bound measured in the same run, batch 16 against batch 1, and peak RSS.
//
//     build/bench_engine MODEL_DIR [--threads N] [--prompt 256] [--steps 32]
//
// The bound: decode at batch 1 reads every weight matrix once per token (the embedding only
// one row; a mixture of experts only its router and the experts_per_token experts the token is
// routed to in each layer), so tokens/s cannot exceed copy bandwidth / bytes read per token.
// Norm weights and biases (float32 vectors of the hidden or projection size) are left out:
// well under 0.1% of any layer's matrices. Copy bandwidth is
// memcpy of a 512 MiB buffer over the same threads, in bytes copied per second; a read-only
// sweep is reported too (a tighter bound, since a copy also writes).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/units.h"
#include "gguf/gguf_checkpoint.h"
#include "model/transformer.h"

using namespace expo;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Bytes copied per second by memcpy over the pool, best of 5.
double copy_bandwidth(ThreadPool& pool, double* read_bw) {
  const size_t bytes = size_t{512} << 20;
  std::vector<char> a(bytes, 1), b(bytes, 2);
  const size_t parts = pool.size();
  double best = 0, best_read = 0;
  std::vector<double> sums(parts);
  for (int rep = 0; rep < 5; ++rep) {
    auto t = Clock::now();
    pool.parallel_for(parts, [&](size_t p) {
      const size_t lo = bytes / parts * p, hi = p + 1 == parts ? bytes : bytes / parts * (p + 1);
      std::memcpy(b.data() + lo, a.data() + lo, hi - lo);
    });
    best = std::max(best, bytes / seconds_since(t));
    t = Clock::now();
    pool.parallel_for(parts, [&](size_t p) {
      const size_t lo = bytes / parts * p / 64,
                   hi = (p + 1 == parts ? bytes : bytes / parts * (p + 1)) / 64;
      const uint64_t* w = reinterpret_cast<const uint64_t*>(a.data());
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (size_t i = lo * 8; i < hi * 8; i += 4) {
        s0 += w[i];
        s1 += w[i + 1];
        s2 += w[i + 2];
        s3 += w[i + 3];
      }
      sums[p] = double(s0 + s1 + s2 + s3);
    });
    best_read = std::max(best_read, bytes / seconds_since(t));
  }
  *read_bw = best_read;
  return best;
}

uint64_t view_bytes(const WeightView& w) { return w.rows * w.cols * dtype_size(w.dtype); }

// Weight bytes one decode step at batch 1 reads. Views a layout does not have are empty (0
// bytes): separate or packed q/k/v, separate or fused gate/up, a dense MLP or experts. All
// experts of a layer have the same shape, so k of them are k times the first.
uint64_t bytes_per_token(const LoadedModel& m) {
  const ModelWeights& w = m.weights();
  const uint64_t k = m.config().experts_per_token;
  uint64_t total = view_bytes(w.head) + w.embed.cols * dtype_size(w.embed.dtype);
  for (const auto& L : w.layers) {
    total += view_bytes(L.q) + view_bytes(L.k) + view_bytes(L.v) + view_bytes(L.qkv) +
             view_bytes(L.o) + view_bytes(L.gate) + view_bytes(L.up) + view_bytes(L.gate_up) +
             view_bytes(L.down) + view_bytes(L.router);
    if (!L.experts.empty()) {
      const ExpertWeights& e = L.experts[0];
      total += k * (view_bytes(e.gate) + view_bytes(e.up) + view_bytes(e.down));
    }
  }
  return total;
}

double peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) * 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  expo::register_gguf_checkpoints();  // MODEL may be a .gguf file
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_engine MODEL_DIR [--threads N] [--prompt N] [--steps N]\n");
    return 2;
  }
  size_t threads = 0, prompt_len = 256, steps = 32, batch = 16;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const size_t v = std::stoul(argv[i + 1]);
    if (k == "--threads")
      threads = v;
    else if (k == "--prompt")
      prompt_len = v;
    else if (k == "--steps")
      steps = v;
    else if (k == "--batch")
      batch = v;
  }
  try {
    ThreadPool pool(threads);
    double read_bw = 0;
    const double copy_bw = copy_bandwidth(pool, &read_bw);

    auto t = Clock::now();
    const auto loaded = LoadedModel::load(ModelSource::open(argv[1]), pool);
    const double load_s = seconds_since(t);
    Transformer model(*loaded);
    const ModelConfig& c = model.config();
    std::mt19937 rng(1);
    auto random_tokens = [&](size_t n) {
      std::vector<int32_t> v(n);
      for (auto& x : v) x = int32_t(rng() % c.vocab_size);
      return v;
    };
    const size_t context = prompt_len + steps + 1;

    // Warm-up: touches every weight page once.
    {
      KvCache cache(c, 8);
      const auto toks = random_tokens(4);
      const ForwardItem it{&cache, toks, false};
      model.forward(std::span<const ForwardItem>(&it, 1), pool);
    }
    // Prefill: one prompt in one pass.
    std::vector<double> prefill;
    for (int rep = 0; rep < 3; ++rep) {
      KvCache cache(c, context);
      const auto toks = random_tokens(prompt_len);
      const ForwardItem it{&cache, toks, false};
      t = Clock::now();
      model.forward(std::span<const ForwardItem>(&it, 1), pool);
      prefill.push_back(prompt_len / seconds_since(t));
    }
    // Decode: `n` sequences with a 32-token prompt each, then `steps` steps of one token each.
    auto decode = [&](size_t n) {
      std::vector<std::unique_ptr<KvCache>> caches;
      std::vector<std::vector<int32_t>> prompts, next(n, std::vector<int32_t>(1));
      std::vector<ForwardItem> items;
      for (size_t i = 0; i < n; ++i) {
        caches.push_back(std::make_unique<KvCache>(c, 32 + steps + 1));
        prompts.push_back(random_tokens(32));
        items.push_back({caches.back().get(), prompts.back(), false});
      }
      model.forward(items, pool);
      for (size_t i = 0; i < n; ++i) items[i].tokens = next[i];
      std::vector<double> per_step;
      for (size_t s = 0; s < steps; ++s) {
        for (auto& v : next) v[0] = int32_t(rng() % c.vocab_size);
        t = Clock::now();
        model.forward(items, pool);
        per_step.push_back(seconds_since(t));
      }
      return n / median(per_step);
    };
    const double decode1 = decode(1);
    const double decode16 = decode(batch);
    const double kv_bytes =
        double(KvCache::bytes_for(c, context) + batch * KvCache::bytes_for(c, 32 + steps + 1));
    const double rss = peak_rss_bytes();
    const double per_token = double(bytes_per_token(*loaded));
    const double bound = copy_bw / per_token;

    std::printf("model            %s (%s, %s of %s weights)\n", argv[1], c.architecture.c_str(),
                format_bytes(loaded->bytes()).c_str(),
                std::string(dtype_name(loaded->weights().head.dtype)).c_str());
    std::printf("matmul target    %s, %zu threads\n", matmul_target_name(), pool.size());
    std::printf("load             %.2f s\n", load_s);
    std::printf("copy bandwidth   %.2f GB/s (read-only sweep %.2f GB/s)\n", copy_bw / 1e9,
                read_bw / 1e9);
    std::printf("bytes per token  %.3f GB -> bound %.2f tok/s (read-sweep bound %.2f)\n",
                per_token / 1e9, bound, read_bw / per_token);
    if (c.num_experts)
      std::printf(
          "                 (router + %llu of %llu experts per layer: the bound assumes %llu "
          "experts per token)\n",
          static_cast<unsigned long long>(c.experts_per_token),
          static_cast<unsigned long long>(c.num_experts),
          static_cast<unsigned long long>(c.experts_per_token));
    std::printf("prefill          %.1f tok/s (%zu-token prompt)\n", median(prefill), prompt_len);
    std::printf(
        "decode batch 1   %.2f tok/s = %.0f%% of the copy-bandwidth bound (%.0f%% of read sweep)\n",
        decode1, 100 * decode1 / bound, 100 * decode1 * per_token / read_bw);
    std::printf("decode batch %zu  %.1f tok/s = %.1fx batch 1\n", batch, decode16,
                decode16 / decode1);
    std::printf("peak RSS         %s = %.2fx (weights + KV cache %s)\n",
                format_bytes(uint64_t(rss)).c_str(), rss / (double(loaded->bytes()) + kv_bytes),
                format_bytes(uint64_t(loaded->bytes() + kv_bytes)).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_engine: %s\n", e.what());
    return 1;
  }
  return 0;
}
