// The pieces of the search pipeline that are not the engine: the demo tokenizer, what the
// reward model reads, answer statistics, stop ids, command templates and server processes.
#include <gtest/gtest.h>

#include <signal.h>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "demo/byte_tokenizer.h"
#include "demo/demo_models.h"
#include "eval/prompt_set.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "pipeline/local_answers.h"
#include "pipeline/reward_scores.h"
#include "pipeline/server_process.h"
#include "test_util.h"
#include "text/prompt_encoder.h"
#include "text/tokenizer.h"

namespace expo {
namespace {

using testing::TempDir;
using Ids = ByteTokenizerIds;

class ByteTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override { write_byte_tokenizer(dir.path()); }
  TempDir dir;
};

TEST_F(ByteTokenizerTest, EncodesBytesWithBosAndRoundTrips) {
  const Tokenizer t = Tokenizer::load(dir.path());
  EXPECT_EQ(t.vocab_size(), static_cast<size_t>(Ids::kVocabSize));
  const std::string text = "h\xC3\xA9llo, \xE4\xB8\x96\xE7\x95\x8C!\n\t  x";
  std::vector<int32_t> expected{Ids::kBos};
  for (unsigned char c : text) expected.push_back(c);
  EXPECT_EQ(t.encode(text, true), expected);
  EXPECT_EQ(t.encode(text, false), std::vector<int32_t>(expected.begin() + 1, expected.end()));
  EXPECT_EQ(t.decode(expected, true), text);
  // Special tokens in the text are matched as such.
  EXPECT_EQ(t.encode("<|im_end|>a", false), (std::vector<int32_t>{Ids::kImEnd, 'a'}));
}

TEST_F(ByteTokenizerTest, ChatTemplateAndStopIds) {
  const PromptEncoder encoder(dir.path());
  ASSERT_TRUE(encoder.has_chat_template());
  const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])");
  EXPECT_EQ(
      encoder.render(messages, true),
      "<|begin_of_text|><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
      "<|im_start|>assistant\n");
  const auto ids = encoder.encode_messages(messages, true);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), Ids::kBos), 1);  // never doubled
  EXPECT_EQ(ids.front(), Ids::kBos);
  const auto stops = encoder.stop_ids();
  EXPECT_NE(std::find(stops.begin(), stops.end(), Ids::kImEnd), stops.end());
  // Ids past the tokenizer's vocabulary (a padded embedding) are skipped, as HF does.
  EXPECT_EQ(encoder.decode_answer(std::vector<int32_t>{'o', 300, 'k', Ids::kImEnd}), "ok");
}

Prompt text_prompt(const std::string& text, int id) {
  return prompt_from_json(nlohmann::json{{"id", id}, {"prompt", text}}, 0, "test");
}

TEST_F(ByteTokenizerTest, RewardInputIsTheWholeExchangeInTheRewardTemplate) {
  const PromptEncoder encoder(dir.path());
  Answer a;
  a.prompt =
      prompt_from_json(nlohmann::json{{"question_id", 7}, {"turns", {"Q1", "Q2"}}}, 0, "test");
  a.turns = {"A1", "A2"};
  const auto ids = encode_for_reward(encoder, a);
  const std::string expected =
      "<|begin_of_text|><|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
      "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\nA2<|im_end|>\n";
  EXPECT_EQ(ids, encoder.tokenizer().encode(expected, false));
  EXPECT_EQ(std::count(ids.begin(), ids.end(), Ids::kBos), 1);
  Answer empty;
  empty.prompt = text_prompt("x", 1);
  EXPECT_THROW(encode_for_reward(encoder, empty), Error);
}

TEST_F(ByteTokenizerTest, AnswerStatistics) {
  const Tokenizer t = Tokenizer::load(dir.path());
  std::vector<Answer> answers(3);
  answers[0].prompt = text_prompt("a", 0);
  answers[0].turns = {"h\xC3\xA9llo"};  // 5 code points, 6 bytes
  answers[0].finish_reasons = {"stop"};
  answers[0].output_tokens = {9};  // the engine's count wins over the tokenizer's
  answers[1].prompt = text_prompt("b", 1);
  answers[1].turns = {"abc"};  // no counts: the tokenizer counts 3 byte tokens
  answers[1].finish_reasons = {"length"};
  answers[2].prompt = text_prompt("c", 2);
  answers[2].turns = {"xy"};
  const std::vector<double> rewards{1.5, -0.5, std::nan("")};
  const AlphaResult r = answers_result(0.3, answers, rewards, &t);
  EXPECT_EQ(r.alpha, 0.3);
  EXPECT_EQ(r.ids, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(r.answer_tokens, (std::vector<double>{9, 3, 2}));
  EXPECT_EQ(r.answer_chars, (std::vector<double>{5, 3, 2}));
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(r.truncated, 1u);
  EXPECT_TRUE(std::isnan(r.rewards[2]));
  const AlphaResult no_tokenizer = answers_result(0.3, answers, rewards, nullptr);
  EXPECT_TRUE(std::isnan(no_tokenizer.answer_tokens[1]));
  EXPECT_THROW(answers_result(0.3, answers, std::vector<double>{1.0}, &t), Error);
}

TEST(StopIds, ExplicitIgnoreEosAndTemplateTokens) {
  const std::vector<int32_t> eos{2}, tmpl{2, 7};
  EXPECT_EQ(default_stop_ids({}, false, eos, tmpl), (std::vector<int32_t>{2, 7}));
  EXPECT_EQ(default_stop_ids(std::vector<int32_t>{5}, false, eos, tmpl), std::vector<int32_t>{5});
  EXPECT_TRUE(default_stop_ids({}, true, eos, tmpl).empty());
}

TEST(CommandTemplate, Placeholders) {
  const std::map<std::string, std::string> v{{"model", "/m/alpha-0.3"}, {"port", "8123"}};
  EXPECT_EQ(expand_command_template("vllm serve {model} --port {port}", v),
            "vllm serve /m/alpha-0.3 --port 8123");
  EXPECT_EQ(expand_command_template("x --json '{{\"a\": 1}}' {port}", v),
            "x --json '{\"a\": 1}' 8123");
  try {
    expand_command_template("serve {modle}", v);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown placeholder {modle}"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("{model}"), std::string::npos) << e.what();
  }
  EXPECT_THROW(expand_command_template("serve {model", v), Error);
  EXPECT_THROW(expand_command_template("serve model}", v), Error);
}

// Processes of process group `group` that are not zombies, from /proc/PID/stat.
int live_processes_in_group(pid_t group) {
  int live = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream in(entry.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    long ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == group && state != 'Z') ++live;
  }
  return live;
}

