// The engine behind `expo serve` (src/serve/engine_backend): a chat answer is what generate()
// gives for the same template-encoded prompt, sampling is reproducible, max_tokens and stop
// strings end answers as OpenAI says, a reward model's score is score_sequences' raw logit of
// the rendered conversation, and requests a model cannot serve are clear errors. Then once
// end to end through OpenAIServer and OpenAIClient.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "demo/byte_tokenizer.h"
#include "http/openai_client.h"
#include "http/openai_server.h"
#include "model/continuous_batch.h"
#include "model/generator.h"
#include "model/scorer.h"
#include "serve/engine_backend.h"
#include "test_util.h"

namespace expo {
namespace {

using nlohmann::json;
using testing::error_of;
using testing::TempDir;

// A tiny random Llama paired with the byte-level tokenizer (ChatML template).
void write_chat_model(const std::filesystem::path& dir, bool reward, uint64_t seed) {
  RandomLlamaSpec spec = testing::tiny_llama(2, 64, 96, 4, 2, ByteTokenizerIds::kVocabSize);
  spec.dtype = DType::F32;
  spec.bos_id = ByteTokenizerIds::kBos;
  spec.eos_id = ByteTokenizerIds::kImEnd;
  spec.reward_model = reward;
  write_random_llama(dir, spec, seed);
  write_byte_tokenizer(dir);
}

EngineBackendOptions options_for(const std::filesystem::path& dir) {
  EngineBackendOptions o;
  o.model = ModelSource::open(dir.string());
  o.threads = 2;
  return o;
}

json conversation() {
  return json::array({{{"role", "system"}, {"content", "You are terse."}},
                      {{"role", "user"}, {"content", "Why is the sky blue?"}}});
}

ChatRequest request(double temperature, uint64_t max_tokens) {
  ChatRequest r;
  r.messages = conversation();
  r.temperature = temperature;
  r.max_tokens = max_tokens;
  return r;
}

// The lazily written models, shared by the tests of this file.
class EngineBackendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    write_chat_model(*dir_ / "chat", false, 3);
    write_chat_model(*dir_ / "reward", true, 4);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::filesystem::path chat_dir() { return *dir_ / "chat"; }
  static std::filesystem::path reward_dir() { return *dir_ / "reward"; }

  // generate() run directly on `prompt`, with the backend's stop ids, the prompt's stream.
  static GenerationResult generate_directly(const std::filesystem::path& dir,
                                            const std::vector<int32_t>& prompt,
                                            const SamplingParams& sampling, uint64_t max_new,
                                            const std::vector<int32_t>& stop_ids) {
    ThreadPool pool(1);
    const auto loaded = LoadedModel::load(ModelSource::open(dir.string()), pool);
    Transformer model(*loaded);
    GenerationOptions options;
    options.sampling = sampling;
    options.max_new_tokens = max_new;
    options.stop_ids = stop_ids;
    GenerationResult out;
    const GenerationRequest r{prompt, prompt_stream(prompt)};
    generate(model, std::span(&r, 1), options, pool, [&](GenerationResult&& g) { out = g; });
    return out;
  }

