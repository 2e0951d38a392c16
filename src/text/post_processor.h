#pragma once
// tokenizer.json "post_processor": TemplateProcessing (BOS/EOS around the sequence), ByteLevel
// (it only trims offsets, which expo does not report) and Sequence. Only the single-sequence
// template is applied; pair templates are read and checked.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json_reader.h"

namespace expo::text {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;
};

// `id_exists` tells whether a special token id is in the vocabulary.
std::unique_ptr<PostProcessor> parse_post_processor(const JsonReader& reader, const Json& j,
                                                    const std::string& path,
                                                    const std::function<bool(int64_t)>& id_exists);

// "bos $A eos" as transformers' LlamaTokenizerFast/GemmaTokenizerFast build it.
std::unique_ptr<PostProcessor> make_template(std::optional<int32_t> bos,
                                             std::optional<int32_t> eos);

}  // namespace expo::text
