#pragma once
// The inverse of gguf/gguf_vocab.h: a GGUF file's tokenizer metadata (the keys llama.cpp's
// converter writes, and gguf_vocab too) as the Hugging Face files expo's tokenizer reads
// (tokenizer.json, tokenizer_config.json), so that a model given only as a .gguf file can be
// run. Two vocabularies are rebuilt:
//   - tokenizer.ggml.model "gpt2" (byte-level BPE): the tokens in id order and the merges as
//     they are, ByteLevel pre-tokenization after the Split regex that tokenizer.ggml.pre names
//     (llama.cpp's table in src/llama-vocab.cpp: "gpt-2" and the names that share GPT-2's regex,
//     "llama-bpe" (Llama 3's regex, with ignore_merges), "dbrx"/"smaug-bpe" (the same regex
//     without), "qwen2" (digits one by one, with Qwen's NFC), "smollm"/"starcoder" (digits one
//     by one, then GPT-2's regex)); any other name is refused by name;
//   - "llama" (SentencePiece-style BPE with byte_fallback): the tokens, and merges rebuilt from
//     the vocabulary and the scores as transformers' SentencePieceExtractor does (every split of
//     a piece into two pieces of the vocabulary, ordered by the merged piece's score, highest
//     first; then by the piece's id and the ids of the two parts), "▁" for spaces, a "▁"
//     prepended when tokenizer.ggml.add_space_prefix (default true), <0xNN> byte tokens.
// Tokens of type control or unknown become special added tokens, user-defined ones non-special
// added tokens; ids the tokenizer never produces ("[PAD<id>]", type unused) stay in the
// vocabulary so that every id keeps its token. tokenizer_config.json gets the bos/eos/unk/pad
// tokens, add_bos_token/add_eos_token (llama.cpp's defaults when absent), the chat template and
// model_max_length (<arch>.context_length); a TemplateProcessing post-processor adds the BOS/EOS.
// Everything else (tokenizer.ggml.model "bert", "t5", "rwkv", ..., missing or inconsistent keys,
// merges naming pieces that are not tokens) is refused with an error naming the file and key.
#include <string>
#include <vector>

#include "io/gguf.h"

namespace expo {

struct GgufTokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
  std::vector<std::string> notes;  // where the result may differ from the original tokenizer
};

// `label` names the GGUF file in errors.
GgufTokenizerFiles gguf_tokenizer_files(const GgufMetadata& metadata, const std::string& label);

// The merges a SentencePiece BPE vocabulary implies, as pairs of token ids, in rank order:
// every split of each piece with `mergeable[id]` into two tokens of `tokens` (at UTF-8
// character boundaries), ordered by the piece's score (highest first), then the piece's id,
// then the ids of the left and right parts. Exposed for tests.
std::vector<std::pair<int32_t, int32_t>> spm_merges_from_scores(
    const std::vector<std::string>& tokens, const std::vector<float>& scores,
    const std::vector<bool>& mergeable);

}  // namespace expo
