// The OpenAI-compatible client against a scripted fault-injecting server (tests/http/), and
// the wire format both the client and `expo serve` use (src/http/openai_protocol.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "http/fault_server.h"
#include "http/openai_client.h"
#include "http/openai_protocol.h"
#include "http/serve_request.h"
#include "test_util.h"

namespace expo {
namespace {

using nlohmann::json;
using testing::error_of;
using testing::FaultServer;
using Fault = FaultServer::Fault;

// Short timeouts and waits: the faults are immediate.
ClientOptions fast_options() {
  ClientOptions o;
  o.timeout_s = 5;
  o.connect_timeout_s = 2;
  o.max_retries = 5;
  o.initial_backoff_s = 0.001;
  o.max_backoff_s = 0.01;
  o.parallel = 4;
  o.seed = 7;
  return o;
}

ChatRequest prompt(const std::string& text) {
  ChatRequest r;
  r.model = "fault-model";
  r.messages = json::array({{{"role", "user"}, {"content", text}}});
  r.max_tokens = 16;
  return r;
}

// ---- the wire format -------------------------------------------------------------------

TEST(OpenAIProtocol, ChatRequestSendsExtraFieldsOnlyWhenUsed) {
  ChatRequest r = prompt("hi");
  json plain = chat_request_to_json(r);
  EXPECT_EQ(plain["model"], "fault-model");
  EXPECT_EQ(plain["max_tokens"], 16);
  EXPECT_EQ(plain["temperature"], 1.0);
  for (const char* key : {"top_k", "min_p", "repetition_penalty", "presence_penalty",
                          "frequency_penalty", "seed", "stop"})
    EXPECT_FALSE(plain.contains(key)) << key;

  r.top_k = 40;
  r.min_p = 0.05;
  r.repetition_penalty = 1.1;
  r.presence_penalty = 0.5;
  r.seed = 123;
  r.stop = {"</s>", "\n\n"};
  r.temperature = 0.7;
  json extra = chat_request_to_json(r);
  EXPECT_EQ(extra["top_k"], 40);
  EXPECT_EQ(extra["min_p"], 0.05);
  EXPECT_EQ(extra["repetition_penalty"], 1.1);
  EXPECT_EQ(extra["presence_penalty"], 0.5);
  EXPECT_EQ(extra["seed"], 123);
  EXPECT_EQ(extra["stop"], json::array({"</s>", "\n\n"}));

  // What the client sends, the server reads back unchanged.
  ChatRequest back = chat_request_from_json(extra);
  EXPECT_EQ(back.model, r.model);
  EXPECT_EQ(back.messages, r.messages);
  EXPECT_EQ(back.temperature, 0.7);
  EXPECT_EQ(back.top_k, 40);
  EXPECT_EQ(back.min_p, 0.05);
  EXPECT_EQ(back.repetition_penalty, 1.1);
  EXPECT_EQ(back.presence_penalty, 0.5);
  EXPECT_EQ(back.seed, std::optional<uint64_t>(123));
  EXPECT_EQ(back.max_tokens, 16u);
  EXPECT_EQ(back.stop, r.stop);
}

TEST(OpenAIProtocol, ChatRequestFromJsonNamesTheField) {
  const json ok = {{"messages", {{{"role", "user"}, {"content", "x"}}}}};
  auto with = [&](const char* key, json value) {
    json body = ok;
    body[key] = std::move(value);
    return error_of([&] { chat_request_from_json(body); });
  };
  // What the server refuses beyond the generation fields (http/serve_request.h).
  auto served_with = [&](const char* key, json value) {
    json body = ok;
    body[key] = std::move(value);
    return error_of([&] { serve_request_from_json(body, ServeEndpoint::kChat); });
  };
  EXPECT_NO_THROW(chat_request_from_json(ok));
  EXPECT_CONTAINS(error_of([] { chat_request_from_json(json::object()); }), "`messages`");
  EXPECT_CONTAINS(error_of([] { chat_request_from_json(json::array()); }), "JSON object");
  EXPECT_CONTAINS(with("messages", json::array()), "`messages` is empty");
  EXPECT_CONTAINS(with("messages", {{{"role", "user"}, {"content", "a"}}, {{"content", "b"}}}),
                  "messages[1] has no field `role`");
  EXPECT_CONTAINS(with("messages", {{{"role", 3}, {"content", "b"}}}), "messages[0].role");
  EXPECT_CONTAINS(with("messages", {{{"role", "user"}, {"content", 5}}}), "messages[0].content");
  EXPECT_CONTAINS(with("temperature", "hot"), "`temperature` must be a number");
  EXPECT_CONTAINS(with("temperature", -1), "`temperature`");
  EXPECT_CONTAINS(with("top_p", 1.5), "`top_p`");
  EXPECT_CONTAINS(with("max_tokens", 0), "`max_tokens`");
  EXPECT_CONTAINS(with("max_tokens", 2.5), "`max_tokens` must be an integer");
  EXPECT_CONTAINS(with("seed", -3), "`seed`");
  EXPECT_CONTAINS(with("stop", 5), "`stop`");
  EXPECT_CONTAINS(with("stop", {"a", 1}), "stop[1]");
  EXPECT_CONTAINS(served_with("stream", "yes"), "`stream`");
  EXPECT_CONTAINS(served_with("n", 2), "`n`");
  EXPECT_CONTAINS(served_with("tools", {{{"type", "function"}}}), "`tools`");
  EXPECT_CONTAINS(served_with("response_format", {{"type", "json_object"}}), "`response_format`");
  EXPECT_CONTAINS(served_with("top_logprobs", 30), "`top_logprobs`");
  json streamed = ok;
  streamed["stream"] = true;
  streamed["stream_options"] = {{"include_usage", true}};
  streamed["logprobs"] = true;
  streamed["top_logprobs"] = 5;
  const ServeRequest sr = serve_request_from_json(streamed, ServeEndpoint::kChat);
  EXPECT_TRUE(sr.stream);
  EXPECT_TRUE(sr.include_usage);
  EXPECT_EQ(sr.logprobs, 5);

  // Accepted forms: a stop string, max_completion_tokens, top_k -1 (vLLM's "none"), text
  // parts, an integer written as a double, unknown fields.
  json body = ok;
  body["stop"] = "END";
  body["max_completion_tokens"] = 32.0;
  body["top_k"] = -1;
  body["user"] = "someone";
  body["stream"] = false;
  body["messages"] = {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "x"}}}}}};
  ChatRequest r = chat_request_from_json(body);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.max_tokens, 32u);
  EXPECT_EQ(r.top_k, 0);
  EXPECT_EQ(r.temperature, 1.0);
}