TEST(ServerProcess, CommandThatExitsIsReportedWithItsLog) {
  TempDir dir;
  ServerProcess server("echo 'cannot load weights' >&2; exit 3", dir / "server.log");
  try {
    server.wait_ready("http://127.0.0.1:" + std::to_string(free_loopback_port()), 30);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("exit status 3"), std::string::npos) << m;
    EXPECT_NE(m.find("cannot load weights"), std::string::npos) << m;
  }
}

TEST(ServerProcess, TimeoutAndStopKillTheGroup) {
  TempDir dir;
  ServerProcess server("sleep 60 & sleep 60", dir / "server.log");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(server.wait_ready("http://127.0.0.1:" + std::to_string(free_loopback_port()), 0.5),
               Error);
  server.stop(5);
  EXPECT_FALSE(server.running());
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(took, 10);
  // The background sleep went with the group (a zombie waiting for init to reap it is gone).
  EXPECT_EQ(live_processes_in_group(server.pid()), 0);
}

// The demo's planted directions do what demo/demo_models.h says.
class DemoModels : public ::testing::Test {
 protected:
  void SetUp() override {
    spec.layers = 4;  // the demo's shape (src/cli/cmd_demo.cpp)
    spec.hidden = 128;
    spec.intermediate = 344;
    spec.heads = 8;
    spec.kv_heads = 4;
    spec.vocab = Ids::kVocabSize;
    spec.bos_id = Ids::kBos;
    spec.eos_id = Ids::kImEnd;
    write_demo_pair(dir / "sft", dir / "aligned", spec, 5);
    RandomLlamaSpec reward = spec;
    reward.layers = 2;
    write_demo_reward_model(dir / "rm", reward, 6);
    write_byte_tokenizer(dir / "rm");
  }
  RandomLlamaSpec spec;
  TempDir dir;
  ThreadPool pool{2};
};

TEST_F(DemoModels, RewardGrowsWithReadableText) {
  LocalRewardModel rm = LocalRewardModel::load(ModelSource::open((dir / "rm").string()), pool);
  std::vector<Answer> answers(3);
  const char* texts[] = {"\x01\x02#%&*()[]{}<>|~^", "hello #%&*() world", "hello there my friend"};
  for (int i = 0; i < 3; ++i) {
    answers[i].prompt = text_prompt("say something", i);
    answers[i].turns = {texts[i]};
  }
  std::vector<std::string> warnings;
  const auto r = score_answers_local(rm, answers, pool, warnings);
  EXPECT_LT(r[0], r[1]);
  EXPECT_LT(r[1], r[2]);
  EXPECT_TRUE(warnings.empty());
}

TEST_F(DemoModels, ExtrapolationRaisesReadableTokensUntilTheNoiseWins) {
  // Mean probability mass on readable tokens over a prompt's positions, at alpha 0 (aligned), 2
  // and 25.
  const ModelSource pair =
      ModelSource::open_pair((dir / "sft").string(), (dir / "aligned").string());
  auto readable_mass = [&](double alpha) {
    const auto loaded = alpha == 0
                            ? LoadedModel::load(ModelSource::open((dir / "aligned").string()), pool)
                            : LoadedModel::load(pair, alpha, false, pool);
    Transformer model(*loaded);
    const PromptEncoder encoder(dir / "rm");  // the same tokenizer
    const auto tokens = encoder.encode_messages(
        nlohmann::ordered_json::parse(
            R"([{"role": "user", "content": "What are the three primary colors?"}])"),
        true);
    KvCache cache(loaded->config(), tokens.size());
    const ForwardItem item{&cache, tokens, true};
    const auto& logits = model.forward(std::span<const ForwardItem>(&item, 1), pool);
    // Mean over every position of the mass on readable tokens.
    double sum = 0;
    for (size_t row = 0; row < tokens.size(); ++row) {
      const float* l = logits.data() + row * Ids::kVocabSize;
      double max = -1e30, total = 0, readable = 0;
      for (int t = 0; t < Ids::kVocabSize; ++t) max = std::max<double>(max, l[t]);
      for (int t = 0; t < Ids::kVocabSize; ++t) {
        const double p = std::exp(l[t] - max);
        total += p;
        if (demo_readable_token(t)) readable += p;
      }
      sum += readable / total;
    }
    return sum / tokens.size();
  };
  const double at0 = readable_mass(0), at2 = readable_mass(2), at25 = readable_mass(25);
  EXPECT_GT(at2, at0 + 0.1) << at0 << " " << at2;
  EXPECT_LT(at25, at2 - 0.1) << at2 << " " << at25;
}

}  // namespace
}  // namespace expo