  static TempDir* dir_;
};

TempDir* EngineBackendTest::dir_ = nullptr;

TEST_F(EngineBackendTest, NamesAndStopIds) {
  EngineBackend backend(options_for(chat_dir()));
  EXPECT_EQ(backend.model_name(), "chat");
  EXPECT_FALSE(backend.is_reward_model());
  EXPECT_EQ(backend.stop_ids(), std::vector<int32_t>{ByteTokenizerIds::kImEnd});
  EXPECT_EQ(backend.context_length(), 2048u);
  EXPECT_EQ(EngineBackend::default_model_name(chat_dir().string() + "/"), "chat");
  EXPECT_EQ(EngineBackend::default_model_name("org/some-model"), "org/some-model");
  EXPECT_EQ(EngineBackend::default_model_name("b/dpo", 0.3), "dpo-expo-alpha0.3");
  EngineBackendOptions named = options_for(chat_dir());
  named.model_name = "my-model";
  EXPECT_EQ(EngineBackend(named).model_name(), "my-model");
  EngineBackendOptions pair = options_for(chat_dir());
  pair.model = ModelSource::open_pair(chat_dir().string(), chat_dir().string());
  pair.alpha = 0.5;
  EXPECT_EQ(EngineBackend(pair).model_name(), "chat-expo-alpha0.5");
}

TEST_F(EngineBackendTest, GreedyChatEqualsGenerate) {
  EngineBackend backend(options_for(chat_dir()));
  const ChatResponse answer = backend.chat(request(0, 24));
  const auto prompt =
      backend.encoder().encode_messages(nlohmann::ordered_json::parse(conversation().dump()), true);
  ASSERT_EQ(prompt.front(), ByteTokenizerIds::kBos);
  ASSERT_NE(prompt[1], ByteTokenizerIds::kBos);  // BOS is not doubled
  const GenerationResult direct =
      generate_directly(chat_dir(), prompt, SamplingParams{}, 24, backend.stop_ids());
  EXPECT_EQ(answer.text, backend.encoder().decode_answer(direct.tokens));
  EXPECT_EQ(answer.finish_reason, direct.finish_reason);
  EXPECT_EQ(answer.prompt_tokens, prompt.size());
  EXPECT_EQ(answer.completion_tokens, direct.tokens.size());
  EXPECT_GT(answer.completion_tokens, 0u);

  // A prompt longer than one prefill chunk (512 tokens) is prefilled in the same chunks.
  ChatRequest long_request = request(0, 8);
  long_request.messages[1]["content"] = std::string(1100, 'a') + "?";
  const ChatResponse long_answer = backend.chat(long_request);
  const auto long_prompt = backend.encoder().encode_messages(
      nlohmann::ordered_json::parse(long_request.messages.dump()), true);
  ASSERT_GT(long_prompt.size(), 1024u);
  const GenerationResult long_direct =
      generate_directly(chat_dir(), long_prompt, SamplingParams{}, 8, backend.stop_ids());
  EXPECT_EQ(long_answer.text, backend.encoder().decode_answer(long_direct.tokens));
  EXPECT_EQ(long_answer.completion_tokens, long_direct.tokens.size());
}

TEST_F(EngineBackendTest, SampledChatEqualsGenerateAndIsReproducible) {
  EngineBackend backend(options_for(chat_dir()));
  ChatRequest r = request(1.0, 16);
  r.top_k = 40;
  r.top_p = 0.95;
  r.min_p = 0.01;
  r.presence_penalty = 0.1;
  r.frequency_penalty = 0.1;
  r.repetition_penalty = 1.1;
  r.seed = 7;
  const ChatResponse a = backend.chat(r), b = backend.chat(r);
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.completion_tokens, b.completion_tokens);

  const auto prompt =
      backend.encoder().encode_messages(nlohmann::ordered_json::parse(conversation().dump()), true);
  const SamplingParams sampling{1.0, 40, 0.95, 0.01, 0.1, 0.1, 1.1, 7};
  const GenerationResult direct =
      generate_directly(chat_dir(), prompt, sampling, 16, backend.stop_ids());
  EXPECT_EQ(a.text, backend.encoder().decode_answer(direct.tokens));
  EXPECT_EQ(a.finish_reason, direct.finish_reason);

  // Another seed gives another answer; no seed is the default seed.
  ChatRequest other = r;
  other.seed = 8;
  EXPECT_NE(backend.chat(other).text, a.text);
  ChatRequest unseeded = r, default_seed = r;
  unseeded.seed.reset();
  default_seed.seed = EngineBackend::kDefaultSeed;
  EXPECT_EQ(backend.chat(unseeded).text, backend.chat(default_seed).text);
}

