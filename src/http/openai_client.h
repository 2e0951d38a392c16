#pragma once
// A client for OpenAI-compatible servers (vLLM, llama.cpp's server, SGLang, `expo serve`):
// generation through POST {base}/v1/chat/completions, reward scores through vLLM's
// POST {base}/pooling or {base}/classify (the fields read, and the vLLM flags that give raw
// logits, are in openai_protocol.h), GET {base}/v1/models and GET {base}/health. libcurl.
//
// Batches (chat_all, score_all) keep up to `parallel` requests in flight, each worker thread
// with its own curl handle (so connections are reused), and spread them over the endpoints:
// each request goes to the endpoint with the fewest requests in flight, ties broken in turn.
// Results come back in request order; the callback sees each one as it completes.
//
// Failures. HTTP 429, 5xx, timeouts and connection errors (refused, reset, nothing received)
// are retried up to max_retries times, after initial_backoff_s x 2^k (capped at
// max_backoff_s; at least what a 429's Retry-After asks, but never longer than the request
// timeout, and said on stderr when a Retry-After sets the wait), with jitter from a generator
// seeded by ClientOptions::seed; a retry goes to another endpoint when there is one. Any other
// answer (400, 401, 404, ...) fails at once, quoting the server's message. Every error names
// the URL and the request ("prompt 12: POST http://127.0.0.1:8000/v1/chat/completions: ...").
// In a batch the first failure stops new requests from starting; the ones in flight finish
// and are reported to the callback, then chat_all/score_all throw the error, which says how
// many requests had finished. So a caller that saves results from the callback keeps
// everything done before a server died, and can resume with the rest.
//
// Ctrl-C (expo::interrupted(), src/core/interrupt.h) aborts transfers in flight and backoff
// waits; the batch then throws like any other failure.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/openai_protocol.h"

namespace expo {

struct Endpoint {
  // e.g. http://127.0.0.1:8000, with or without a trailing /v1 (the client strips it and adds
  // /v1/chat/completions, /v1/models, /health, /pooling, /classify to what remains).
  std::string base_url;
  std::string api_key;  // sent as "Authorization: Bearer KEY" when not empty
};

struct ClientOptions {
  double timeout_s = 600;         // one attempt, from connecting to the last byte of the answer
  double connect_timeout_s = 10;  // the TCP (and TLS) connection alone, within timeout_s
  int max_retries = 5;            // attempts after the first, for the failures listed above
  double initial_backoff_s = 1;   // the first wait; doubled after each retry
  double max_backoff_s = 60;
  size_t parallel = 8;  // requests in flight at once in chat_all/score_all (>= 1)
  uint64_t seed = 0;    // the backoff jitter's generator
  ScoreApi score_api = ScoreApi::kPooling;
  bool raw_scores = true;  // send "use_activation": false, for the raw logit
  // The largest answer body read (after decompression): a bigger one stops the transfer at once
  // and fails the request, naming the URL. Real answers are a few kB to a few MB; the default
  // can be raised with EXPO_HTTP_MAX_BODY=SIZE (ClientOptions::from_environment).
  uint64_t max_body_bytes = uint64_t{64} << 20;

  // The defaults, with max_body_bytes from EXPO_HTTP_MAX_BODY when set.
  static ClientOptions from_environment();
};

inline constexpr const char* kHttpMaxBodyEnv = "EXPO_HTTP_MAX_BODY";

// Called once per finished request, from the worker thread that finished it, never two at a
// time (a mutex serialises them), in completion order. It may throw: the batch then stops as
// on a failed request.
using ChatCallback = std::function<void(size_t index, const ChatResponse& response)>;
using ScoreCallback = std::function<void(size_t index, double score)>;

class OpenAIClient {
 public:
  // Throws expo::Error for no endpoint, a base URL that is not http(s)://..., or options out
  // of range.
  OpenAIClient(std::vector<Endpoint> endpoints, ClientOptions options = {});
  ~OpenAIClient();
  OpenAIClient(const OpenAIClient&) = delete;
  OpenAIClient& operator=(const OpenAIClient&) = delete;

  ChatResponse chat(const ChatRequest& request);
  std::vector<ChatResponse> chat_all(const std::vector<ChatRequest>& requests,
                                     const ChatCallback& on_done = {});

  // The reward model's score of each input, through ClientOptions::score_api, one HTTP
  // request per input. `model` is the served model's name (see models()).
  double score(const std::string& model, const ScoreInput& input);
  std::vector<double> score_all(const std::string& model, const std::vector<ScoreInput>& inputs,
                                const ScoreCallback& on_done = {});

  // The ids served by the first endpoint (GET /v1/models), with retries.
  std::vector<std::string> models();
  // Whether every endpoint answers GET /health with 200 (one attempt each, no retries,
  // within min(timeout_s, 10 s)).
  bool healthy();

  const std::vector<Endpoint>& endpoints() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace expo