TEST(OpenAIProtocol, ChatResponseRoundTripAndTolerance) {
  ChatResponse r{"Hello!", "length", 12, 34};
  json body = chat_response_to_json(r, "m", "chatcmpl-1", 1700000000);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["usage"]["total_tokens"], 46);
  ChatResponse back = chat_response_from_json(body);
  EXPECT_EQ(back.text, "Hello!");
  EXPECT_EQ(back.finish_reason, "length");
  EXPECT_EQ(back.prompt_tokens, 12u);
  EXPECT_EQ(back.completion_tokens, 34u);

  // null content (e.g. a refusal) and no usage read as empty and 0.
  json sparse = {{"choices", {{{"message", {{"content", nullptr}}}, {"finish_reason", nullptr}}}}};
  ChatResponse s = chat_response_from_json(sparse);
  EXPECT_EQ(s.text, "");
  EXPECT_EQ(s.finish_reason, "");
  EXPECT_EQ(s.prompt_tokens, 0u);
  EXPECT_CONTAINS(error_of([] {
                    chat_response_from_json({{"choices", json::array()}});
                  }),
                  "no `choices`");
  EXPECT_CONTAINS(error_of([] {
                    chat_response_from_json({{"choices", {{{"text", "x"}}}}});
                  }),
                  "no `message`");
}

