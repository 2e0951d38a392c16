#pragma once
// A scripted OpenAI-compatible server for the client tests: POST /v1/chat/completions answers
// the next fault of its script (429, 500, a sleep past the client's timeout, a 400 with an
// OpenAI error body), then succeeds; stop() closes it, so that later requests are refused
// (a server that died). It listens on 127.0.0.1 only, on a port the system picks. The
// production server (src/http/openai_server.cpp) has no such hooks.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace expo::testing {

class FaultServer {
 public:
  enum class Fault {
    kOk,
    kTooManyRequests,          // 429 with Retry-After: 0
    kTooManyRequestsWaitLong,  // 429 with Retry-After: 100000 (seconds)
    kServerError,              // 500
    kSleep,                    // sleeps sleep_s before answering OK (past a short client timeout)
    kBadRequest,               // 400 {"error": {"message": kBadRequestMessage, ...}}
  };
  static constexpr const char* kBadRequestMessage =
      "This model's maximum context length is 4096 tokens; you asked for 99999";

  // answer_delay_ms: every OK answer to a prompt containing "slow" waits this long first.
  explicit FaultServer(double sleep_s = 1.0, int answer_delay_ms = 0)
      : sleep_s_(sleep_s), answer_delay_ms_(answer_delay_ms) {
    server_.set_keep_alive_timeout(1);  // stop() waits for idle keep-alive connections
    server_.Post("/v1/chat/completions",
                 [this](const httplib::Request& req, httplib::Response& res) { chat(req, res); });
    server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object":"list","data":[{"id":"fault-model","object":"model"}]})",
                      "application/json");
    });
    server_.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("OK", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("FaultServer: cannot bind 127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FaultServer() { stop(); }

  void script(std::vector<Fault> faults) {
    std::lock_guard lock(mutex_);
    script_.assign(faults.begin(), faults.end());
  }

  // Closes the listening socket and waits for the connections being served: afterwards,
  // connecting to port() is refused.
  void stop() {
    if (!thread_.joinable()) return;
    server_.stop();
    thread_.join();
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_; }
  std::vector<nlohmann::json> bodies() const {
    std::lock_guard lock(mutex_);
    return bodies_;
  }
  std::vector<std::string> authorizations() const {
    std::lock_guard lock(mutex_);
    return authorizations_;
  }

 private:
  void chat(const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    Fault fault = Fault::kOk;
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    {
      std::lock_guard lock(mutex_);
      if (!script_.empty()) {
        fault = script_.front();
        script_.pop_front();
      }
      bodies_.push_back(body);
      authorizations_.push_back(req.get_header_value("Authorization"));
    }
    switch (fault) {
      case Fault::kTooManyRequests:
        res.status = 429;
        res.set_header("Retry-After", "0");
        res.set_content(R"({"error":{"message":"slow down","type":"rate_limit"}})",
                        "application/json");
        return;
      case Fault::kTooManyRequestsWaitLong:
        res.status = 429;
        res.set_header("Retry-After", "100000");
        res.set_content(R"({"error":{"message":"come back tomorrow","type":"rate_limit"}})",
                        "application/json");
        return;
      case Fault::kServerError:
        res.status = 500;
        res.set_content("Internal Server Error", "text/plain");
        return;
      case Fault::kBadRequest:
        res.status = 400;
        res.set_content(
            nlohmann::json{
                {"error",
                 {{"message", kBadRequestMessage}, {"type", "BadRequestError"}, {"code", 400}}}}
                .dump(),
            "application/json");
        return;
      case Fault::kSleep:
        std::this_thread::sleep_for(std::chrono::duration<double>(sleep_s_));
        break;
      case Fault::kOk:
        break;
    }
    std::string prompt = body["messages"].back()["content"].get<std::string>();
    if (answer_delay_ms_ > 0 && prompt.find("slow") != std::string::npos)
      std::this_thread::sleep_for(std::chrono::milliseconds(answer_delay_ms_));
    nlohmann::json answer = {
        {"id", "chatcmpl-fault"},
        {"object", "chat.completion"},
        {"created", 0},
        {"model", body.value("model", "")},
        {"choices",
         {{{"index", 0},
           {"message", {{"role", "assistant"}, {"content", "echo: " + prompt}}},
           {"finish_reason", "stop"}}}},
        {"usage",
         {{"prompt_tokens", prompt.size()}, {"completion_tokens", 2}, {"total_tokens", 0}}}};
    res.set_content(answer.dump(), "application/json");
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  double sleep_s_;
  int answer_delay_ms_;
  std::atomic<int> requests_{0};
  mutable std::mutex mutex_;
  std::deque<Fault> script_;
  std::vector<nlohmann::json> bodies_;
  std::vector<std::string> authorizations_;
};

// A port nothing listens on: bound by the system, then closed.
inline int closed_port() {
  FaultServer server;
  const int port = server.port();
  server.stop();
  return port;
}

}  // namespace expo::testing
