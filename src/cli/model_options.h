#pragma once
// The options every engine command shares: which model (--model, or --sft/--aligned/--alpha
// for extrapolation on load), threads and --max-memory. Listed once, used by forward, generate
// and serve.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "core/thread_pool.h"
#include "model/model_source.h"
#include "model/weights.h"

namespace expo::cli {

struct ModelOptions {
  std::string model, sft, aligned, alpha, adapter, base;
  bool allow_nonfinite = false;
  size_t threads = 0;
  std::string max_memory;

  void add_to(CLI::App& cmd);
  // Refuses a combination of options that names no model, or two, and a bad --alpha.
  void check() const;
  // check(), then opens the model, once: the --model checkpoint, or the --sft/--aligned pair
  // with its plan.
  ModelSource open() const;
  // --alpha as a number (0 with --model).
  double alpha_value() const;
  // The weights of `source` (from open()): extrapolated at --alpha for a pair.
  std::unique_ptr<LoadedModel> load(const ModelSource& source, ThreadPool& pool) const;
  // Refuses, before loading, a model whose weights plus `extra_bytes` (KV cache, workspace)
  // exceed --max-memory.
  void check_memory(const ModelSource& source, uint64_t extra_bytes, const std::string& what) const;
};

}  // namespace expo::cli
