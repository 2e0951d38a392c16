#include "cli/model_options.h"
#include "cli/option_ranges.h"

#include <cstdio>

#include "core/error.h"
#include "core/units.h"

namespace expo::cli {

void ModelOptions::add_to(CLI::App& cmd) {
  cmd.add_option("--model", model, "model folder, .safetensors file or cached repo id");
  cmd.add_option("--sft", sft, "extrapolate on load: theta0, the SFT checkpoint");
  cmd.add_option("--aligned", aligned,
                 "extrapolate on load: theta1, the aligned checkpoint or a PEFT LoRA adapter "
                 "trained on --sft");
  cmd.add_option("--base", base,
                 "extrapolate on load: the model --sft and --aligned (both LoRA adapters) were "
                 "trained on");
  cmd.add_option("--adapter", adapter, "with --model: a PEFT LoRA adapter applied on load");
  cmd.add_option("--alpha", alpha, "extrapolate on load: theta1 + alpha * (theta1 - theta0)");
  cmd.add_flag("--allow-nonfinite", allow_nonfinite, "carry NaN/Inf weights through extrapolation");
  add_threads_option(cmd, threads);
  cmd.add_option("--max-memory", max_memory,
                 "refuse to start when weights + KV cache would exceed this (e.g. 8GB)");
}

void ModelOptions::check() const {
  const bool any_extrapolation =
      !sft.empty() || !aligned.empty() || !alpha.empty() || !base.empty();
  if (!model.empty() && any_extrapolation)
    usage_fail("give either --model, or --sft, --aligned and --alpha, not both");
  if (!adapter.empty() && model.empty())
    usage_fail(
        "--adapter applies a LoRA adapter to --model; to extrapolate one, give "
        "--sft MODEL --aligned ADAPTER --alpha A");
  if (!model.empty()) return;
  if (!any_extrapolation)
    usage_fail("no model: give --model DIR, or --sft S --aligned A --alpha X");
  if (sft.empty() || aligned.empty() || alpha.empty())
    usage_fail("extrapolation on load needs all of --sft, --aligned and --alpha");
  alpha_value();
}

ModelSource ModelOptions::open() const {
  check();
  if (!model.empty() && !adapter.empty()) {
    ModelSource source = ModelSource::with_adapter(model, adapter);
    for (const auto& w : source.pair_warnings())
      std::fprintf(stderr, "expo: warning: %s\n", w.c_str());
    return source;
  }
  if (!model.empty()) return ModelSource::open(model);
  PairSpec spec;
  spec.sft = sft;
  spec.aligned = aligned;
  spec.base = base;
  ModelSource source = ModelSource::from_pair(ExpoPair::open(spec));
  for (const auto& w : source.pair_warnings())
    std::fprintf(stderr, "expo: warning: %s\n", w.c_str());
  for (const auto& w : source.plan()->warnings)
    std::fprintf(stderr, "expo: warning: %s\n", w.c_str());
  return source;
}

double ModelOptions::alpha_value() const {
  return alpha.empty() ? 0.0 : parse_double(alpha, "--alpha");
}

std::unique_ptr<LoadedModel> ModelOptions::load(const ModelSource& source, ThreadPool& pool) const {
  return LoadedModel::load(source, alpha_value(), allow_nonfinite, pool);
}

void ModelOptions::check_memory(const ModelSource& source, uint64_t extra_bytes,
                                const std::string& what) const {
  if (max_memory.empty()) return;
  const uint64_t limit = parse_size(max_memory, "--max-memory");
  const uint64_t weights = source.weight_bytes();
  if (weights + extra_bytes > limit)
    fail("the model needs about ", format_bytes(weights + extra_bytes), " (weights ",
         format_bytes(weights), " + ", what, " ", format_bytes(extra_bytes),
         ") but --max-memory is ", format_bytes(limit),
         "; lower --batch-size or --max-new-tokens, or use a smaller model");
}

}  // namespace expo::cli
