#pragma once
// The demo's inputs, written by `expo demo`: a small Llama SFT/aligned pair (two shards, BF16),
// a Llama reward model (demo_models.h: random weights with planted directions), the byte-level
// BPE tokenizer with a ChatML template beside each (byte_tokenizer.h), and a prompt set of the
// kind AlpacaEval asks.
#include <cstddef>
#include <filesystem>

namespace expo {

struct DemoInputs {
  std::filesystem::path sft, aligned, reward;  // model folders
  std::filesystem::path prompts;               // JSONL, {"id", "prompt"} per line
};

// Writes the inputs under `root` (which must not hold them already).
DemoInputs write_demo_inputs(const std::filesystem::path& root, size_t prompt_count);

// True when `root` looks like a folder `expo demo` wrote (its sft/, aligned/ and reward/ model
// folders are there), which `expo demo --force` may replace.
bool is_demo_folder(const std::filesystem::path& root);

}  // namespace expo
