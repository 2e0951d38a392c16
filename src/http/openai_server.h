#pragma once
// The HTTP server behind `expo serve`: an OpenAI-compatible API over any ServeBackend (the
// built-in engine in practice; a fake in tests), so this file does not depend on the engine.
// cpp-httplib.
//
// Routes:
//   GET  /health               200 "{}"
//   GET  /v1/models            {"object": "list", "data": [{"id", "object": "model", ...}]}
//   POST /v1/chat/completions  OpenAI's chat.completion shape (openai_protocol.h);
//                              "stream": true is refused (400)
//   POST /pooling, /classify   reward scores in vLLM's shapes (openai_protocol.h), for a
//                              reward model only (400 otherwise)
// A bad request (malformed JSON, a missing or mistyped field, or an expo::Error from the
// backend) is answered 400 with {"error": {"message", "type": "invalid_request_error"}}; a
// "model" other than the served one 404 (code "model_not_found"), as vLLM does; an unknown
// route 404; any other exception 500.
//
// Concurrency: httplib accepts connections on a pool of threads, but calls into the backend
// are serialised by a mutex unless the backend says it is re-entrant: the engine is not, so
// concurrent clients queue and are answered one at a time, in the order they get the mutex.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/openai_protocol.h"

namespace expo {

class ServeBackend {
 public:
  virtual ~ServeBackend() = default;
  virtual std::string model_name() = 0;
  // Throws expo::Error for a request this model cannot serve (answered 400 with its message).
  virtual ChatResponse chat(const ChatRequest& request) = 0;
  // One score per input. The argument is either a conversation (an array of message objects:
  // one score) or texts already rendered with the chat template (an array of strings: one
  // score each). nullopt: this is not a reward model (answered 400).
  virtual std::optional<std::vector<double>> score(const nlohmann::json& messages_or_input) = 0;
  virtual bool is_reward_model() = 0;
  // True if chat() and score() may be called from several threads at once.
  virtual bool reentrant() { return false; }
};

class OpenAIServer {
 public:
  // port 0: a free port chosen by the system (see port() after start()).
  OpenAIServer(ServeBackend& backend, std::string host = "127.0.0.1", int port = 0);
  ~OpenAIServer();  // stops the server
  OpenAIServer(const OpenAIServer&) = delete;
  OpenAIServer& operator=(const OpenAIServer&) = delete;

  // Binds (an expo::Error naming host:port if it cannot) and serves on a background thread;
  // returns once the server accepts connections.
  void start();
  // Stops accepting, finishes the requests being served, joins the thread. Idempotent.
  void stop();
  // start() unless started already (so a caller can start(), print port(), then run()),
  // serve until SIGINT/SIGTERM (expo::interrupted()), then stop().
  void run();
  // Called with one line per answered request ("POST /v1/chat/completions 200"), from
  // httplib's threads; set it before start().
  void set_request_log(std::function<void(const std::string& line)> log);
  // The bound port (after start()).
  int port() const;
  const std::string& host() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace expo
