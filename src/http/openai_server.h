#pragma once
// The HTTP server behind `expo serve`: an OpenAI-compatible API over any ServeBackend (the
// built-in engine in practice; a fake in tests), so this file does not depend on the engine.
// The transport is http/http_server.h (a thread per connection, deadlines for heads and
// bodies, a body limit whatever the Content-Type).
//
// Routes:
//   GET  /health               200 "{}", answered at once whatever the engine is doing
//   GET  /v1/models            {"object": "list", "data": [{"id", "object": "model", ...}]}
//   GET  /metrics              Prometheus text (http/serve_metrics.h)
//   POST /v1/chat/completions  chat.completion, or with "stream": true server-sent events of
//   POST /v1/completions       chat.completion.chunk / text_completion chunks, then
//                              "data: [DONE]" (http/serve_request.h)
//   POST /pooling, /classify   reward scores in vLLM's shapes (openai_protocol.h), for a
//                              reward model only (400 otherwise)
// A bad request (malformed JSON, a missing, mistyped or unsupported field, or an expo::Error
// from the backend) is answered 400 with {"error": {"message", "type": "invalid_request_error"}};
// a "model" other than the served one 404 (code "model_not_found"), as vLLM does; a full queue
// 503 with Retry-After; an unknown route 404; any other exception 500.
//
// Concurrency: the backend takes requests from every connection's thread at once and batches
// them itself. While a request is generating, the handler watches its client: a client that
// disconnects (or stops reading a stream) cancels its generation, which the backend drops
// before its next step.
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/generation_stream.h"
#include "http/serve_metrics.h"
#include "http/serve_request.h"

namespace expo {

class ServeBackend {
 public:
  virtual ~ServeBackend() = default;
  virtual std::string model_name() = 0;
  virtual bool is_reward_model() = 0;
  // Starts a generation and returns at once; the stream receives the text. Throws
  // expo::Error for a request this model cannot serve (400), ServerBusy when it cannot take
  // more now (503). Called from many threads at once.
  virtual std::shared_ptr<GenerationStream> generate(const ServeRequest& request) = 0;
  // One score per input. The argument is either a conversation (an array of message objects:
  // one score) or texts already rendered with the chat template (an array of strings: one
  // score each). nullopt: this is not a reward model (answered 400). Called from many
  // threads at once; blocks until scored.
  virtual std::optional<std::vector<double>> score(const nlohmann::json& messages_or_input) = 0;
  // Where the backend reports tokens, queue lengths and latencies (the server owns it).
  virtual void set_metrics(ServeMetrics* /*metrics*/) {}
  // Ends every generation in flight and refuses new ones (the server is stopping).
  virtual void shutdown() {}
};

struct OpenAIServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                              // 0: a free port chosen by the system
  size_t max_body_bytes = size_t(32) << 20;  // --max-body-size
  size_t max_connections = 512;
  double head_timeout_seconds = 10;  // request line and headers
  double body_timeout_seconds = 30;  // plus 1 s per MiB of body
  double idle_timeout_seconds = 5;   // kept-alive connections between requests
};

class OpenAIServer {
 public:
  OpenAIServer(ServeBackend& backend, OpenAIServerOptions options);
  // The defaults, on host:port.
  OpenAIServer(ServeBackend& backend, std::string host = "127.0.0.1", int port = 0);
  ~OpenAIServer();  // stops the server
  OpenAIServer(const OpenAIServer&) = delete;
  OpenAIServer& operator=(const OpenAIServer&) = delete;

  // Binds (an expo::Error naming host:port if it cannot) and serves on background threads;
  // returns once the server accepts connections.
  void start();
  // Stops accepting, cancels nothing, waits for the requests being answered. Idempotent.
  void stop();
  // start() unless started already (so a caller can start(), print port(), then run()),
  // serve until SIGINT/SIGTERM (expo::interrupted()), then stop().
  void run();
  // Called with one line per answered request ("POST /v1/chat/completions 200"), from the
  // connection threads; set it before start().
  void set_request_log(std::function<void(const std::string& line)> log);
  // The bound port (after start()).
  int port() const;
  const std::string& host() const;
  ServeMetrics& metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace expo