TEST(OpenAIProtocol, ScoreRequestsAndResponses) {
  ScoreInput conversation{json::array({{{"role", "user"}, {"content", "q"}}}), ""};
  ScoreInput text{nullptr, "rendered"};
  json p = score_request_to_json(ScoreApi::kPooling, "rm", conversation, true);
  EXPECT_EQ(p["model"], "rm");
  EXPECT_EQ(p["messages"], conversation.messages);
  EXPECT_EQ(p["use_activation"], false);
  EXPECT_EQ(score_request_to_json(ScoreApi::kPooling, "rm", text, true)["input"], "rendered");
  json c = score_request_to_json(ScoreApi::kClassify, "rm", text, false);
  EXPECT_EQ(c["input"], json::array({"rendered"}));
  EXPECT_FALSE(c.contains("use_activation"));

  // vLLM's shapes: a sequence-level pooler, a token-level one (the last row), classify.
  json pooled = {{"data", {{{"index", 0}, {"object", "pooling"}, {"data", {2.5}}}}}};
  EXPECT_EQ(score_response_from_json(ScoreApi::kPooling, pooled), std::vector<double>{2.5});
  json per_token = {{"data", {{{"index", 0}, {"data", {{0.1}, {0.2}, {-1.75}}}}}}};
  EXPECT_EQ(score_response_from_json(ScoreApi::kPooling, per_token), std::vector<double>{-1.75});
  json classified = {
      {"data",
       {{{"index", 1}, {"label", "LABEL_0"}, {"probs", {-3.0}}, {"num_classes", 1}},
        {{"index", 0}, {"label", "LABEL_0"}, {"probs", {4.0}}, {"num_classes", 1}}}}};
  EXPECT_EQ(score_response_from_json(ScoreApi::kClassify, classified),
            (std::vector<double>{4.0, -3.0}));
  // Round trip through what expo serve writes.
  json written = score_response_to_json(ScoreApi::kClassify, {0.5, -0.25}, "rm", "classify-1", 0);
  EXPECT_EQ(score_response_from_json(ScoreApi::kClassify, written),
            (std::vector<double>{0.5, -0.25}));
  written = score_response_to_json(ScoreApi::kPooling, {1.0}, "rm", "pool-1", 0);
  EXPECT_EQ(written["data"][0]["object"], "pooling");
  EXPECT_EQ(score_response_from_json(ScoreApi::kPooling, written), std::vector<double>{1.0});

  json two_labels = {{"data", {{{"index", 0}, {"probs", {0.3, 0.7}}, {"num_classes", 2}}}}};
  EXPECT_CONTAINS(error_of([&] { score_response_from_json(ScoreApi::kClassify, two_labels); }),
                  "holds 2 values");
  EXPECT_CONTAINS(error_of([&] { score_response_from_json(ScoreApi::kClassify, pooled); }),
                  "no `probs`");
  EXPECT_CONTAINS(error_of([] { score_response_from_json(ScoreApi::kPooling, json::object()); }),
                  "no `data`");
}

TEST(OpenAIProtocol, ErrorMessageFromBody) {
  EXPECT_EQ(error_message_from_body(error_body("bad thing", "invalid_request_error").dump()),
            "bad thing");
  EXPECT_EQ(error_message_from_body(R"({"error": "plain"})"), "plain");
  EXPECT_EQ(error_message_from_body(R"({"detail": "Not Found"})"), "Not Found");
  EXPECT_EQ(error_message_from_body("Internal Server Error\n"), "Internal Server Error");
  EXPECT_EQ(error_message_from_body(""), "(empty body)");
  const std::string long_body(2000, 'x');
  const std::string shown = error_message_from_body(long_body, 100);
  EXPECT_LT(shown.size(), 130u);
  EXPECT_CONTAINS(shown, "(truncated)");
}

