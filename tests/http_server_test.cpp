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

  // Answers "you said: TEXT" in two pieces (as a streaming engine pushes text). Special texts:
  // "bad" is a request error, "crash" an internal one, "busy" a full queue, "wait..." sleeps
  // first, "hang" never finishes (until cancelled: the stream is kept in hung()).
  std::shared_ptr<GenerationStream> generate(const ServeRequest& request) override {
    Enter enter(*this);
    {
      std::lock_guard lock(mutex_);
      last_request_ = request.generation;
      last_serve_ = request;
    }
    const std::string text = request.endpoint == ServeEndpoint::kChat
                                 ? request.generation.messages.back()["content"].get<std::string>()
                                 : request.prompt;
    if (text == "bad") fail("the prompt holds 9000 tokens and the context is 4096; shorten it");
    if (text == "crash") throw std::runtime_error("out of memory");
    if (text == "busy") throw ServerBusy("the server is busy; retry later");
    if (text.rfind("wait", 0) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto stream = std::make_shared<GenerationStream>();
    if (text == "hang") {
      std::lock_guard lock(mutex_);
      hung_ = stream;
      return stream;
    }
    const std::string answer = "you said: " + text;
    std::vector<StreamedLogprob> logprobs;
    if (request.logprobs >= 0) logprobs.push_back({"you", -0.5, {{"you", -0.5}, {"we", -1.5}}});
    stream->push(answer.substr(0, 4), logprobs);
    stream->push(answer.substr(4));
    const uint64_t prompt = request.endpoint == ServeEndpoint::kChat
                                ? request.generation.messages.size()
                                : request.prompt.size();
    stream->finish("stop", prompt, 3);
    return stream;
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
  ServeRequest last_serve_request() {
    std::lock_guard lock(mutex_);
    return last_serve_;
  }
  std::shared_ptr<GenerationStream> hung() {
    std::lock_guard lock(mutex_);
    return hung_;
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
  ServeRequest last_serve_;
  std::shared_ptr<GenerationStream> hung_;
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
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, json>>{{"n", 2},
                                                 {"best_of", 3},
                                                 {"logit_bias", {{"5", 10}}},
                                                 {"tools", {{{"type", "function"}}}},
                                                 {"response_format", {{"type", "json_object"}}},
                                                 {"guided_json", {{"type", "object"}}},
                                                 {"top_logprobs", 2}}) {
    json unsupported = chat_body("x");
    unsupported[field] = value;
    expect_error(s.post("/v1/chat/completions", unsupported), 400, "`" + field + "`");
  }
  json options_without_stream = chat_body("x");
  options_without_stream["stream_options"] = {{"include_usage", true}};
  expect_error(s.post("/v1/chat/completions", options_without_stream), 400, "`stream_options`");
  json echo = {{"prompt", "x"}, {"echo", true}};
  expect_error(s.post("/v1/completions", echo), 400, "`echo`");
  expect_error(s.post("/v1/completions", json{{"prompt", {"a", "b"}}}), 400, "2 prompts");
  expect_error(s.post("/v1/completions", json{{"max_tokens", 3}}), 400, "`prompt`");
  // Unknown fields are ignored, as vLLM ignores them.
  json extra = chat_body("x");
  extra["user"] = "someone";
  extra["some_future_field"] = {1, 2};
  EXPECT_EQ(s.post("/v1/chat/completions", extra).first, 200);
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

  auto unknown = s.http->Get("/v1/nothing");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_CONTAINS(json::parse(unknown->body)["error"]["message"].get<std::string>(),
                  "no route GET /v1/nothing");
  auto wrong_method = s.http->Get("/v1/completions");
  ASSERT_TRUE(wrong_method);
  EXPECT_EQ(wrong_method->status, 405);

  // A full queue: 503 with Retry-After.
  auto busy = s.http->Post("/v1/chat/completions", chat_body("busy").dump(), "application/json");
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503);
  EXPECT_EQ(busy->get_header_value("Retry-After"), "1");
  EXPECT_CONTAINS(json::parse(busy->body)["error"]["message"].get<std::string>(), "busy");
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

    // Concurrent requests (the backend takes them from every connection at once and batches
    // them itself), in request order in the results.
    std::vector<ChatRequest> batch;
    for (int i = 0; i < 12; ++i) {
      ChatRequest b = r;
      b.messages = json::array({{{"role", "user"}, {"content", "wait " + std::to_string(i)}}});
      batch.push_back(b);
    }
    std::vector<ChatResponse> answers = client.chat_all(batch);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(answers[i].text, "you said: wait " + std::to_string(i));

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

// The events of a server-sent-event body: the JSON of each "data:" line, "[DONE]" as a string.
std::vector<json> sse_events(const std::string& body) {
  std::vector<json> events;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find("\n\n", at);
    if (end == std::string::npos) end = body.size();
    const std::string event = body.substr(at, end - at);
    at = end + 2;
    if (event.empty()) continue;
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    const std::string data = event.substr(6);
    events.push_back(data == "[DONE]" ? json("[DONE]") : json::parse(data));
  }
  return events;
}

