#pragma once
// tokenizer.json "decoder": ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace and
// Sequence, each the crate's decode_chain over the list of token strings.
#include <memory>
#include <string>
#include <vector>

#include "core/json_reader.h"

namespace expo::text {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

std::unique_ptr<Decoder> parse_decoder(const JsonReader& reader, const Json& j,
                                       const std::string& path);

}  // namespace expo::text
