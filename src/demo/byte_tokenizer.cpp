#include "demo/byte_tokenizer.h"

#include <nlohmann/json.hpp>
#include <string>

#include "core/fs.h"
#include "text/pre_tokenizer.h"

namespace expo {

namespace {

using nlohmann::ordered_json;

ordered_json added_token(int32_t id, const std::string& content) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", true}};
}

}  // namespace

void write_byte_tokenizer(const std::filesystem::path& dir) {
  using Ids = ByteTokenizerIds;
  const std::string bos = "<|begin_of_text|>", im_start = "<|im_start|>", im_end = "<|im_end|>";
  ordered_json vocab = ordered_json::object();
  for (int b = 0; b < 256; ++b) vocab[text::byte_level_char(static_cast<unsigned char>(b))] = b;
  const ordered_json byte_level{{"type", "ByteLevel"},
                                {"add_prefix_space", false},
                                {"trim_offsets", true},
                                {"use_regex", true}};
  ordered_json tokenizer{
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       {added_token(Ids::kBos, bos), added_token(Ids::kImStart, im_start),
        added_token(Ids::kImEnd, im_end)}},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair",
         {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
          {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}},
          {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens", {{bos, {{"id", bos}, {"ids", {Ids::kBos}}, {"tokens", {bos}}}}}}}},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", ordered_json::array()}}}};
  const std::string chat_template =
      "{{ bos_token }}{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
      "{{ message['content'] }}<|im_end|>\n{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  ordered_json config{{"add_bos_token", true},
                      {"add_eos_token", false},
                      {"bos_token", bos},
                      {"eos_token", im_end},
                      {"pad_token", im_end},
                      {"clean_up_tokenization_spaces", false},
                      {"model_max_length", 2048},
                      {"tokenizer_class", "PreTrainedTokenizerFast"},
                      {"chat_template", chat_template}};
  ordered_json special{{"bos_token", bos}, {"eos_token", im_end}, {"pad_token", im_end}};
  std::filesystem::create_directories(dir);
  write_text_file(dir / "tokenizer.json", tokenizer.dump(2) + "\n");
  write_text_file(dir / "tokenizer_config.json", config.dump(2) + "\n");
  write_text_file(dir / "special_tokens_map.json", special.dump(2) + "\n");
}

}  // namespace expo
