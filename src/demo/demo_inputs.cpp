#include "demo/demo_inputs.h"

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "demo/byte_tokenizer.h"
#include "demo/demo_models.h"

namespace expo {

namespace fs = std::filesystem;

namespace {

// A small prompt set of the kind AlpacaEval asks.
const char* const kPrompts[] = {
    "Give three tips for staying healthy.",
    "What are the three primary colors?",
    "Describe the structure of an atom.",
    "How can we reduce air pollution?",
    "Explain why the sky is blue to a five-year-old.",
    "Write a haiku about autumn rain.",
    "What is the capital of Australia, and why was it chosen?",
    "Summarize the plot of Romeo and Juliet in two sentences.",
    "Write a Python function that reverses a string.",
    "What are the pros and cons of remote work?",
    "Translate 'good morning, how are you?' into French and German.",
    "Suggest a name for a coffee shop next to a library.",
    "How do vaccines train the immune system?",
    "Write a polite email declining a meeting invitation.",
    "Explain the difference between weather and climate.",
    "What should I pack for a three-day hiking trip?",
    "Why do cats purr?",
    "Give me a recipe for a quick vegetarian dinner.",
    "What is the Pythagorean theorem? Give an example.",
    "Write a limerick about a forgetful robot.",
    "How does compound interest work?",
    "List five uses for a paperclip other than holding paper.",
    "What causes the seasons on Earth?",
    "Explain recursion with a simple example.",
    "Describe the taste of a lemon to someone who has never had one.",
    "What are good habits for learning a new language?",
    "Why is sleep important?",
    "Write a two-line motivational quote for Monday morning.",
    "How do airplanes stay in the air?",
    "What is the difference between a virus and a bacterium?",
    "Plan a one-day itinerary for a rainy day in London.",
    "Explain what a black hole is in one paragraph.",
};

void write_prompts(const fs::path& path, size_t count) {
  std::string text;
  const size_t available = sizeof kPrompts / sizeof kPrompts[0];
  for (size_t i = 0; i < count; ++i)
    text += nlohmann::json{{"id", i}, {"prompt", kPrompts[i % available]}}.dump() + "\n";
  write_text_file(path, text);
}

}  // namespace

DemoInputs write_demo_inputs(const fs::path& root, size_t prompt_count) {
  DemoInputs in{root / "sft", root / "aligned", root / "reward", root / "prompts.jsonl"};
  RandomLlamaSpec spec;
  spec.layers = 4;
  spec.hidden = 128;
  spec.intermediate = 344;
  spec.heads = 8;
  spec.kv_heads = 4;
  spec.vocab = ByteTokenizerIds::kVocabSize;
  spec.bos_id = ByteTokenizerIds::kBos;
  spec.eos_id = ByteTokenizerIds::kImEnd;
  spec.max_shard_size = 1'000'000;  // two shards, to show sharded input
  write_demo_pair(in.sft, in.aligned, spec, 42);
  RandomLlamaSpec reward = spec;
  reward.layers = 2;
  write_demo_reward_model(in.reward, reward, 7);
  for (const auto& dir : {in.sft, in.aligned, in.reward}) write_byte_tokenizer(dir);
  write_prompts(in.prompts, prompt_count);

  return in;
}

bool is_demo_folder(const std::filesystem::path& root) {
  std::error_code ec;
  for (const char* name : {"sft", "aligned", "reward"})
    if (!std::filesystem::is_regular_file(root / name / "config.json", ec)) return false;
  return true;
}

}  // namespace expo
