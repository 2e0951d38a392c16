#pragma once
// tokenizer.json "pre_tokenizer": Split (regex or string, every delimiter behaviour, invert),
// ByteLevel (GPT-2 byte-to-unicode mapping, optional prefix space and GPT-2 regex), Metaspace
// and Sequence. Each splits pieces of normalized text into the words the model encodes.
#include <memory>
#include <string>
#include <vector>

#include "core/json_reader.h"

namespace expo::text {

struct Piece {
  std::string text;
  bool at_input_start = false;  // begins at byte 0 of the encoded text (Metaspace "first")
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their splits; empty splits are dropped (as the crate does).
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const JsonReader& reader, const Json& j,
                                                  const std::string& path);

// transformers' add_prefix_space override (tokenizer_config.json): sets it when `p` is a
// ByteLevel pre-tokenizer and returns whether it was one.
bool set_byte_level_prefix_space(PreTokenizer& p, bool add_prefix_space);

// GPT-2's byte-to-unicode table: the UTF-8 text of the character that stands for byte b.
const std::string& byte_level_char(unsigned char b);
// The inverse: byte for a code point of that table, or -1.
int byte_level_byte(char32_t c);

}  // namespace expo::text
