#pragma once
// A Hugging Face checkpoint: one model's tensors, wherever they live. Accepts a folder with
// model.safetensors, a folder with model.safetensors.index.json and its shards, a single
// .safetensors file, or a repo id found in the local Hugging Face cache.
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/safetensors.h"

namespace expo {

struct CheckpointTensor {
  const SafetensorsFile* file;
  const TensorInfo* info;
  const std::string& name() const { return info->name; }
  const uint8_t* data() const { return file->data(*info); }
};

// What a checkpoint read from a GGUF file holds in llama.cpp's form that config.json cannot
// say (gguf/gguf_checkpoint.h reads GGUF files as checkpoints).
struct GgufForm {
  bool norms_hold_one = false;  // Gemma: the norm weights are 1 + w already, as llama.cpp stores
  // llama.cpp's rope_freqs (Llama 3's rope scaling): each rope frequency divided by its factor.
  std::vector<double> rope_freq_factors;
};

class Checkpoint;
// Opens a .gguf file as a checkpoint with Hugging Face names. The gguf layer, which knows
// llama.cpp's names, installs it (gguf/gguf_checkpoint.h: register_gguf_checkpoints); until
// then Checkpoint::open refuses GGUF files, saying so.
using GgufCheckpointOpener = Checkpoint (*)(const std::string& spec);
void set_gguf_checkpoint_opener(GgufCheckpointOpener opener);

class Checkpoint {
 public:
  // `spec` is a path or repo id; `revision` applies to repo ids only. A .gguf file (or any file
  // starting with GGUF's magic) goes to the GGUF opener.
  static Checkpoint open(const std::string& spec, const std::string& revision = "");
  // A checkpoint made from parts (the GGUF opener): `files` hold the tensors under their
  // Hugging Face names, `folder` the config and tokenizer files, `keep` whatever must live as
  // long as the checkpoint (a temporary folder).
  static Checkpoint from_parts(std::string spec, std::filesystem::path folder,
                               std::vector<std::unique_ptr<SafetensorsFile>> files,
                               nlohmann::json config, GgufForm form,
                               std::shared_ptr<const void> keep);

  const std::string& spec() const { return spec_; }
  // The folder whose other files (config, tokenizer) belong to this model; empty when the
  // checkpoint is a lone .safetensors file.
  const std::filesystem::path& folder() const { return folder_; }
  const std::vector<CheckpointTensor>& tensors() const { return tensors_; }
  const CheckpointTensor* find(const std::string& name) const;
  // config.json, if the folder has one.
  const std::optional<nlohmann::json>& config() const { return config_; }
  std::string architecture() const;
  uint64_t total_bytes() const;
  uint64_t total_parameters() const;
  size_t num_files() const { return files_.size(); }
  // Whether the model shares its input embedding with its output head: config's
  // tie_word_embeddings when given, else true exactly when there is no output head tensor.
  bool ties_embeddings() const;
  // Set when the checkpoint was read from a GGUF file (spec() is the file).
  const std::optional<GgufForm>& gguf() const { return gguf_; }

 private:
  std::string spec_;
  std::filesystem::path folder_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<CheckpointTensor> tensors_;
  std::unordered_map<std::string, size_t> by_name_;
  std::optional<nlohmann::json> config_;
  std::optional<GgufForm> gguf_;
  std::shared_ptr<const void> keep_;
};

// Well-known names of the input embedding and output head across architectures.
bool is_embedding_name(const std::string& name);
bool is_output_head_name(const std::string& name);
// The embedding tensor in `checkpoint`, or nullptr.
const CheckpointTensor* find_embedding(const Checkpoint& checkpoint);
const CheckpointTensor* find_output_head(const Checkpoint& checkpoint);

}  // namespace expo
