#pragma once
// A small but real Hugging Face tokenizer, written from nothing: byte-level BPE over the 256
// bytes (no merges), three special tokens and a ChatML chat template. The demo and the tests
// pair it with random models, since no tokenizer can be downloaded here; every file it writes
// is what transformers' AutoTokenizer reads (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json).
//
// Ids: 0..255 are the bytes (GPT-2's byte-to-character map), then
//   256 <|begin_of_text|>  bos, added by encode(add_special_tokens) and by the template
//   257 <|im_start|>
//   258 <|im_end|>         eos and end of turn
// Template: {{ bos_token }} then "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message, and
// "<|im_start|>assistant\n" for add_generation_prompt.
#include <cstdint>
#include <filesystem>

namespace expo {

struct ByteTokenizerIds {
  static constexpr int32_t kBos = 256;
  static constexpr int32_t kImStart = 257;
  static constexpr int32_t kImEnd = 258;
  static constexpr int32_t kVocabSize = 259;
};

// Writes the three files into `dir` (created when missing); refuses to overwrite them.
void write_byte_tokenizer(const std::filesystem::path& dir);

}  // namespace expo
