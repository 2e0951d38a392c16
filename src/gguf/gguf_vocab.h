#pragma once
// A Hugging Face tokenizer (tokenizer.json, tokenizer_config.json, special_tokens_map.json,
// chat_template.jinja) as GGUF metadata, the way llama.cpp reads it:
//   - byte-level BPE (a ByteLevel pre-tokenizer) as tokenizer.ggml.model "gpt2": the tokens in
//     id order, their types (normal, control for special added tokens, user-defined for the
//     other added tokens), the merges, and tokenizer.ggml.pre naming llama.cpp's pre-tokenizer
//     with the same split: "gpt-2" (ByteLevel's own regex), "llama-bpe" (Llama 3's, with
//     ignore_merges), "dbrx" (the same regex without), "qwen2" (digits one by one);
//   - SentencePiece-style BPE (byte_fallback, "▁" for spaces) as "llama": tokens, scores that
//     rank the pieces as tokenizer.json's merges build them (llama.cpp merges by score), types
//     (byte tokens <0xNN> as byte), and tokenizer.ggml.add_space_prefix;
// plus the bos/eos/unk/padding ids, add_bos_token/add_eos_token and the chat template.
// Ids the tokenizer does not fill up to the model's vocab_size become "[PAD<id>]" tokens of
// type unused, as llama.cpp's converter writes them. Any other tokenizer is refused by name.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace expo {

// The Split regexes of llama.cpp's pre-tokenizers, as tokenizer.json files write them: Llama 3's
// (cl100k_base's; llama.cpp's "llama-bpe", "dbrx" and "smaug-bpe") and Qwen2's (the same with
// single digits).
inline constexpr const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
inline constexpr const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class GgufTokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

struct GgufVocab {
  GgufMetadata metadata{"GGUF tokenizer"};
  std::vector<std::string> notes;  // where llama.cpp may tokenize differently
};

// The tokenizer of `folder` for a model of `vocab_size` rows; `config_bos`/`config_eos` are
// config.json's ids, used when the tokenizer files name none. Errors name the file.
GgufVocab gguf_vocab(const std::filesystem::path& folder, uint64_t vocab_size,
                     std::optional<int32_t> config_bos, std::vector<int32_t> config_eos);

}  // namespace expo
