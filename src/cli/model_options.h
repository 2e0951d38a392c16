#pragma once
// The options every engine command shares: which model (--model, or --sft/--aligned/--alpha
// for extrapolation on load), threads and --max-memory. Listed once, used by forward and
// generate.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "core/thread_pool.h"
#include "model/weights.h"

namespace expo::cli {

struct ModelOptions {
  std::string model, sft, aligned, alpha;
  bool allow_nonfinite = false;
  size_t threads = 0;
  std::string max_memory;

  void add_to(CLI::App& cmd);
  // Checks the combination of options and returns where the weights come from.
  WeightSource source() const;
  // Refuses, before loading, a model whose weights plus `extra_bytes` (KV cache, workspace)
  // exceed --max-memory.
  void check_memory(const WeightSource& source, uint64_t extra_bytes, const std::string& what) const;
};

}  // namespace expo::cli