TEST_F(EngineBackendTest, MaxTokensEndsWithLength) {
  EngineBackendOptions o = options_for(chat_dir());
  EngineBackend backend(o);
  // Stop ids are what end answers with "stop"; without them (a stop id never sampled) every
  // answer runs to its limit. The greedy answer of this model is long enough for 3 tokens.
  const ChatResponse full = backend.chat(request(0, 24));
  ASSERT_GT(full.completion_tokens, 6u) << full.text;
  const ChatResponse three = backend.chat(request(0, 3));
  EXPECT_EQ(three.finish_reason, "length");
  EXPECT_EQ(three.completion_tokens, 3u);

  // The server default applies when the request sends no max_tokens.
  o.max_new_tokens = 2;
  EngineBackend capped(o);
  const ChatResponse two = capped.chat(request(0, 0));
  EXPECT_EQ(two.finish_reason, "length");
  EXPECT_EQ(two.completion_tokens, 2u);
  // The context caps every answer: 70 tokens of context leave 70 - 64 for the answer.
  o.max_new_tokens = 0;
  o.context_length = 70;
  EngineBackend short_context(o);
  const ChatResponse to_context = short_context.chat(request(0, 1000));
  EXPECT_EQ(to_context.finish_reason, "length");
  EXPECT_EQ(to_context.prompt_tokens, 64u);
  EXPECT_EQ(to_context.prompt_tokens + to_context.completion_tokens, 70u);
}

TEST_F(EngineBackendTest, StopStringsCutTheText) {
  EngineBackend backend(options_for(chat_dir()));
  ChatRequest r = request(1.0, 40);
  r.seed = 11;
  const ChatResponse full = backend.chat(r);
  // A stop string that occurs in the answer, after its start: a printable ASCII character.
  size_t at = std::string::npos;
  for (size_t i = 3; i < full.text.size() && at == std::string::npos; ++i)
    if (full.text[i] > ' ' && full.text[i] < 127) at = i;
  ASSERT_NE(at, std::string::npos) << "no ASCII in: " << full.text;
  const std::string stop(1, full.text[at]);
  const size_t first = full.text.find(stop);
  ChatRequest with_stop = r;
  with_stop.stop = {"never-in-the-answer", stop};
  const ChatResponse cut = backend.chat(with_stop);
  EXPECT_EQ(cut.text, full.text.substr(0, first));
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_LT(cut.completion_tokens, full.completion_tokens);  // generation ended there
  EXPECT_EQ(cut.prompt_tokens, full.prompt_tokens);

  // A stop string that never occurs changes nothing.
  ChatRequest never = r;
  never.stop = {"never-in-the-answer"};
  const ChatResponse same = backend.chat(never);
  EXPECT_EQ(same.text, full.text);
  EXPECT_EQ(same.finish_reason, full.finish_reason);
}

TEST_F(EngineBackendTest, RewardScoreIsTheRawLogitOfTheRenderedConversation) {
  EngineBackend backend(options_for(reward_dir()));
  EXPECT_TRUE(backend.is_reward_model());
  json chat = conversation();
  chat.push_back({{"role", "assistant"}, {"content", "Rayleigh scattering."}});
  const auto scores = backend.score(chat);
  ASSERT_TRUE(scores);
  ASSERT_EQ(scores->size(), 1u);

  const auto ordered = nlohmann::ordered_json::parse(chat.dump());
  const std::string rendered = backend.encoder().render(ordered, false);
  EXPECT_EQ(rendered.rfind("<|begin_of_text|>", 0), 0u);
  EXPECT_EQ(rendered.find("<|im_start|>assistant\nRayleigh"), rendered.rfind("<|im_start|>"));
  const auto tokens = backend.encoder().encode_messages(ordered, false);
  ThreadPool pool(1);
  const auto loaded = LoadedModel::load(ModelSource::open(reward_dir().string()), pool);
  Transformer model(*loaded);
  const std::vector<std::vector<int32_t>> sequences{tokens};
  const auto rows = score_sequences(model, sequences, pool);
  EXPECT_EQ((*scores)[0], static_cast<double>(rows[0][0]));

  // The rendered text as input scores the same; several texts score one each.
  const auto by_text = backend.score(json::array({rendered, rendered + "more", rendered}));
  ASSERT_TRUE(by_text);
  ASSERT_EQ(by_text->size(), 3u);
  EXPECT_EQ((*by_text)[0], (*scores)[0]);
  EXPECT_EQ((*by_text)[2], (*scores)[0]);
  EXPECT_NE((*by_text)[1], (*scores)[0]);

  // Text parts are joined as vLLM joins them.
  json parts = chat;
  parts[1]["content"] = json::array(
      {{{"type", "text"}, {"text", "Why is the sky"}}, {{"type", "text"}, {"text", "blue?"}}});
  json joined = chat;
  joined[1]["content"] = "Why is the sky\nblue?";
  EXPECT_EQ(backend.score(parts), backend.score(joined));
}

