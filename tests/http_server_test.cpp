// The server behind `expo serve` over a fake backend: every route, the response shapes, the
// 400s for bad input, and the client (src/http/openai_client) talking to it end to end.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "http/openai_client.h"
#include "http/openai_server.h"
#include "test_util.h"

namespace expo {
namespace {

using nlohmann::json;
using testing::error_of;

// Echoes the last message; scores a text by its length and a conversation by the length of
// its last message, negated for odd lengths (so raw scores can be negative). Counts how many
// calls run at once.
class FakeBackend : public ServeBackend {
 public:
  explicit FakeBackend(bool reward) : reward_(reward) {}

  std::string model_name() override { return "fake-model"; }

  ChatResponse chat(const ChatRequest& request) override {
    Enter enter(*this);
    {
      std::lock_guard lock(mutex_);
      last_request_ = request;
    }
    const std::string text = request.messages.back()["content"].get<std::string>();
    if (text == "bad") fail("the prompt holds 9000 tokens and the context is 4096; shorten it");
    if (text == "crash") throw std::runtime_error("out of memory");
    if (text.rfind("wait", 0) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return {"you said: " + text, "stop", request.messages.size(), 3};
  }

  std::optional<std::vector<double>> score(const json& messages_or_input) override {
    Enter enter(*this);
    if (!reward_) return std::nullopt;
    std::vector<double> scores;
    auto value = [](const std::string& s) {
      const double n = static_cast<double>(s.size());
      return s.size() % 2 ? -n : n;
    };
    if (messages_or_input.at(0).is_object()) {
      scores.push_back(value(messages_or_input.back()["content"].get<std::string>()));
    } else {
      for (const auto& text : messages_or_input) scores.push_back(value(text.get<std::string>()));
    }
    return scores;
  }

  bool is_reward_model() override { return reward_; }

  ChatRequest last_request() {
    std::lock_guard lock(mutex_);
    return last_request_;
  }
  int max_concurrent() const { return max_concurrent_; }

 private:
  struct Enter {
    explicit Enter(FakeBackend& b) : b_(b) {
      const int now = ++b_.concurrent_;
      int seen = b_.max_concurrent_;
      while (now > seen && !b_.max_concurrent_.compare_exchange_weak(seen, now)) {
      }
    }
    ~Enter() { --b_.concurrent_; }
    FakeBackend& b_;
  };

  bool reward_;
  std::mutex mutex_;
  ChatRequest last_request_;
  std::atomic<int> concurrent_{0};
  std::atomic<int> max_concurrent_{0};
};

struct Served {
  explicit Served(bool reward) : backend(reward), server(backend) {
    server.start();
    http = std::make_unique<httplib::Client>("127.0.0.1", server.port());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server.port()); }

  // POST a body, returning status and parsed JSON (null if the body is not JSON).
  std::pair<int, json> post(const std::string& path, const std::string& body) {
    auto res = http->Post(path.c_str(), body, "application/json");
    if (!res) throw std::runtime_error("no answer from the server");
    return {res->status, json::parse(res->body, nullptr, false)};
  }
  std::pair<int, json> post(const std::string& path, const json& body) {
    return post(path, body.dump());
  }

