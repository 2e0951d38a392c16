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

// What the outputs are made from: the inputs (never overwritten; their specs are the
// provenance in the weights' metadata and the model card) and where the files beside the
// weights come from.
struct OutputSources {
  struct Input {
    std::string role;  // "base", "sft", "aligned"
    std::string spec;
    const Checkpoint* weights = nullptr;
    std::filesystem::path folder;  // empty for a lone .safetensors file
    bool adapter = false;
  };
  std::vector<Input> inputs;
  // config.json and the other files of a model folder are copied from here (none when empty)...
  std::filesystem::path aux_folder;
  // ...then the tokenizer files of this folder over them (an adapter that ships its tokenizer).
  std::filesystem::path tokenizer_folder;
  // The output is a PEFT adapter: one adapter_model.safetensors, and the files of aux_folder
  // (the aligned adapter's folder: adapter_config.json, tokenizer files).
  bool adapter_output = false;

  const Input* find(const std::string& role) const;
};

// Two full checkpoints: the aligned one's files go beside the weights.
OutputSources checkpoint_sources(const Checkpoint& sft, const Checkpoint& aligned);

// Refuses outputs that exist (without force), repeat, or would replace an input.
void check_outputs(const OutputSources& sources, const ExtrapolateOptions& options);
inline void check_outputs(const Checkpoint& sft, const Checkpoint& aligned,
                          const ExtrapolateOptions& options) {
  check_outputs(checkpoint_sources(sft, aligned), options);
}

// The shards each output will have: tensor indices into plan.entries.
std::vector<std::vector<size_t>> plan_output_shards(const Plan& plan, uint64_t max_shard_size);

// What a run would do, for --dry-run.
std::string describe_plan(const OutputSources& sources, const Plan& plan,
                          const ExtrapolateOptions& options);
inline std::string describe_plan(const Checkpoint& sft, const Checkpoint& aligned, const Plan& plan,
                                 const ExtrapolateOptions& options) {
  return describe_plan(checkpoint_sources(sft, aligned), plan, options);
}

void extrapolate_checkpoints(const OutputSources& sources, const Plan& plan,
                             const ExtrapolateOptions& options, ThreadPool& pool);
inline void extrapolate_checkpoints(const Checkpoint& sft, const Checkpoint& aligned,
                                    const Plan& plan, const ExtrapolateOptions& options,
                                    ThreadPool& pool) {
  extrapolate_checkpoints(checkpoint_sources(sft, aligned), plan, options, pool);
}

}  // namespace expo
