#pragma once
// The streaming ExPO pass: read both checkpoints tensor by tensor, in chunks, with pread (not
// through the memory maps: see CONTRIBUTING.md), compute every requested alpha from one read,
// and write each output as safetensors shards into a staging folder that becomes the output
// only when everything (weights, index, config, tokenizer files, model card) is complete and
// flushed to disk.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "merge/plan.h"

namespace expo {

struct OutputSpec {
  std::filesystem::path dir;
  AlphaValue alpha;
};

struct ExtrapolateOptions {
  std::vector<OutputSpec> outputs;
  uint64_t max_shard_size = 5'000'000'000;  // transformers' default "5GB"
  bool force = false;
  bool force_any = false;  // --force-any-folder: --force over a folder expo did not write
  bool allow_nonfinite = false;
  bool progress = false;
  std::optional<DType> dtype;
  std::vector<std::string> rule_texts;  // for the model card and metadata
  std::string command_line;             // for the model card
};

// Refuses outputs that exist (without force), repeat, or would replace an input.
void check_outputs(const Checkpoint& sft, const Checkpoint& aligned,
                   const ExtrapolateOptions& options);

// The shards each output will have: tensor indices into plan.entries.
std::vector<std::vector<size_t>> plan_output_shards(const Plan& plan, uint64_t max_shard_size);

// What a run would do, for --dry-run.
std::string describe_plan(const Checkpoint& sft, const Checkpoint& aligned, const Plan& plan,
                          const ExtrapolateOptions& options);

void extrapolate_checkpoints(const Checkpoint& sft, const Checkpoint& aligned, const Plan& plan,
                             const ExtrapolateOptions& options, ThreadPool& pool);

}  // namespace expo