  FakeBackend backend;
  OpenAIServer server;
  std::unique_ptr<httplib::Client> http;
};

json chat_body(const std::string& text) {
  return {{"model", "fake-model"}, {"messages", {{{"role", "user"}, {"content", text}}}}};
}

// 400 with an OpenAI error body whose message contains `part`.
void expect_error(const std::pair<int, json>& answer, int status, const std::string& part) {
  EXPECT_EQ(answer.first, status);
  ASSERT_TRUE(answer.second.is_object()) << answer.second;
  ASSERT_TRUE(answer.second.contains("error")) << answer.second;
  const json& error = answer.second["error"];
  EXPECT_TRUE(error["type"].is_string());
  EXPECT_CONTAINS(error["message"].get<std::string>(), part);
}

TEST(OpenAIServer, HealthAndModels) {
  Served s(false);
  auto health = s.http->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  auto models = s.http->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  const json body = json::parse(models->body);
  EXPECT_EQ(body["object"], "list");
  ASSERT_EQ(body["data"].size(), 1u);
  EXPECT_EQ(body["data"][0]["id"], "fake-model");
  EXPECT_EQ(body["data"][0]["object"], "model");
  EXPECT_EQ(body["data"][0]["owned_by"], "expo");
  EXPECT_NE(s.server.port(), 0);
}

TEST(OpenAIServer, ChatCompletionShapeAndParameters) {
  Served s(false);
  json body = chat_body("hello");
  body["temperature"] = 0.5;
  body["top_p"] = 0.9;
  body["top_k"] = 50;
  body["seed"] = 42;
  body["max_tokens"] = 64;
  body["stop"] = "###";
  body["repetition_penalty"] = 1.05;
  auto [status, answer] = s.post("/v1/chat/completions", body);
  ASSERT_EQ(status, 200) << answer;
  EXPECT_EQ(answer["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(answer["object"], "chat.completion");
  EXPECT_TRUE(answer["created"].is_number_integer());
  EXPECT_EQ(answer["model"], "fake-model");
  ASSERT_EQ(answer["choices"].size(), 1u);
  const json& choice = answer["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["message"]["content"], "you said: hello");
  EXPECT_EQ(choice["finish_reason"], "stop");
  EXPECT_EQ(answer["usage"]["prompt_tokens"], 1);
  EXPECT_EQ(answer["usage"]["completion_tokens"], 3);
  EXPECT_EQ(answer["usage"]["total_tokens"], 4);

  const ChatRequest seen = s.backend.last_request();
  EXPECT_EQ(seen.model, "fake-model");
  EXPECT_EQ(seen.temperature, 0.5);
  EXPECT_EQ(seen.top_p, 0.9);
  EXPECT_EQ(seen.top_k, 50);
  EXPECT_EQ(seen.seed, std::optional<uint64_t>(42));
  EXPECT_EQ(seen.max_tokens, 64u);
  EXPECT_EQ(seen.stop, std::vector<std::string>{"###"});
  EXPECT_EQ(seen.repetition_penalty, 1.05);

  // No "model": the served one.
  json anonymous = chat_body("hi");
  anonymous.erase("model");
  EXPECT_EQ(s.post("/v1/chat/completions", anonymous).first, 200);
}

TEST(OpenAIServer, ChatBadRequests) {
  Served s(false);
  expect_error(s.post("/v1/chat/completions", std::string("{not json")), 400, "not valid JSON");
  expect_error(s.post("/v1/chat/completions", std::string("")), 400, "no body");
  expect_error(s.post("/v1/chat/completions", json::array()), 400, "JSON object");
  expect_error(s.post("/v1/chat/completions", json{{"model", "fake-model"}}), 400, "`messages`");
  json no_role = chat_body("x");
  no_role["messages"].push_back({{"content", "y"}});
  expect_error(s.post("/v1/chat/completions", no_role), 400, "messages[1] has no field `role`");
  json hot = chat_body("x");
  hot["temperature"] = "hot";
  expect_error(s.post("/v1/chat/completions", hot), 400, "`temperature`");
  json stream = chat_body("x");
  stream["stream"] = true;
  expect_error(s.post("/v1/chat/completions", stream), 400, "streaming is not supported");
  json other = chat_body("x");
  other["model"] = "gpt-4";
  auto wrong_model = s.post("/v1/chat/completions", other);
  expect_error(wrong_model, 404, "`gpt-4` does not exist");
  EXPECT_EQ(wrong_model.second["error"]["code"], "model_not_found");

  // The backend's expo::Error is the client's fault (400), anything else the server's (500).
  auto bad = s.post("/v1/chat/completions", chat_body("bad"));
  expect_error(bad, 400, "the prompt holds 9000 tokens");
  EXPECT_EQ(bad.second["error"]["type"], "invalid_request_error");
  auto crash = s.post("/v1/chat/completions", chat_body("crash"));
  expect_error(crash, 500, "out of memory");

  auto unknown = s.http->Get("/v1/completions");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_CONTAINS(json::parse(unknown->body)["error"]["message"].get<std::string>(),
                  "no route GET /v1/completions");
}

TEST(OpenAIServer, ScoringRoutes) {
  Served s(true);
  const json conversation = {{{"role", "user"}, {"content", "q"}},
                             {{"role", "assistant"}, {"content", "abc"}}};
  // /pooling: raw by default.
  auto [status, pooled] =
      s.post("/pooling", json{{"model", "fake-model"}, {"messages", conversation}});
  ASSERT_EQ(status, 200) << pooled;
  EXPECT_EQ(pooled["object"], "list");
  EXPECT_EQ(pooled["model"], "fake-model");
  EXPECT_EQ(pooled["id"].get<std::string>().rfind("pool-", 0), 0u);
  ASSERT_EQ(pooled["data"].size(), 1u);
  EXPECT_EQ(pooled["data"][0]["index"], 0);
  EXPECT_EQ(pooled["data"][0]["object"], "pooling");
  EXPECT_EQ(pooled["data"][0]["data"], json::array({-3.0}));
  EXPECT_EQ(s.post("/pooling", json{{"input", "abcd"}}).second["data"][0]["data"],
            json::array({4.0}));

  // /classify: sigmoid by default, like vLLM; raw with use_activation false.
  auto classified = s.post("/classify", json{{"input", {"ab", "abc"}}}).second;
  ASSERT_EQ(classified["data"].size(), 2u);
  EXPECT_EQ(classified["data"][1]["index"], 1);
  EXPECT_EQ(classified["data"][0]["num_classes"], 1);
  EXPECT_TRUE(classified["data"][0]["label"].is_string());
  EXPECT_NEAR(classified["data"][0]["probs"][0].get<double>(), 1 / (1 + std::exp(-2.0)), 1e-12);
  EXPECT_NEAR(classified["data"][1]["probs"][0].get<double>(), 1 / (1 + std::exp(3.0)), 1e-12);
  auto raw = s.post("/classify", json{{"input", {"ab", "abc"}}, {"use_activation", false}}).second;
  EXPECT_EQ(raw["data"][0]["probs"], json::array({2.0}));
  EXPECT_EQ(raw["data"][1]["probs"], json::array({-3.0}));
  auto old_alias = s.post("/pooling", json{{"input", "ab"}, {"softmax", true}}).second;
  EXPECT_NEAR(old_alias["data"][0]["data"][0].get<double>(), 1 / (1 + std::exp(-2.0)), 1e-12);

  expect_error(s.post("/pooling", json{{"model", "fake-model"}}), 400, "missing field `messages`");
  expect_error(s.post("/pooling", json{{"input", {1, 2, 3}}}), 400, "token ids");
  expect_error(s.post("/classify", json{{"input", json::array()}}), 400, "`input`");
  expect_error(s.post("/pooling", json{{"messages", {{{"role", "user"}}}}}), 400,
               "messages[0] has no field `content`");
  expect_error(s.post("/pooling", json{{"input", "x"}, {"use_activation", "no"}}), 400,
               "`use_activation`");
  expect_error(s.post("/classify", json{{"model", "other"}, {"input", "x"}}), 404,
               "does not exist");
}

TEST(OpenAIServer, ScoringNeedsARewardModel) {
  Served s(false);
  expect_error(s.post("/pooling", json{{"input", "x"}}), 400, "is not a reward model");
  expect_error(s.post("/classify", json{{"input", "x"}}), 400, "is not a reward model");
}

TEST(OpenAIServer, PortInUseIsAClearError) {
  FakeBackend backend(false);
  OpenAIServer first(backend);
  first.start();
  OpenAIServer second(backend, "127.0.0.1", first.port());
  EXPECT_CONTAINS(error_of([&] { second.start(); }),
                  "cannot listen on 127.0.0.1:" + std::to_string(first.port()));
  first.stop();
  first.stop();  // idempotent
  EXPECT_CONTAINS(error_of([&] { OpenAIServer(backend, "127.0.0.1", 70000); }), "out of range");
}

TEST(OpenAIServer, RequestLog) {
  FakeBackend backend(false);
  OpenAIServer server(backend);
  std::mutex mutex;
  std::vector<std::string> lines;
  server.set_request_log([&](const std::string& line) {
    std::lock_guard lock(mutex);
    lines.push_back(line);
  });
  server.start();
  EXPECT_CONTAINS(error_of([&] { server.set_request_log({}); }), "before start()");
  {
    httplib::Client http("127.0.0.1", server.port());
    ASSERT_TRUE(http.Get("/health"));
    ASSERT_TRUE(http.Post("/v1/chat/completions", "{}", "application/json"));
  }
  server.stop();  // the log is written after the answer: read it once the server is down
  std::sort(lines.begin(), lines.end());  // two connections, two threads: any order
  EXPECT_EQ(lines, (std::vector<std::string>{"GET /health 200", "POST /v1/chat/completions 400"}));
}

TEST(OpenAIServer, ClientEndToEnd) {
  Served s(true);
  ClientOptions o;
  o.timeout_s = 10;
  o.max_retries = 1;
  o.initial_backoff_s = 0.001;
  o.parallel = 4;
  {
    OpenAIClient client({{s.url() + "/v1", ""}}, o);
    EXPECT_TRUE(client.healthy());
    EXPECT_EQ(client.models(), std::vector<std::string>{"fake-model"});

    ChatRequest r;
    r.model = "fake-model";
    r.messages = json::array({{{"role", "user"}, {"content", "ping"}}});
    r.temperature = 0;
    r.top_k = 1;
    r.seed = 9;
    r.max_tokens = 8;
    ChatResponse answer = client.chat(r);
    EXPECT_EQ(answer.text, "you said: ping");
    EXPECT_EQ(answer.finish_reason, "stop");
    EXPECT_EQ(answer.prompt_tokens, 1u);
    EXPECT_EQ(answer.completion_tokens, 3u);
    EXPECT_EQ(s.backend.last_request().top_k, 1);
    EXPECT_EQ(s.backend.last_request().seed, std::optional<uint64_t>(9));

    // Concurrent requests are served one at a time, in request order in the results.
    std::vector<ChatRequest> batch;
    for (int i = 0; i < 12; ++i) {
      ChatRequest b = r;
      b.messages = json::array({{{"role", "user"}, {"content", "wait " + std::to_string(i)}}});
      batch.push_back(b);
    }
    std::vector<ChatResponse> answers = client.chat_all(batch);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(answers[i].text, "you said: wait " + std::to_string(i));
    EXPECT_EQ(s.backend.max_concurrent(), 1);

    // A 400 from expo serve reaches the caller with the server's message.
    ChatRequest bad = r;
    bad.messages = json::array({{{"role", "user"}, {"content", "bad"}}});
    bad.label = "prompt 5";
    const std::string error = error_of([&] { client.chat(bad); });
    EXPECT_CONTAINS(error, "prompt 5: POST " + s.url() + "/v1/chat/completions: HTTP 400: ");
    EXPECT_CONTAINS(error, "the prompt holds 9000 tokens");

    // Scores through both APIs, raw (the client asks for use_activation false).
    const std::vector<ScoreInput> inputs = {
        {json::array(
             {{{"role", "user"}, {"content", "q"}}, {{"role", "assistant"}, {"content", "abcde"}}}),
         ""},
        {nullptr, "abcdef"}};
    EXPECT_EQ(client.score_all("fake-model", inputs), (std::vector<double>{-5.0, 6.0}));
  }
  o.score_api = ScoreApi::kClassify;
  OpenAIClient classify({{s.url(), ""}}, o);
  std::vector<double> seen(2, 0);
  const std::vector<ScoreInput> texts = {{nullptr, "abc"}, {nullptr, "abcd"}};
  EXPECT_EQ(classify.score_all("fake-model", texts, [&](size_t i, double v) { seen[i] = v; }),
            (std::vector<double>{-3.0, 4.0}));
  EXPECT_EQ(seen, (std::vector<double>{-3.0, 4.0}));
  EXPECT_EQ(classify.score("fake-model", {nullptr, "ab"}), 2.0);

  // Scoring a model that is not a reward model: the server's message, no retries.
  Served plain(false);
  OpenAIClient not_reward({{plain.url(), ""}}, o);
  EXPECT_CONTAINS(error_of([&] {
                    not_reward.score("fake-model", {nullptr, "x", "answer 2"});
                  }),
                  "answer 2: POST " + plain.url() +
                      "/classify: HTTP 400: model `fake-model` "
                      "is not a reward model");
}

}  // namespace
}  // namespace expo
