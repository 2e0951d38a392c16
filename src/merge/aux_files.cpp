#include "merge/aux_files.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

namespace expo {

bool is_weight_file(const std::string& name) {
  static const char* const kWeightSuffixes[] = {
      ".safetensors", ".safetensors.index.json",
      ".bin",         ".bin.index.json",
      ".pt",          ".pth",
      ".ckpt",        ".h5",
      ".msgpack",     ".msgpack.index.json",
      ".gguf",        ".onnx",
      ".ot",          ".tflite",
  };
  for (const char* suffix : kWeightSuffixes)
    if (name.ends_with(suffix)) return true;
  return false;
}

std::vector<fs::path> auxiliary_files(const fs::path& folder) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // .git, .cache, editor files
    if (!e.is_regular_file()) continue;            // follows symlinks (HF cache snapshots)
    if (is_weight_file(name) || name == "README.md") continue;
    files.push_back(e.path());
  }
  if (ec) fail(folder.string(), ": cannot list folder: ", ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

std::string torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::BF16:
      return "bfloat16";
    case DType::F16:
      return "float16";
    case DType::F32:
      return "float32";
    case DType::F64:
      return "float64";
    default:
      return std::string(dtype_name(dtype));
  }
}

void copy_auxiliary_files(const fs::path& folder, const fs::path& out, std::optional<DType> dtype) {
  for (const auto& file : auxiliary_files(folder)) {
    const fs::path target = out / file.filename();
    if (dtype && file.filename() == "config.json") {
      nlohmann::ordered_json config;
      try {
        config = nlohmann::ordered_json::parse(read_text_file(file));
      } catch (const nlohmann::json::exception& e) {
        fail(file.string(), ": invalid JSON: ", e.what());
      }
      config["torch_dtype"] = torch_dtype_name(*dtype);
      write_text_file(target, config.dump(2) + "\n");
      continue;
    }
    copy_file_contents(file, target);
  }
}

bool is_tokenizer_file(const std::string& name) {
  static const char* const kNames[] = {
      "tokenizer.json",  "tokenizer_config.json", "special_tokens_map.json",
      "tokenizer.model", "added_tokens.json",     "vocab.json",
      "merges.txt",      "chat_template.jinja",   "chat_template.json",
  };
  for (const char* n : kNames)
    if (name == n) return true;
  return false;
}

void copy_tokenizer_files(const fs::path& folder, const fs::path& out) {
  for (const auto& file : auxiliary_files(folder))
    if (is_tokenizer_file(file.filename().string())) {
      std::error_code ignored;
      fs::remove(out / file.filename(), ignored);
      copy_file_contents(file, out / file.filename());
    }
}

bool is_expo_model_folder(const std::filesystem::path& dir) {
  std::ifstream in(dir / "README.md", std::ios::binary);
  if (!in) return false;
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  return head.rfind("---\n", 0) == 0 &&
         head.find("\n- expo\n- model-extrapolation\n") != std::string::npos &&
         head.find("# ExPO model (alpha = ") != std::string::npos;
}

std::string render_model_card(const ModelCard& card) {
  std::string rules;
  for (const auto& r : card.rules) rules += "\n  - `" + r + "`";
  std::string s;
  s += "---\n";
  s += "base_model: " + (card.adapter_output ? card.sft : card.aligned) + "\n";
  if (card.adapter_output) s += "library_name: peft\n";
  s += "tags:\n- expo\n- model-extrapolation\n";
  s += "---\n\n";
  s += "# ExPO model (alpha = " + card.alpha + ")\n\n";
  if (card.adapter_output) {
    s +=
        "This PEFT LoRA adapter was made by **model extrapolation (ExPO)** from an SFT model and a "
        "LoRA adapter trained on it (theta1 = theta0 + s B A), without any training: its lora_B "
        "is the aligned adapter's times (1 + alpha), so that, applied to the SFT model,\n\n";
    s += "    theta2 = theta1 + alpha * (theta1 - theta0) = theta0 + (1 + alpha) s B A\n\n";
  } else {
    s += "This model was made by **model extrapolation (ExPO)** from two checkpoints of the same "
         "model, without any training:\n\n";
    s += "    theta2 = theta1 + alpha * (theta1 - theta0)\n\n";
  }
  if (!card.base.empty())
    s += "- the base model both LoRA adapters were trained on: `" + card.base + "`\n";
  s += "- theta0, the SFT " + std::string(card.base.empty() ? "checkpoint" : "adapter") + ": `" +
       card.sft + "`\n";
  s += "- theta1, the aligned (DPO/RLHF) " +
       std::string(card.aligned.ends_with("(PEFT adapter)") ? "adapter" : "checkpoint") + ": `" +
       card.aligned + "`\n";
  s += "- alpha: " + card.alpha + "\n";
  if (!rules.empty()) s += "- per-tensor alpha rules (first match wins):" + rules + "\n";
  s +=
      "- weights: " + (card.dtype.empty() ? std::string("the aligned model's dtype") : card.dtype) +
      ", each value computed in float64 and rounded once to nearest-even\n\n";
  if (card.adapter_output)
    s += "adapter_config.json and the other files are the aligned adapter's. Load it as you would "
         "load that adapter, on the SFT model (PEFT, or vLLM's --enable-lora).\n\n";
  else if (card.aligned.ends_with("(PEFT adapter)"))
    s += "config.json is the " + std::string(card.base.empty() ? "SFT" : "base") +
         " model's, the tokenizer files the aligned adapter's when it ships them. Load it as you "
         "would load the SFT model.\n\n";
  else
    s += "Every other file (config, tokenizer, chat template) is the aligned model's. Load it as "
         "you would load the aligned model.\n\n";
  s += "Made with expo " + card.version + ":\n\n```\n" + card.command + "\n```\n\n";
  s += "Method: Zheng et al., \"Weak-to-Strong Extrapolation Expedites Alignment\" "
       "(arXiv:2404.16792). Too large an alpha breaks a model; compare candidates by reward "
       "before you use one.\n";
  return s;
}

}  // namespace expo