// ---- the client ------------------------------------------------------------------------

TEST(OpenAIClient, RefusesBadConfiguration) {
  EXPECT_CONTAINS(error_of([] { OpenAIClient({}, {}); }), "no endpoint");
  EXPECT_CONTAINS(error_of([] {
                    OpenAIClient({{"127.0.0.1:8000", ""}}, {});
                  }),
                  "not an http:// or https:// URL");
  ClientOptions zero_parallel;
  zero_parallel.parallel = 0;
  EXPECT_CONTAINS(error_of([&] {
                    OpenAIClient({{"http://127.0.0.1:1", ""}}, zero_parallel);
                  }),
                  "parallel");
}

TEST(OpenAIClient, ChatSucceedsAndSendsTheRequest) {
  FaultServer server;
  // A base URL ending in /v1/ works as well as a bare one.
  OpenAIClient client({{server.url() + "/v1/", "secret-key"}}, fast_options());
  ChatRequest r = prompt("hello");
  r.top_k = 20;
  r.seed = 5;
  ChatResponse answer = client.chat(r);
  EXPECT_EQ(answer.text, "echo: hello");
  EXPECT_EQ(answer.finish_reason, "stop");
  EXPECT_EQ(answer.prompt_tokens, 5u);
  EXPECT_EQ(answer.completion_tokens, 2u);
  ASSERT_EQ(server.requests(), 1);
  const json sent = server.bodies().at(0);
  EXPECT_EQ(sent["model"], "fault-model");
  EXPECT_EQ(sent["top_k"], 20);
  EXPECT_EQ(sent["seed"], 5);
  EXPECT_EQ(sent["max_tokens"], 16);
  EXPECT_FALSE(sent.contains("min_p"));
  EXPECT_EQ(server.authorizations().at(0), "Bearer secret-key");

  EXPECT_EQ(client.models(), std::vector<std::string>{"fault-model"});
  EXPECT_TRUE(client.healthy());
}

TEST(OpenAIClient, RetriesTooManyRequestsAndServerErrorsThenSucceeds) {
  FaultServer server;
  server.script(
      {Fault::kTooManyRequests, Fault::kServerError, Fault::kTooManyRequests, Fault::kServerError});
  OpenAIClient client({{server.url(), ""}}, fast_options());
  EXPECT_EQ(client.chat(prompt("again")).text, "echo: again");
  EXPECT_EQ(server.requests(), 5);  // four failures, then the answer
}

TEST(OpenAIClient, RetryAfterIsCappedByTheRequestTimeoutAndSaidOnStderr) {
  FaultServer server;
  server.script({Fault::kTooManyRequestsWaitLong});
  ClientOptions o = fast_options();
  o.timeout_s = 0.5;
  o.max_backoff_s = 1e6;  // only the request timeout caps the server's 100000 s
  OpenAIClient client({{server.url(), ""}}, o);
  ChatRequest r = prompt("later");
  r.label = "prompt 1";
  ::testing::internal::CaptureStderr();
  const auto start = std::chrono::steady_clock::now();
  const std::string text = client.chat(r).text;
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(text, "echo: later");
  EXPECT_EQ(server.requests(), 2);
  EXPECT_LT(waited, 60.0);  // not 100000 s: a bound that only a hang would cross
  EXPECT_CONTAINS(err, "prompt 1: " + server.url() + "/v1/chat/completions answered 429");
  EXPECT_CONTAINS(err, "Retry-After: 100000 s; waiting 0.5 s before retry 1 of 5");
}

TEST(OpenAIClient, GivesUpAfterMaxRetries) {
  FaultServer server;
  server.script(std::vector<Fault>(10, Fault::kServerError));
  ClientOptions o = fast_options();
  o.max_retries = 2;
  OpenAIClient client({{server.url(), ""}}, o);
  ChatRequest r = prompt("x");
  r.label = "prompt 3";
  const std::string error = error_of([&] { client.chat(r); });
  EXPECT_CONTAINS(error, "prompt 3: POST " + server.url() + "/v1/chat/completions");
  EXPECT_CONTAINS(error, "HTTP 500: Internal Server Error");
  EXPECT_CONTAINS(error, "gave up after 3 attempts");
  EXPECT_EQ(server.requests(), 3);
}

