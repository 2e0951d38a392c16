#include "pipeline/run_fingerprint.h"

#include <expo/version.h>
#include <charconv>

#include "core/error.h"
#include "core/fs.h"
#include "io/checkpoint_identity.h"

namespace expo {

namespace fs = std::filesystem;

std::string setting_number(double value) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, r.ptr);
}

void add_version_setting(Fingerprint& f) { f.add("expo version", EXPO_VERSION); }

void add_prompt_settings(Fingerprint& f, const PromptSet& prompts) {
  ContentHash hash;
  for (const auto& p : prompts.prompts)
    hash.add_field(p.id_text).add_field(p.fields.dump()).add_field(p.messages.dump());
  f.add("--prompts", str(prompts.prompts.size(), " prompts, content ", hash.hex()));
}

void add_generation_settings(Fingerprint& f, const GenerationOptions& gen) {
  const SamplingParams& s = gen.sampling;
  f.add("--max-new-tokens", std::to_string(gen.max_new_tokens));
  f.add("--max-context", gen.context_length ? std::to_string(gen.context_length) : "the model's");
  f.add("--temperature", setting_number(s.temperature));
  f.add("--top-k", std::to_string(s.top_k));
  f.add("--top-p", setting_number(s.top_p));
  f.add("--min-p", setting_number(s.min_p));
  f.add("--presence-penalty", setting_number(s.presence_penalty));
  f.add("--frequency-penalty", setting_number(s.frequency_penalty));
  f.add("--repetition-penalty", setting_number(s.repetition_penalty));
  f.add("--seed", std::to_string(s.seed));
  std::string stops;
  for (int32_t id : gen.stop_ids) {
    if (!stops.empty()) stops += ',';
    stops += std::to_string(id);
  }
  f.add("stop tokens", stops.empty() ? "none" : stops);
}

void add_tokenizer_setting(Fingerprint& f, const std::string& name, const fs::path& folder) {
  ContentHash hash;
  std::error_code ec;
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                           "chat_template.json", "special_tokens_map.json"}) {
    const fs::path path = folder / file;
    hash.add_field(file).add_field(fs::exists(path, ec) ? read_text_file(path) : "");
  }
  // A GGUF file's tokenizer files are written to a new temporary folder each time it is opened
  // (gguf/gguf_checkpoint.h), which names the file it came from.
  const fs::path source = folder / ".expo-gguf-source";
  const fs::path location = fs::exists(source, ec)
                                ? fs::path(read_text_file(source))
                                : fs::weakly_canonical(fs::absolute(folder, ec), ec);
  f.add(name, str(ec ? folder.string() : location.string(), ", content ", hash.hex()));
}

void add_checkpoint_setting(Fingerprint& f, const std::string& name, const Checkpoint& checkpoint) {
  f.add(name, checkpoint_identity(checkpoint));
}

void add_adapter_settings(Fingerprint& f, const ExpoPair& pair) {
  if (const PeftAdapter* a = pair.sft_adapter())
    f.add("--sft adapter_config.json", read_text_file(a->config_path()));
  if (const PeftAdapter* a = pair.aligned_adapter())
    f.add("--aligned adapter_config.json", read_text_file(a->config_path()));
}

}  // namespace expo