TEST_F(EngineBackendTest, Errors) {
  EngineBackend reward(options_for(reward_dir()));
  EXPECT_CONTAINS(error_of([&] { reward.chat(request(0, 4)); }), "is a reward model");
  EXPECT_CONTAINS(error_of([&] { reward.score(json::array()); }), "scoring needs");
  EXPECT_CONTAINS(error_of([&] { reward.score(json::array({""})); }), "input[0] is empty");
  EXPECT_CONTAINS(error_of([&] {
                    reward.score(json::array({"a", 1}));
                  }),
                  "input[1] must be a string");

  EngineBackendOptions o = options_for(chat_dir());
  o.context_length = 30;
  EngineBackend lm(o);
  EXPECT_FALSE(lm.score(conversation()));  // not a reward model: the server answers 400
  ChatRequest long_prompt = request(0, 4);
  long_prompt.messages[1]["content"] = std::string(100, 'x');
  EXPECT_CONTAINS(error_of([&] { lm.chat(long_prompt); }),
                  "the conversation: the prompt has 144 tokens, but the model's context is 30");
  ChatRequest bad_sampling = request(0, 4);
  bad_sampling.top_p = 1.5;
  EXPECT_CONTAINS(error_of([&] { lm.chat(bad_sampling); }), "top-p");

  // A missing model fails when it is opened, before a backend is made.
  EXPECT_CONTAINS(error_of([&] { options_for(chat_dir() / "nope"); }), "nope");
}

TEST_F(EngineBackendTest, ServedThroughOpenAIServerAndClient) {
  EngineBackend chat_backend(options_for(chat_dir()));
  EngineBackend reward_backend(options_for(reward_dir()));
  OpenAIServer chat_server(chat_backend), reward_server(reward_backend);
  chat_server.start();
  reward_server.start();
  // The clients go before the servers stop: a stopping server waits for open connections.
  {
    ClientOptions o;
    o.timeout_s = 60;
    o.max_retries = 0;
    OpenAIClient chat_client({{"http://127.0.0.1:" + std::to_string(chat_server.port()), ""}}, o);
    OpenAIClient reward_client({{"http://127.0.0.1:" + std::to_string(reward_server.port()), ""}},
                               o);

    EXPECT_EQ(chat_client.models(), std::vector<std::string>{"chat"});
    ChatRequest r = request(0.7, 12);
    r.model = "chat";
    r.seed = 5;
    r.top_k = 50;
    const ChatResponse remote = chat_client.chat(r);
    const ChatResponse local = chat_backend.chat(r);
    EXPECT_EQ(remote.text, local.text);
    EXPECT_EQ(remote.finish_reason, local.finish_reason);
    EXPECT_EQ(remote.prompt_tokens, local.prompt_tokens);
    EXPECT_EQ(remote.completion_tokens, local.completion_tokens);

    ScoreInput input;
    input.messages = conversation();
    const double remote_score = reward_client.score("reward", input);
    EXPECT_EQ(remote_score, (*reward_backend.score(conversation()))[0]);

    // A reward model asked to chat: a 400 quoting the backend.
    ChatRequest to_reward = r;
    to_reward.model = "reward";
    EXPECT_CONTAINS(error_of([&] { reward_client.chat(to_reward); }), "is a reward model");
  }
  chat_server.stop();
  reward_server.stop();
}

}  // namespace
}  // namespace expo