TEST(OpenAIClient, RetriesAfterATimeout) {
  FaultServer server(/*sleep_s=*/1.5);
  server.script({Fault::kSleep});
  ClientOptions o = fast_options();
  o.timeout_s = 0.3;
  OpenAIClient client({{server.url(), ""}}, o);
  EXPECT_EQ(client.chat(prompt("late")).text, "echo: late");
  EXPECT_EQ(server.requests(), 2);

  // Always too slow: the error says so.
  server.script({Fault::kSleep, Fault::kSleep});
  o.max_retries = 1;
  OpenAIClient impatient({{server.url(), ""}}, o);
  const std::string error = error_of([&] { impatient.chat(prompt("late")); });
  EXPECT_CONTAINS(error, "no complete answer within 0.3 s");
  EXPECT_CONTAINS(error, "gave up after 2 attempts");
}

TEST(OpenAIClient, AnswerBodiesAreBounded) {
  FaultServer server;
  ClientOptions o = fast_options();
  o.max_body_bytes = 20;  // the echo answer is longer
  OpenAIClient client({{server.url(), ""}}, o);
  ChatRequest r = prompt("hello");
  r.label = "prompt 4";
  const std::string error = error_of([&] { client.chat(r); });
  EXPECT_CONTAINS(error, "prompt 4: POST " + server.url() + "/v1/chat/completions");
  EXPECT_CONTAINS(error, "larger than expo reads");
  EXPECT_CONTAINS(error, "limit 20 bytes; raise it with EXPO_HTTP_MAX_BODY=SIZE");
  EXPECT_EQ(server.requests(), 1);  // not retried
  ::setenv("EXPO_HTTP_MAX_BODY", "3MiB", 1);
  EXPECT_EQ(ClientOptions::from_environment().max_body_bytes, 3u << 20);
  ::unsetenv("EXPO_HTTP_MAX_BODY");
  EXPECT_EQ(ClientOptions::from_environment().max_body_bytes, ClientOptions{}.max_body_bytes);
}

TEST(OpenAIClient, BadRequestFailsAtOnceQuotingTheServer) {
  FaultServer server;
  server.script({Fault::kBadRequest});
  OpenAIClient client({{server.url(), ""}}, fast_options());
  ChatRequest r = prompt("too long");
  r.label = "prompt 12";
  const std::string error = error_of([&] { client.chat(r); });
  EXPECT_CONTAINS(error, "prompt 12: POST " + server.url() + "/v1/chat/completions");
  EXPECT_CONTAINS(error, std::string("HTTP 400: ") + FaultServer::kBadRequestMessage);
  EXPECT_EQ(server.requests(), 1);  // no retry
}

TEST(OpenAIClient, ConnectionRefusedNamesTheUrlAfterRetries) {
  const std::string url = "http://127.0.0.1:" + std::to_string(testing::closed_port());
  ClientOptions o = fast_options();
  o.max_retries = 2;
  OpenAIClient client({{url, ""}}, o);
  const std::string error = error_of([&] { client.chat(prompt("anyone?")); });
  EXPECT_CONTAINS(error, "request: POST " + url + "/v1/chat/completions");
  EXPECT_CONTAINS(error, "could not connect");
  EXPECT_CONTAINS(error, "gave up after 3 attempts");
  EXPECT_CONTAINS(error, "is the server running");
  EXPECT_FALSE(client.healthy());
  EXPECT_CONTAINS(error_of([&] { client.models(); }), url + "/v1/models");
}

