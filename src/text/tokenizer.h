#pragma once
// Hugging Face tokenizers, read from a model folder's tokenizer.json (with tokenizer_config.json
// and special_tokens_map.json), giving the ids Python transformers gives: byte-level BPE
// (GPT-2, Llama-3, Qwen2/3) and SentencePiece-style BPE (Llama-2, Mistral, Gemma). Anything in
// tokenizer.json that expo does not implement is an error naming the file and the JSON path.
//
// What transformers adds on top of the tokenizers crate, and expo does too:
//  - LlamaTokenizer(Fast), CodeLlamaTokenizer(Fast) and GemmaTokenizer(Fast) rebuild the
//    post-processor as "[bos] $A [eos]" from add_bos_token (default true) and add_eos_token
//    (default false) in tokenizer_config.json;
//  - decode() applies clean_up_tokenization_spaces when tokenizer_config.json sets it;
//  - split_special_tokens: true leaves special tokens unmatched in the text;
//  - add_prefix_space in tokenizer_config.json overrides a ByteLevel pre-tokenizer's.
// Text must be valid UTF-8: encode() refuses anything else with the offset of the first bad
// byte. Thread-safe: one Tokenizer may encode and decode from many threads at once.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace expo {

class Tokenizer {
 public:
  static Tokenizer load(const std::filesystem::path& folder);

  // add_special_tokens: what transformers adds by default (BOS for Llama/Gemma, nothing for
  // Qwen), from the post-processor.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // Ids outside the vocabulary are an error naming the id and its position.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // throws for ids outside the vocabulary
  bool is_special(int32_t id) const;          // an added token marked special
  std::optional<std::string> bos_token() const;
  std::optional<std::string> eos_token() const;
  // Number of ids, added tokens included (len(tokenizer) in transformers).
  size_t vocab_size() const;
  // tokenizer_config.json as read (an empty object when the folder has none), for the chat
  // template code.
  const nlohmann::json& config() const;
  const std::filesystem::path& folder() const;

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace expo
