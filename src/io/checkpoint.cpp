#include "io/checkpoint.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "io/gguf.h"
#include "io/hf_cache.h"

namespace expo {

using nlohmann::json;

namespace {

const char* const kEmbeddingNames[] = {
    "model.embed_tokens.weight",
    "model.tok_embeddings.weight",
    "transformer.wte.weight",
    "gpt_neox.embed_in.weight",
    "embed_tokens.weight",
    "tok_embeddings.weight",
    "model.language_model.embed_tokens.weight",
    "transformer.word_embeddings.weight",
};
const char* const kOutputHeadNames[] = {
    "lm_head.weight",
    "output.weight",
    "embed_out.weight",
    "model.lm_head.weight",
};

json load_json(const fs::path& path) {
  try {
    return json::parse(read_text_file(path));
  } catch (const json::exception& e) {
    fail(path.string(), ": invalid JSON: ", e.what());
  }
}

// A shard name from an index must stay inside the model folder.
fs::path checked_shard_path(const fs::path& folder, const std::string& name,
                            const fs::path& index_path) {
  const fs::path rel(name);
  if (name.empty() || rel.is_absolute())
    fail(index_path.string(), ": shard name '", name, "' is not a relative file name");
  for (const auto& part : rel)
    if (part == "..") fail(index_path.string(), ": shard name '", name, "' leaves the folder");
  return folder / rel;
}

}  // namespace

bool is_embedding_name(const std::string& name) {
  return std::find(std::begin(kEmbeddingNames), std::end(kEmbeddingNames), name) !=
         std::end(kEmbeddingNames);
}

bool is_output_head_name(const std::string& name) {
  return std::find(std::begin(kOutputHeadNames), std::end(kOutputHeadNames), name) !=
         std::end(kOutputHeadNames);
}

const CheckpointTensor* find_embedding(const Checkpoint& checkpoint) {
  for (const char* name : kEmbeddingNames)
    if (const auto* t = checkpoint.find(name)) return t;
  return nullptr;
}

const CheckpointTensor* find_output_head(const Checkpoint& checkpoint) {
  for (const char* name : kOutputHeadNames)
    if (const auto* t = checkpoint.find(name)) return t;
  return nullptr;
}

namespace {
GgufCheckpointOpener gguf_opener = nullptr;
}  // namespace

void set_gguf_checkpoint_opener(GgufCheckpointOpener opener) { gguf_opener = opener; }

Checkpoint Checkpoint::from_parts(std::string spec, std::filesystem::path folder,
                                  std::vector<std::unique_ptr<SafetensorsFile>> files,
                                  nlohmann::json config, GgufForm form,
                                  std::shared_ptr<const void> keep) {
  Checkpoint ckpt;
  ckpt.spec_ = std::move(spec);
  ckpt.folder_ = std::move(folder);
  ckpt.files_ = std::move(files);
  for (const auto& file : ckpt.files_)
    for (const auto& info : file->tensors()) ckpt.tensors_.push_back({file.get(), &info});
  for (size_t i = 0; i < ckpt.tensors_.size(); ++i)
    if (!ckpt.by_name_.emplace(ckpt.tensors_[i].name(), i).second)
      fail("internal: ", ckpt.spec_, ": tensor '", ckpt.tensors_[i].name(), "' twice");
  ckpt.config_ = std::move(config);
  ckpt.gguf_ = std::move(form);
  ckpt.keep_ = std::move(keep);
  return ckpt;
}

Checkpoint Checkpoint::open(const std::string& spec, const std::string& revision) {
  {
    std::error_code ec;
    const fs::path p(spec);
    if (fs::is_regular_file(p, ec) && (p.extension() == ".gguf" || is_gguf_file(p))) {
      if (!gguf_opener)
        fail(spec, ": a GGUF file; this program was built without expo's GGUF reader");
      return gguf_opener(spec);
    }
  }
  Checkpoint ckpt;
  ckpt.spec_ = spec;
  std::error_code ec;
  fs::path path(spec);
  if (!fs::exists(path, ec)) {
    if (ec) fail(spec, ": cannot open the checkpoint: ", ec.message());  // a symlink loop, EACCES
    if (!looks_like_repo_id(spec)) fail(spec, ": no such file or folder");
    path = resolve_hf_snapshot(spec, revision);
  }

  fs::path index_path;
  std::vector<fs::path> single;
  if (fs::is_directory(path, ec)) {
    ckpt.folder_ = path;
    if (fs::exists(path / "model.safetensors.index.json")) {
      index_path = path / "model.safetensors.index.json";
    } else if (fs::exists(path / "model.safetensors")) {
      single.push_back(path / "model.safetensors");
    } else {
      std::string found;
      for (const auto& e : fs::directory_iterator(path, ec)) {
        const std::string n = e.path().filename().string();
        if (n.ends_with(".safetensors") || n.ends_with(".bin") || n.ends_with(".gguf"))
          found += " " + n;
      }
      fail(path.string(), ": no model.safetensors or model.safetensors.index.json",
           found.empty() ? std::string(" (no weight files at all)") : " (found:" + found + ")",
           "; expo reads Hugging Face safetensors checkpoints");
    }
  } else if (path.filename() == "model.safetensors.index.json") {
    index_path = path;
    ckpt.folder_ = path.parent_path();
  } else {
    if (!path.string().ends_with(".safetensors"))
      fail(path.string(), ": not a folder, a .safetensors file or an index.json");
    single.push_back(path);
  }

  // name -> file, in the order the files are opened.
  std::vector<std::pair<std::string, size_t>> wanted;
  if (!index_path.empty()) {
    const json index = load_json(index_path);
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      fail(index_path.string(), ": no \"weight_map\" object");
    std::map<std::string, size_t> file_ids;  // sorted shard names: shard order
    for (const auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string())
        fail(index_path.string(), ": weight_map entry of tensor '", name, "' is not a string");
      file_ids.emplace(file.get<std::string>(), 0);
    }
    if (file_ids.empty()) fail(index_path.string(), ": weight_map is empty");
    size_t id = 0;
    for (auto& [file, fid] : file_ids) {
      const fs::path shard = checked_shard_path(ckpt.folder_, file, index_path);
      if (!fs::exists(shard))
        fail(index_path.string(), ": names shard '", file, "', which does not exist in ",
             ckpt.folder_.string());
      ckpt.files_.push_back(std::make_unique<SafetensorsFile>(shard));
      fid = id++;
    }
    for (const auto& [name, file] : index["weight_map"].items())
      wanted.emplace_back(name, file_ids.at(file.get<std::string>()));
  } else {
    ckpt.files_.push_back(std::make_unique<SafetensorsFile>(single[0]));
  }