TEST(OpenAIClient, ServerDyingMidBatchKeepsEarlierResults) {
  FaultServer server;
  ClientOptions o = fast_options();
  o.parallel = 1;  // one at a time, so the server dies between request 3 and request 4
  o.max_retries = 2;
  OpenAIClient client({{server.url(), ""}}, o);
  std::vector<ChatRequest> requests;
  for (int i = 0; i < 10; ++i) requests.push_back(prompt("prompt " + std::to_string(i)));
  std::vector<std::pair<size_t, std::string>> reported;
  const std::string error = error_of([&] {
    client.chat_all(requests, [&](size_t i, const ChatResponse& r) {
      reported.emplace_back(i, r.text);
      if (reported.size() == 4) server.stop();
    });
  });
  ASSERT_EQ(reported.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(reported[i].first, i);
    EXPECT_EQ(reported[i].second, "echo: prompt " + std::to_string(i));
  }
  EXPECT_CONTAINS(error, "request 4: POST " + server.url() + "/v1/chat/completions");
  EXPECT_CONTAINS(error, "could not connect");
  EXPECT_CONTAINS(error, "4 of 10 requests had finished");
}

TEST(OpenAIClient, ParallelRequestsSpreadOverEndpointsInRequestOrder) {
  FaultServer a(1.0, /*answer_delay_ms=*/30);
  FaultServer b(1.0, /*answer_delay_ms=*/30);
  ClientOptions o = fast_options();
  o.parallel = 4;
  OpenAIClient client({{a.url(), ""}, {b.url(), ""}}, o);
  std::vector<ChatRequest> requests;
  for (int i = 0; i < 24; ++i)  // every third prompt is slow, so completions come out of order
    requests.push_back(prompt((i % 3 == 0 ? "slow " : "fast ") + std::to_string(i)));
  std::vector<size_t> completion_order;
  std::vector<ChatResponse> results = client.chat_all(
      requests, [&](size_t i, const ChatResponse&) { completion_order.push_back(i); });
  ASSERT_EQ(results.size(), requests.size());
  for (size_t i = 0; i < results.size(); ++i)
    EXPECT_EQ(results[i].text, "echo: " + requests[i].messages[0]["content"].get<std::string>());
  std::vector<size_t> sorted = completion_order;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_EQ(sorted.size(), requests.size());
  for (size_t i = 0; i < sorted.size(); ++i) EXPECT_EQ(sorted[i], i);  // each reported once
  EXPECT_GT(a.requests(), 0);
  EXPECT_GT(b.requests(), 0);
  EXPECT_EQ(a.requests() + b.requests(), 24);
}

TEST(OpenAIClient, RetriesGoToTheOtherEndpoint) {
  FaultServer up;
  const std::string down = "http://127.0.0.1:" + std::to_string(testing::closed_port());
  ClientOptions o = fast_options();
  o.parallel = 2;
  o.max_retries = 1;  // one retry is enough when it goes elsewhere
  OpenAIClient client({{down, ""}, {up.url(), ""}}, o);
  std::vector<ChatRequest> requests;
  for (int i = 0; i < 6; ++i) requests.push_back(prompt(std::to_string(i)));
  std::vector<ChatResponse> results = client.chat_all(requests);
  for (size_t i = 0; i < results.size(); ++i)
    EXPECT_EQ(results[i].text, "echo: " + std::to_string(i));
  EXPECT_EQ(up.requests(), 6);
}

TEST(OpenAIClient, CallbackErrorStopsTheBatch) {
  FaultServer server;
  ClientOptions o = fast_options();
  o.parallel = 1;
  OpenAIClient client({{server.url(), ""}}, o);
  std::vector<ChatRequest> requests(5, prompt("p"));
  const std::string error = error_of([&] {
    client.chat_all(requests, [](size_t i, const ChatResponse&) {
      if (i == 1) fail("disk full while saving answer ", i);
    });
  });
  EXPECT_CONTAINS(error, "disk full while saving answer 1");
  EXPECT_CONTAINS(error, "1 of 5 requests had finished");
  EXPECT_EQ(server.requests(), 2);
}

}  // namespace
}  // namespace expo
