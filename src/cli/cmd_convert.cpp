// expo convert: a Hugging Face model folder as one GGUF file for llama.cpp.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/option_ranges.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/thread_pool.h"
#include "core/units.h"
#include "gguf/gguf_export.h"
#include "io/checkpoint.h"
#include "model/model_source.h"

namespace expo::cli {

namespace {
struct ConvertArgs {
  std::string model, output, gguf_type, revision, name;
  bool force = false;
  size_t threads = 0;
};

void run(const ConvertArgs& args) {
  if (!args.output.ends_with(".gguf"))
    usage_fail("--output ", args.output, ": a GGUF output is one file named *.gguf");
  GgufExportOptions o;
  o.output = args.output;
  if (!args.gguf_type.empty()) o.type = gguf_type_option(args.gguf_type);
  o.force = args.force;
  o.name = args.name;
  o.sources.push_back({"model", args.model});
  check_gguf_output(o);
  const Checkpoint checkpoint = Checkpoint::open(args.model, args.revision);
  if (checkpoint.gguf())
    fail(args.model, ": already a GGUF file; expo convert reads Hugging Face checkpoints");
  const ModelConfig config = read_model_config(checkpoint);
  const Plan plan = copy_plan(checkpoint);
  ThreadPool pool(args.threads);
  GgufExportResult r;
  try {
    r = write_gguf(plan, 0.0, config, checkpoint.folder(), o, pool);
  } catch (const Error& e) {
    if (interrupted()) fail(e.what(), "; nothing was written");
    throw;
  }
  for (const auto& n : r.notes) std::fprintf(stderr, "expo: note: %s\n", n.c_str());
  std::printf("wrote %s: %llu tensors, %s, GGUF %s\n", o.output.c_str(),
              static_cast<unsigned long long>(r.tensors), format_bytes(r.bytes).c_str(),
              std::string(ggml_type_name(r.type)).c_str());
}
}  // namespace

void add_convert_command(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand(
      "convert",
      "Write a Hugging Face model folder as one GGUF file for llama.cpp, Ollama and LM Studio "
      "(llama, mistral, mixtral, qwen2, qwen3, gemma2, gemma3, olmo2, phi3, internlm2).\n"
      "Example: expo convert --model ./zephyr-7b-beta-expo --output zephyr-expo.gguf "
      "--gguf-type q8_0");
  cmd->add_option("--model", args->model, "model folder (or cached repo id)")->required();
  cmd->add_option("--output", args->output, "the .gguf file to write")->required();
  cmd->add_option("--gguf-type", args->gguf_type,
                  "tensor type: f32, f16, bf16 or q8_0 (default: the source's 16-bit type)");
  cmd->add_option("--name", args->name, "general.name (default: the output file's stem)");
  cmd->add_option("--revision", args->revision, "revision of a repo id in the Hugging Face cache");
  cmd->add_flag("--force", args->force, "replace an existing output file");
  add_threads_option(*cmd, args->threads);
  cmd->callback([args] { run(*args); });
}

}  // namespace expo::cli