  if (index_path.empty()) {
    for (const auto& info : ckpt.files_[0]->tensors())
      ckpt.tensors_.push_back({ckpt.files_[0].get(), &info});
  } else {
    for (const auto& [name, fid] : wanted) {
      const SafetensorsFile* file = ckpt.files_[fid].get();
      const TensorInfo* info = file->find(name);
      if (!info)
        fail(index_path.string(), ": tensor '", name, "' is mapped to ",
             file->path().filename().string(), ", which does not contain it");
      ckpt.tensors_.push_back({file, info});
    }
    // The model's order: shard by shard, and within a shard by position in the file.
    std::map<const SafetensorsFile*, size_t> rank;
    for (size_t i = 0; i < ckpt.files_.size(); ++i) rank[ckpt.files_[i].get()] = i;
    std::sort(ckpt.tensors_.begin(), ckpt.tensors_.end(), [&](const auto& a, const auto& b) {
      if (a.file != b.file) return rank[a.file] < rank[b.file];
      return a.info->begin != b.info->begin ? a.info->begin < b.info->begin
                                            : a.info->end < b.info->end;
    });
  }
  for (size_t i = 0; i < ckpt.tensors_.size(); ++i) ckpt.by_name_[ckpt.tensors_[i].name()] = i;

  if (!ckpt.folder_.empty() && fs::exists(ckpt.folder_ / "config.json")) {
    ckpt.config_ = load_json(ckpt.folder_ / "config.json");
    if (!ckpt.config_->is_object())
      fail((ckpt.folder_ / "config.json").string(), ": not a JSON object");
  }
  return ckpt;
}

const CheckpointTensor* Checkpoint::find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

std::string Checkpoint::architecture() const {
  if (!config_) return "unknown (no config.json)";
  const auto it = config_->find("architectures");
  if (it != config_->end() && it->is_array() && !it->empty() && (*it)[0].is_string())
    return (*it)[0].get<std::string>();
  const auto type = config_->find("model_type");
  if (type != config_->end() && type->is_string()) return type->get<std::string>();
  return "unknown (config.json names no architecture)";
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t total = 0;
  for (const auto& t : tensors_) total += t.info->num_bytes();
  return total;
}

uint64_t Checkpoint::total_parameters() const {
  uint64_t total = 0;
  for (const auto& t : tensors_) total += t.info->num_elements();
  return total;
}

bool Checkpoint::ties_embeddings() const {
  if (config_) {
    const auto it = config_->find("tie_word_embeddings");
    if (it != config_->end() && it->is_boolean()) return it->get<bool>();
  }
  return find_output_head(*this) == nullptr && find_embedding(*this) != nullptr;
}

}  // namespace expo
