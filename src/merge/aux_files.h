#pragma once
// The files that make a folder of weights a model a user can load: config, generation config,
// tokenizer files and chat template are copied from the aligned model's folder; a README.md
// model card says what the folder is and how it was made.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace expo {

// Whether a file of a model folder holds weights (and so is not copied as-is).
bool is_weight_file(const std::string& file_name);

// Top-level files of `folder` that are not weights and not the original model card.
std::vector<std::filesystem::path> auxiliary_files(const std::filesystem::path& folder);

// Copies them into `out`. config.json gets torch_dtype rewritten when `dtype` is set.
void copy_auxiliary_files(const std::filesystem::path& folder, const std::filesystem::path& out,
                          std::optional<DType> dtype);

// Copies the tokenizer files of `folder` (tokenizer.json, tokenizer_config.json, chat
// templates, ...) into `out`, replacing those there: an adapter that ships its own tokenizer.
void copy_tokenizer_files(const std::filesystem::path& folder, const std::filesystem::path& out);
bool is_tokenizer_file(const std::string& file_name);

struct ModelCard {
  std::string sft;
  std::string aligned;
  std::string base;             // --base of two adapters
  bool adapter_output = false;  // the folder is a scaled PEFT adapter
  std::string alpha;
  std::vector<std::string> rules;  // "REGEX=ALPHA"
  std::string dtype;               // empty: the aligned model's
  std::string command;
  std::string version;
};
std::string render_model_card(const ModelCard& card);

// True when `dir` holds a README.md that render_model_card wrote: a model folder expo made,
// which --force may replace.
bool is_expo_model_folder(const std::filesystem::path& dir);

// torch's name for a dtype ("bfloat16"), as config.json's torch_dtype spells it.
std::string torch_dtype_name(DType dtype);

}  // namespace expo