TEST(OpenAIServer, ChatStreamingShapes) {
  Served s(false);
  json body = chat_body("hello");
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto res = s.http->Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/event-stream", 0), 0u);
  const auto events = sse_events(res->body);
  // The role, the content (in as many chunks as it arrived in), the finish, the usage, [DONE].
  ASSERT_GE(events.size(), 5u) << res->body;
  const size_t n = events.size();
  const std::string id = events[0]["id"];
  std::string text;
  for (size_t i = 0; i + 1 < n; ++i) {
    EXPECT_EQ(events[i]["object"], "chat.completion.chunk");
    EXPECT_EQ(events[i]["id"], id);
    EXPECT_EQ(events[i]["model"], "fake-model");
    EXPECT_TRUE(events[i].contains("usage"));
  }
  EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(events[0]["choices"][0]["delta"]["content"], "");
  EXPECT_TRUE(events[0]["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(events[0]["usage"].is_null());
  for (size_t i = 1; i + 3 < n; ++i) {
    EXPECT_FALSE(events[i]["choices"][0]["delta"].contains("role"));
    EXPECT_TRUE(events[i]["choices"][0]["finish_reason"].is_null());
    text += events[i]["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(text, "you said: hello");
  EXPECT_EQ(events[n - 3]["choices"][0]["delta"], json::object());
  EXPECT_EQ(events[n - 3]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(events[n - 2]["choices"], json::array());
  EXPECT_EQ(events[n - 2]["usage"]["completion_tokens"], 3);
  EXPECT_EQ(events[n - 2]["usage"]["total_tokens"], 4);
  EXPECT_EQ(events[n - 1], "[DONE]");

  // Without include_usage: no usage field, no usage chunk.
  body.erase("stream_options");
  const auto plain =
      sse_events(s.http->Post("/v1/chat/completions", body.dump(), "application/json")->body);
  ASSERT_GE(plain.size(), 4u);
  for (size_t i = 0; i + 1 < plain.size(); ++i) EXPECT_FALSE(plain[i].contains("usage"));
  EXPECT_EQ(plain.back(), "[DONE]");
}

TEST(OpenAIServer, CompletionsPlainStreamedAndLogprobs) {
  Served s(false);
  auto [status, answer] =
      s.post("/v1/completions", json{{"model", "fake-model"}, {"prompt", "abc"}, {"logprobs", 1}});
  ASSERT_EQ(status, 200) << answer;
  EXPECT_EQ(answer["object"], "text_completion");
  EXPECT_EQ(answer["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(answer["choices"][0]["text"], "you said: abc");
  EXPECT_EQ(answer["choices"][0]["finish_reason"], "stop");
  const json& lp = answer["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], json::array({"you"}));
  EXPECT_EQ(lp["token_logprobs"], json::array({-0.5}));
  EXPECT_EQ(lp["top_logprobs"][0]["we"], -1.5);
  EXPECT_EQ(lp["text_offset"], json::array({0}));
  EXPECT_EQ(answer["usage"]["prompt_tokens"], 3);
  // The completions API's default length: 16 tokens.
  EXPECT_EQ(s.backend.last_request().max_tokens, 16u);
  EXPECT_EQ(s.backend.last_serve_request().logprobs, 1);

  auto streamed = s.http->Post("/v1/completions", json{{"prompt", "abc"}, {"stream", true}}.dump(),
                               "application/json");
  ASSERT_TRUE(streamed);
  const auto events = sse_events(streamed->body);
  ASSERT_GE(events.size(), 3u) << streamed->body;  // the text, the finish, [DONE]
  std::string text;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    EXPECT_EQ(events[i]["object"], "text_completion");
    text += events[i]["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, "you said: abc");
  EXPECT_EQ(events[events.size() - 2]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(events.back(), "[DONE]");

  // Chat logprobs: OpenAI's content list.
  json chat = chat_body("x");
  chat["logprobs"] = true;
  chat["top_logprobs"] = 2;
  auto [chat_status, chat_answer] = s.post("/v1/chat/completions", chat);
  ASSERT_EQ(chat_status, 200) << chat_answer;
  const json& content = chat_answer["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 1u);
  EXPECT_EQ(content[0]["token"], "you");
  EXPECT_EQ(content[0]["bytes"], json::array({'y', 'o', 'u'}));
  EXPECT_EQ(content[0]["top_logprobs"][1]["token"], "we");
  EXPECT_EQ(s.backend.last_serve_request().logprobs, 2);
}

TEST(OpenAIServer, ClientThatLeavesCancelsItsGeneration) {
  for (const bool stream : {false, true}) {
    Served s(false);
    json body = chat_body("hang");
    body["stream"] = stream;
    {
      httplib::Client leaving("127.0.0.1", s.server.port());
      leaving.set_read_timeout(0, 300000);  // gives up after 0.3 s and closes the connection
      leaving.Post("/v1/chat/completions", body.dump(), "application/json");
    }
    std::shared_ptr<GenerationStream> hung;
    for (int i = 0; i < 500 && !(hung = s.backend.hung()); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(hung);
    bool cancelled = false;
    for (int i = 0; i < 500 && !(cancelled = hung->cancelled()); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_TRUE(cancelled) << "stream " << stream;
    hung->fail("gone");
  }
}

TEST(OpenAIServer, Metrics) {
  Served s(false);
  ASSERT_EQ(s.post("/v1/chat/completions", chat_body("x")).first, 200);
  s.server.metrics().add_generated_tokens(7);
  s.server.metrics().observe_time_to_first_token(0.03);
  auto res = s.http->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain", 0), 0u);
  EXPECT_CONTAINS(res->body,
                  "expo_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1");
  EXPECT_CONTAINS(res->body, "expo_generation_tokens_total{model_name=\"fake-model\"} 7");
  EXPECT_CONTAINS(
      res->body,
      "expo_time_to_first_token_seconds_bucket{model_name=\"fake-model\",le=\"0.02\"} 0");
  EXPECT_CONTAINS(
      res->body,
      "expo_time_to_first_token_seconds_bucket{model_name=\"fake-model\",le=\"0.04\"} 1");
  EXPECT_CONTAINS(
      res->body,
      "expo_time_to_first_token_seconds_bucket{model_name=\"fake-model\",le=\"+Inf\"} 1");
  EXPECT_CONTAINS(res->body, "# TYPE expo_num_requests_running gauge");
}

}  // namespace
}  // namespace expo
