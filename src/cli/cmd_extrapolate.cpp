// expo extrapolate: write theta1 + alpha * (theta1 - theta0) as a Hugging Face checkpoint.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/option_ranges.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "core/units.h"
#include "gguf/gguf_export.h"
#include "gguf/gguf_pair.h"
#include "io/gguf.h"
#include "merge/expo_pair.h"
#include "merge/extrapolate.h"
#include "model/model_source.h"

namespace expo::cli {

namespace {
struct ExtrapolateArgs {
  std::string sft, aligned, base, alpha, output, revision, sft_revision, aligned_revision,
      base_revision;
  std::string dtype, on_missing = "error", max_shard_size = "5GB", format, gguf_type;
  std::vector<std::string> rules;
  bool output_adapter = false;
  bool dry_run = false, force = false, force_any = false, allow_nonfinite = false, progress = false,
       no_progress = false;
  size_t threads = 0;
};

// The pair the arguments name, each side's revision falling back to --revision.
PairSpec pair_spec(const ExtrapolateArgs& args) {
  PairSpec spec;
  spec.sft = args.sft;
  spec.aligned = args.aligned;
  spec.base = args.base;
  spec.sft_revision = args.sft_revision.empty() ? args.revision : args.sft_revision;
  spec.aligned_revision = args.aligned_revision.empty() ? args.revision : args.aligned_revision;
  spec.base_revision = args.base_revision.empty() ? args.revision : args.base_revision;
  return spec;
}

// --format gguf: each alpha as one GGUF file for llama.cpp.
void run_gguf(const ExtrapolateArgs& args, const std::vector<AlphaValue>& alphas) {
  if (args.output_adapter) usage_fail("--output-adapter writes a PEFT adapter, not GGUF");
  if (!args.dtype.empty()) usage_fail("--dtype is for safetensors; GGUF output takes --gguf-type");
  if (!args.rules.empty()) usage_fail("--rule is not supported with --format gguf yet");
  if (args.max_shard_size != "5GB") usage_fail("--max-shard-size does not apply to GGUF");
  if (args.on_missing != "error") usage_fail("--on-missing does not apply to GGUF");
  const PairSpec spec = pair_spec(args);
  std::vector<GgufExportOptions> outputs;
  for (const auto& alpha : alphas) {
    GgufExportOptions o;
    o.output = args.output;
    std::string path = args.output;
    for (size_t at; (at = path.find("{alpha}")) != std::string::npos;)
      path.replace(at, 7, alpha.text);
    o.output = path;
    if (!args.gguf_type.empty()) o.type = gguf_type_option(args.gguf_type);
    o.force = args.force;
    o.allow_nonfinite = args.allow_nonfinite;
    o.alpha_text = alpha.text;
    if (!args.base.empty()) o.sources.push_back({"base", args.base});
    o.sources.push_back({"sft", args.sft});
    o.sources.push_back({"aligned", args.aligned});
    check_gguf_output(o);
    outputs.push_back(o);
  }
  if (is_gguf_file(args.sft) || is_gguf_file(args.aligned)) {
    if (!is_gguf_file(args.sft) || !is_gguf_file(args.aligned))
      usage_fail(
          "--sft and --aligned: one is a GGUF file and the other is not; a GGUF pair is "
          "two GGUF files of the same model");
    if (!args.base.empty()) usage_fail("--base does not apply to a GGUF pair");
    for (size_t k = 0; k < outputs.size(); ++k) {
      GgufExportResult r;
      try {
        r = extrapolate_gguf_pair(args.sft, args.aligned, alphas[k].value, outputs[k]);
      } catch (const Error& e) {
        if (interrupted()) fail(e.what(), "; nothing was written");
        throw;
      }
      std::printf("wrote %s: alpha %s, %llu tensors, %s, from a GGUF pair\n",
                  outputs[k].output.c_str(), alphas[k].text.c_str(),
                  static_cast<unsigned long long>(r.tensors), format_bytes(r.bytes).c_str());
    }
    return;
  }
  const auto pair = ExpoPair::open(spec);
  for (const auto& w : pair->warnings()) std::fprintf(stderr, "expo: warning: %s\n", w.c_str());
  const Plan plan = pair->plan(PlanOptions{});
  for (const auto& w : plan.warnings) std::fprintf(stderr, "expo: warning: %s\n", w.c_str());
  const ModelConfig config = read_model_config(pair->model());
  ThreadPool pool(args.threads);
  for (size_t k = 0; k < outputs.size(); ++k) {
    GgufExportResult r;
    try {
      r = write_gguf(plan, alphas[k].value, config, pair->tokenizer_folder(), outputs[k], pool);
    } catch (const Error& e) {
      if (interrupted()) fail(e.what(), "; nothing was written");
      throw;
    }
    for (const auto& n : r.notes) std::fprintf(stderr, "expo: note: %s\n", n.c_str());
    std::printf("wrote %s: alpha %s, %llu tensors, %s, GGUF %s\n", outputs[k].output.c_str(),
                alphas[k].text.c_str(), static_cast<unsigned long long>(r.tensors),
                format_bytes(r.bytes).c_str(), std::string(ggml_type_name(r.type)).c_str());
  }
}

void run(const ExtrapolateArgs& args, const std::string& invocation) {
  const bool gguf =
      args.format == "gguf" || (args.format.empty() && args.output.ends_with(".gguf"));
  if (!args.format.empty() && args.format != "gguf" && args.format != "safetensors")
    usage_fail("--format: '", args.format, "' is not safetensors or gguf");
  if (!gguf && !args.gguf_type.empty()) usage_fail("--gguf-type needs --format gguf");
  if (!gguf && (is_gguf_file(args.sft) || is_gguf_file(args.aligned)))
    usage_fail(
        "--sft/--aligned are GGUF files: a GGUF pair is written as GGUF (--format gguf "
        "--output model.gguf)");
  if (gguf) {
    const auto alphas = parse_alpha_list(args.alpha);
    if (alphas.size() > 1 && args.output.find("{alpha}") == std::string::npos)
      usage_fail(
          "--output: several alphas need {alpha} in the output name, e.g. "
          "'model-expo-{alpha}.gguf'");
    run_gguf(args, alphas);
    return;
  }
  PlanOptions plan_options;
  ExtrapolateOptions options;
  if (!args.dtype.empty()) {
    plan_options.dtype = parse_user_float_dtype(args.dtype);
    if (!plan_options.dtype)
      usage_fail("--dtype: '", args.dtype, "' is not one of bf16, f16, f32, f64");
    options.dtype = plan_options.dtype;
  }
  for (const auto& r : args.rules) plan_options.rules.push_back(parse_alpha_rule(r));
  options.rule_texts = args.rules;
  if (args.on_missing == "copy-aligned")
    plan_options.on_missing = OnMissing::kCopyAligned;
  else if (args.on_missing != "error")
    usage_fail("--on-missing: '", args.on_missing, "' is not 'error' or 'copy-aligned'");
  options.max_shard_size = parse_size(args.max_shard_size, "--max-shard-size");

  const auto alphas = parse_alpha_list(args.alpha);
  if (alphas.size() > 1 && args.output.find("{alpha}") == std::string::npos)
    usage_fail(
        "--output: several alphas need {alpha} in the output name, e.g. 'model-expo-{alpha}'");
  for (const auto& alpha : alphas) {
    std::string dir = args.output;
    for (size_t at; (at = dir.find("{alpha}")) != std::string::npos;)
      dir.replace(at, 7, alpha.text);
    options.outputs.push_back({dir, alpha});
  }
  options.force = args.force;
  options.force_any = args.force_any;
  options.allow_nonfinite = args.allow_nonfinite;
  options.progress = args.progress || (!args.no_progress && StatusLine::stderr_is_terminal());
  options.command_line = invocation;

  const PairSpec spec = pair_spec(args);
  const auto pair = ExpoPair::open(spec);
  if (pair->aligned_is_adapter() && plan_options.on_missing != OnMissing::kError)
    usage_fail(
        "--on-missing applies to two full checkpoints; an adapter's tensors must all "
        "match the model");
  if (args.output_adapter && args.max_shard_size != "5GB")
    usage_fail(
        "--max-shard-size does not apply to --output-adapter: PEFT reads one "
        "adapter_model.safetensors");
  for (const auto& w : pair->warnings()) std::fprintf(stderr, "expo: warning: %s\n", w.c_str());
  const Plan plan =
      args.output_adapter ? pair->adapter_output_plan(plan_options) : pair->plan(plan_options);
  const OutputSources sources = pair->sources(args.output_adapter);
  for (const auto& w : plan.warnings) std::fprintf(stderr, "expo: warning: %s\n", w.c_str());
  if (args.dry_run) {
    check_outputs(sources, options);
    std::fputs(describe_plan(sources, plan, options).c_str(), stdout);
    return;
  }
  for (const auto& n : plan.notes) std::fprintf(stderr, "expo: note: %s\n", n.c_str());
  ThreadPool pool(args.threads);
  try {
    extrapolate_checkpoints(sources, plan, options, pool);
  } catch (const Error& e) {
    // Outputs are staged and renamed only when complete: an interrupted run leaves nothing.
    if (interrupted()) fail(e.what(), "; nothing was written");
    throw;
  }
  const auto shards = plan_output_shards(plan, options.max_shard_size);
  for (const auto& o : options.outputs)
    if (args.output_adapter)
      std::printf("wrote %s: alpha %s, a PEFT adapter of %zu tensors, %s\n", o.dir.c_str(),
                  o.alpha.text.c_str(), plan.entries.size(),
                  format_bytes(plan.out_bytes()).c_str());
    else
      std::printf("wrote %s: alpha %s, %zu tensors, %s in %zu shard(s)\n", o.dir.c_str(),
                  o.alpha.text.c_str(), plan.entries.size(), format_bytes(plan.out_bytes()).c_str(),
                  shards.size());
}
}  // namespace

void add_extrapolate_command(CLI::App& app, const std::string& invocation) {
  auto args = std::make_shared<ExtrapolateArgs>();
  auto* cmd = app.add_subcommand(
      "extrapolate",
      "Write theta1 + alpha * (theta1 - theta0): the ExPO model of an SFT/aligned pair.\n"
      "Example: expo extrapolate --sft ./mistral-7b-sft-beta --aligned ./zephyr-7b-beta "
      "--alpha 0.3 --output ./zephyr-7b-beta-expo\n"
      "LoRA: expo extrapolate --sft ./sft --aligned ./dpo-lora-adapter --alpha 2 --output ./expo "
      "[--output-adapter]");
  cmd->add_option("--sft", args->sft,
                  "theta0, the SFT checkpoint: a folder, a .safetensors file or a cached repo id "
                  "(with --base: the SFT LoRA adapter)")
      ->required();
  cmd->add_option("--aligned", args->aligned,
                  "theta1, the DPO/RLHF checkpoint (same forms), or a PEFT LoRA adapter folder "
                  "trained on --sft (theta1 = SFT + s B A)")
      ->required();
  cmd->add_option("--base", args->base,
                  "the model two LoRA adapters (--sft and --aligned) were trained on");
  cmd->add_flag("--output-adapter", args->output_adapter,
                "with an adapter as --aligned: write a PEFT adapter (lora_B scaled by 1 + alpha) "
                "instead of a full model");
  cmd->add_option("--alpha", args->alpha, "extrapolation strength, or a list: 0.1,0.3,0.5")
      ->required();
  cmd->add_option("--output", args->output,
                  "output folder; with several alphas it must contain {alpha}")
      ->required();
  cmd->add_option("--format", args->format,
                  "safetensors (a Hugging Face folder, the default) or gguf (one file for "
                  "llama.cpp; the default when --output ends in .gguf)");
  cmd->add_option("--gguf-type", args->gguf_type,
                  "GGUF tensor type: f32, f16, bf16 or q8_0 (default: the source's 16-bit type)");
  cmd->add_option("--dtype", args->dtype,
                  "output dtype of floating tensors: bf16, f16, f32 or f64 (default: aligned's)");
  cmd->add_option("--rule", args->rules,
                  "per-tensor alpha REGEX=ALPHA, repeatable, first match wins "
                  "(e.g. 'embed_tokens|lm_head=0')");
  cmd->add_option("--on-missing", args->on_missing,
                  "error (default) or copy-aligned: what to do with unmatched tensors");
  cmd->add_option("--max-shard-size", args->max_shard_size,
                  "largest output shard, e.g. 5GB (default), 2GB, 500MB");
  cmd->add_option("--revision", args->revision, "revision of repo ids in the Hugging Face cache");
  cmd->add_option("--sft-revision", args->sft_revision, "revision of --sft only");
  cmd->add_option("--aligned-revision", args->aligned_revision, "revision of --aligned only");
  cmd->add_option("--base-revision", args->base_revision, "revision of --base only");
  add_threads_option(*cmd, args->threads);
  cmd->add_flag("--dry-run", args->dry_run, "print the plan and write nothing");
  cmd->add_flag("--force", args->force,
                "replace an existing output: a model folder expo wrote, or an empty folder");
  cmd->add_flag("--force-any-folder", args->force_any,
                "with --force: replace the output even when it is not a folder expo wrote (or "
                "is the current or home folder)");
  cmd->add_flag("--allow-nonfinite", args->allow_nonfinite,
                "carry NaN/Inf inputs through instead of failing");
  cmd->add_flag("--progress", args->progress, "show progress even when stderr is not a terminal");
  cmd->add_flag("--no-progress", args->no_progress, "never show progress");
  cmd->callback([args, invocation] { run(*args, invocation); });
}

}  // namespace expo::cli
