// expo inspect: every tensor of a checkpoint, with totals and the architecture; for a GGUF file,
// its metadata (keys, types, values) and tensors (type, GGUF dims, row-major shape, offset,
// bytes).
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/units.h"
#include "io/checkpoint.h"
#include "io/gguf.h"

namespace expo::cli {

namespace {
struct InspectArgs {
  std::string path, revision;
  bool json = false;
};

// A value as JSON: scalars as themselves (strings that are not UTF-8 get U+FFFD when dumped);
// arrays in full up to kJsonArrayItems, longer ones as their length and first items.
constexpr size_t kJsonArrayItems = 64;
constexpr size_t kJsonArrayHead = 8;

nlohmann::ordered_json value_json(const GgufValue& value) {
  nlohmann::ordered_json j;
  j["type"] = value.type_name();
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string> || !requires { v.size(); }) {
          j["value"] = v;
        } else {
          j["length"] = v.size();
          const size_t shown = v.size() > kJsonArrayItems ? kJsonArrayHead : v.size();
          auto items = nlohmann::ordered_json::array();
          for (size_t i = 0; i < shown; ++i)
            items.push_back(static_cast<typename T::value_type>(v[i]));
          j[shown == v.size() ? "value" : "head"] = std::move(items);
        }
      },
      value.storage());
  return j;
}

void run_gguf(const InspectArgs& args) {
  const GgufFile file(args.path);
  uint64_t parameters = 0, bytes = 0;
  for (const auto& t : file.tensors()) {
    parameters += t.num_elements();
    bytes += t.num_bytes;
  }
  const auto architecture = file.metadata().find("general.architecture");
  const std::string arch = architecture && architecture->holds<std::string>()
                               ? architecture->as<std::string>()
                               : std::string("(none)");
  if (args.json) {
    nlohmann::ordered_json j;
    j["path"] = args.path;
    j["format"] = "gguf";
    j["version"] = file.version();
    j["alignment"] = file.alignment();
    j["data_offset"] = file.contents().data_start;
    j["architecture"] = arch;
    j["parameters"] = parameters;
    j["bytes"] = bytes;
    j["metadata"] = nlohmann::ordered_json::array();
    for (const auto& e : file.metadata().entries()) {
      auto v = value_json(e.value);
      nlohmann::ordered_json entry{{"key", e.key}};
      entry.update(v);
      j["metadata"].push_back(std::move(entry));
    }
    j["tensors"] = nlohmann::ordered_json::array();
    for (const auto& t : file.tensors())
      j["tensors"].push_back({{"name", t.name},
                              {"type", std::string(ggml_type_name(t.type))},
                              {"dims", t.dims},
                              {"shape", t.shape()},
                              {"offset", t.offset},
                              {"bytes", t.num_bytes}});
    std::printf("%s\n",
                j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    return;
  }
  size_t key_width = 3, type_width = 4;
  for (const auto& e : file.metadata().entries()) {
    key_width = std::max(key_width, e.key.size());
    type_width = std::max(type_width, e.value.type_name().size());
  }
  std::printf("%-*s  %-*s  %s\n", static_cast<int>(key_width), "key", static_cast<int>(type_width),
              "type", "value");
  for (const auto& e : file.metadata().entries())
    std::printf("%-*s  %-*s  %s\n", static_cast<int>(key_width), e.key.c_str(),
                static_cast<int>(type_width), e.value.type_name().c_str(),
                e.value.to_display().c_str());
  size_t width = 4, dims_width = 4, shape_width = 5;
  for (const auto& t : file.tensors()) {
    width = std::max(width, t.name.size());
    dims_width = std::max(dims_width, t.dims_string().size());
    shape_width = std::max(shape_width, t.shape_string().size());
  }
  std::printf("\n%-*s  %-7s  %-*s  %-*s  %12s  %12s\n", static_cast<int>(width), "name", "type",
              static_cast<int>(dims_width), "dims", static_cast<int>(shape_width), "shape",
              "offset", "bytes");
  for (const auto& t : file.tensors())
    std::printf("%-*s  %-7s  %-*s  %-*s  %12llu  %12llu\n", static_cast<int>(width), t.name.c_str(),
                std::string(ggml_type_name(t.type)).c_str(), static_cast<int>(dims_width),
                t.dims_string().c_str(), static_cast<int>(shape_width), t.shape_string().c_str(),
                static_cast<unsigned long long>(t.offset),
                static_cast<unsigned long long>(t.num_bytes));
  std::printf("\nformat: GGUF version %u, alignment %u, data at byte %llu\n", file.version(),
              file.alignment(), static_cast<unsigned long long>(file.contents().data_start));
  std::printf("architecture: %s\n", arch.c_str());
  std::printf("metadata: %zu keys\n", file.metadata().size());
  std::printf("tensors: %zu\n", file.tensors().size());
  std::printf("parameters: %llu\n", static_cast<unsigned long long>(parameters));
  std::printf("bytes: %llu (%s)\n", static_cast<unsigned long long>(bytes),
              format_bytes(bytes).c_str());
}

bool looks_like_gguf(const std::string& path) {
  if (is_gguf_file(path)) return true;
  return path.size() > 5 && path.compare(path.size() - 5, 5, ".gguf") == 0 &&
         std::filesystem::is_regular_file(path);
}

void run(const InspectArgs& args) {
  if (looks_like_gguf(args.path)) {
    if (!args.revision.empty())
      usage_fail("--revision applies to a cached repo id, not a GGUF file");
    return run_gguf(args);
  }
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
      "List a checkpoint's tensors (name, dtype, shape), totals and architecture; for a GGUF\n"
      "file, its metadata and tensors (type, GGUF dims, row-major shape, offset, bytes).\n"
      "Example: expo inspect ./zephyr-7b-beta --json; expo inspect model.gguf");
  cmd->add_option("path", args->path,
                  "a model folder, a .safetensors or .gguf file, or a cached repo id")
      ->required();
  cmd->add_option("--revision", args->revision, "revision of a repo id in the Hugging Face cache");
  cmd->add_flag("--json", args->json, "machine-readable output");
  cmd->callback([args] { run(*args); });
}

}  // namespace expo::cli
