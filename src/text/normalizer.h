#pragma once
// tokenizer.json "normalizer": NFC, NFD, NFKC, NFKD, Replace, Prepend and Sequence, applied to
// each stretch of text between added tokens before pre-tokenization.
#include <memory>
#include <string>

#include "core/json_reader.h"
#include "text/regex.h"

namespace expo::text {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// nullptr for a null normalizer; an error naming the JSON path for anything unsupported.
std::unique_ptr<Normalizer> parse_normalizer(const JsonReader& reader, const Json& j,
                                             const std::string& path);

// A tokenizer.json "pattern" ({"String": s} or {"Regex": r}) as a Regex.
Regex parse_pattern(const JsonReader& reader, const Json& j, const std::string& path);

// Replaces every match of `regex` in `text` by `content`.
std::string replace_all(const Regex& regex, const std::string& text, const std::string& content);

}  // namespace expo::text
