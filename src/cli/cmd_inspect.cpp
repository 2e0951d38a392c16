// expo inspect: every tensor of a checkpoint, with totals and the architecture.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/units.h"
#include "io/checkpoint.h"

namespace expo::cli {

namespace {
struct InspectArgs {
  std::string path, revision;
  bool json = false;
};

void run(const InspectArgs& args) {
  const auto ckpt = Checkpoint::open(args.path, args.revision);
  if (args.json) {
    nlohmann::ordered_json j;
    j["path"] = ckpt.spec();
    j["architecture"] = ckpt.architecture();
    j["files"] = ckpt.num_files();
    j["parameters"] = ckpt.total_parameters();
    j["bytes"] = ckpt.total_bytes();
    j["tied_embeddings"] = ckpt.ties_embeddings();
    j["tensors"] = nlohmann::ordered_json::array();
    for (const auto& t : ckpt.tensors())
      j["tensors"].push_back({{"name", t.name()},
                              {"dtype", std::string(dtype_name(t.info->dtype))},
                              {"shape", t.info->shape},
                              {"file", t.file->path().filename().string()}});
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  size_t width = 4;
  for (const auto& t : ckpt.tensors()) width = std::max(width, t.name().size());
  std::printf("%-*s  %-7s  %s\n", static_cast<int>(width), "name", "dtype", "shape");
  for (const auto& t : ckpt.tensors())
    std::printf("%-*s  %-7s  %s\n", static_cast<int>(width), t.name().c_str(),
                std::string(dtype_name(t.info->dtype)).c_str(), t.info->shape_string().c_str());
  std::printf("\narchitecture: %s\n", ckpt.architecture().c_str());
  std::printf("tensors: %zu in %zu file(s)\n", ckpt.tensors().size(), ckpt.num_files());
  std::printf("parameters: %llu\n", static_cast<unsigned long long>(ckpt.total_parameters()));
  std::printf("bytes: %llu (%s)\n", static_cast<unsigned long long>(ckpt.total_bytes()),
              format_bytes(ckpt.total_bytes()).c_str());
  std::printf("tied embeddings: %s\n", ckpt.ties_embeddings() ? "yes" : "no");
}
}  // namespace

void add_inspect_command(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  auto* cmd = app.add_subcommand(
      "inspect",
      "List a checkpoint's tensors (name, dtype, shape), totals and architecture.\n"
      "Example: expo inspect ./zephyr-7b-beta --json");
  cmd->add_option("path", args->path, "a model folder, a .safetensors file or a cached repo id")
      ->required();
  cmd->add_option("--revision", args->revision, "revision of a repo id in the Hugging Face cache");
  cmd->add_flag("--json", args->json, "machine-readable output");
  cmd->callback([args] { run(*args); });
}

}  // namespace expo::cli
