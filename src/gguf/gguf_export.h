#pragma once
// Writing a model as one GGUF file, streamed tensor by tensor: each GGUF tensor of the
// architecture's recipe (gguf/gguf_arch.h) is computed in float64 from its plan entries
// (theta1 + alpha * (theta1 - theta0) for a pair, exactly as `expo extrapolate` computes it; the
// tensor as it is for a single model), rearranged as llama.cpp reads it, and encoded once into
// the output type (F32, F16, BF16 rounded to nearest even, or Q8_0 from the float64 values
// directly). The tokenizer goes in the metadata (gguf/gguf_vocab.h), with general.name and the
// provenance (expo's version, alpha, the sources). The file is written beside its target and
// renamed into place only when complete.
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "io/ggml_type.h"
#include "io/gguf_writer.h"
#include "merge/plan.h"
#include "model/config.h"

namespace expo {

struct GgufExportOptions {
  std::filesystem::path output;  // model.gguf
  std::optional<GgmlType> type;  // F32, F16, BF16 or Q8_0; default: the source's 16-bit type
  bool force = false;            // replace an existing file
  bool allow_nonfinite = false;
  bool progress = false;
  std::string name;        // general.name (default: the output's stem)
  std::string alpha_text;  // empty for a conversion
  // Provenance: role ("sft", "aligned", "model") and what the user named.
  std::vector<std::pair<std::string, std::string>> sources;
};

// llama.cpp's general.file_type (enum llama_ftype) of a file whose matrices are of `type`.
uint32_t gguf_file_type(GgmlType type);

// What follows general.architecture in every file expo writes: general.name (options.name, else
// the output's stem), general.file_type, general.quantization_version when `quantized`, and the
// provenance (expo.version, expo.alpha when set, expo.source.<role>).
void add_gguf_provenance(GgufWriter& writer, const GgufExportOptions& options, uint32_t file_type,
                         bool quantized);

// Moves the finished file `temp` (in the output's staging folder) to options.output and syncs
// the folder.
void publish_gguf(const std::filesystem::path& temp, const GgufExportOptions& options);

// The GGUF types a user may ask for, by --gguf-type name (f32, f16, bf16, q8_0).
GgmlType parse_gguf_out_type(const std::string& text);

// Checks the output path before any work: a .gguf file that does not exist (or `force`).
void check_gguf_output(const GgufExportOptions& options);

struct GgufExportResult {
  uint64_t tensors = 0;
  uint64_t bytes = 0;
  GgmlType type = GgmlType::F16;
  std::vector<std::string> notes;  // what llama.cpp reads differently, and fallbacks
};

// Writes `plan` (every entry's output read as float64; its tensors named as Hugging Face names
// them) as `options.output`. `config` is the model's config, `tokenizer_folder` where its
// tokenizer files are.
GgufExportResult write_gguf(const Plan& plan, double alpha, const ModelConfig& config,
                            const std::filesystem::path& tokenizer_folder,
                            const GgufExportOptions& options, ThreadPool& pool);

// A plan that reads one checkpoint as it is (for `expo convert`).
Plan copy_plan(const Checkpoint& checkpoint);

}  // namespace expo
