#include "http/openai_server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/interrupt.h"

namespace expo {

using nlohmann::json;

namespace {

// Far above any chat or scoring request; a bound so that one client cannot make the server
// buffer gigabytes.
constexpr size_t kMaxRequestBytes = 64u << 20;

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message,
                 const std::string& type = "invalid_request_error", const std::string& code = "") {
  reply(res, status, error_body(message, type, code));
}

// A client error with its HTTP status, thrown inside a handler and answered by `handle`.
struct HttpError {
  int status;
  std::string message;
  std::string code;
};

std::optional<bool> optional_bool(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) throw HttpError{400, str("field `", key, "` must be true or false"), ""};
  return it->get<bool>();
}

}  // namespace

struct OpenAIServer::Impl {
  ServeBackend& backend;
  std::string host;
  int requested_port;
  int bound_port = 0;
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> listen_returned{false};
  std::mutex backend_mutex;  // the engine is not re-entrant (see the header)
  std::atomic<uint64_t> next_id{0};
  uint64_t id_salt = std::random_device{}();

  Impl(ServeBackend& b, std::string h, int p) : backend(b), host(std::move(h)), requested_port(p) {}

  std::string new_id(const char* prefix) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(id_salt ^ (++next_id * 0x9e3779b97f4a7c15ULL)));
    return std::string(prefix) + hex;
  }

  template <typename F>
  auto with_backend(F&& f) {
    if (backend.reentrant()) return f();
    std::lock_guard lock(backend_mutex);
    return f();
  }

  json parse_body(const httplib::Request& req) {
    json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded())
      throw HttpError{400,
                      req.body.empty() ? std::string("the request has no body; send a JSON object")
                                       : std::string("the request body is not valid JSON"),
                      ""};
    if (!body.is_object()) throw HttpError{400, "the request body must be a JSON object", ""};
    return body;
  }

  // vLLM answers a request for another model with 404; so does expo serve, which catches a
  // client pointed at the wrong server.
  void check_model(const json& body, const std::string& served) {
    auto it = body.find("model");
    if (it == body.end() || it->is_null()) return;
    if (!it->is_string()) throw HttpError{400, "field `model` must be a string", ""};
    if (it->get<std::string>() != served)
      throw HttpError{404,
                      str("The model `", it->get<std::string>(),
                          "` does not exist; this server serves `", served, "`"),
                      "model_not_found"};
  }

  // Runs a handler body, mapping failures to OpenAI-style error answers.
  template <typename F>
  void handle(httplib::Response& res, F&& f) {
    try {
      f();
    } catch (const HttpError& e) {
      reply_error(res, e.status, e.message, "invalid_request_error", e.code);
    } catch (const Error& e) {
      reply_error(res, 400, e.what());
    } catch (const std::exception& e) {
      reply_error(res, 500, str("internal error: ", e.what()), "internal_error");
    }
  }

  void chat(const httplib::Request& req, httplib::Response& res) {
    handle(res, [&] {
      const json body = parse_body(req);
      const std::string served = backend.model_name();
      ChatRequest request = chat_request_from_json(body);  // expo::Error -> 400
      check_model(body, served);
      request.model = served;
      const ChatResponse response = with_backend([&] { return backend.chat(request); });
      reply(res, 200,
            chat_response_to_json(response, served, new_id("chatcmpl-"),
                                  static_cast<int64_t>(std::time(nullptr))));
    });
  }

  void score(ScoreApi api, const httplib::Request& req, httplib::Response& res) {
    handle(res, [&] {
      const std::string served = backend.model_name();
      const char* path = score_api_path(api);
      if (!backend.is_reward_model())
        throw HttpError{400,
                        str("model `", served, "` is not a reward model; ", path,
                            " needs one (serve a checkpoint with a reward head, e.g. "
                            "*ForSequenceClassification)"),
                        ""};
      const json body = parse_body(req);
      check_model(body, served);
      json argument;
      size_t expected = 1;
      auto messages = body.find("messages");
      auto input = body.find("input");
      if (messages != body.end() && !messages->is_null()) {
        check_chat_messages(*messages, "messages");  // expo::Error -> 400
        argument = *messages;
      } else if (input != body.end() && !input->is_null()) {
        if (input->is_string()) {
          argument = json::array({*input});
        } else if (input->is_array() && !input->empty()) {
          for (size_t i = 0; i < input->size(); ++i) {
            if ((*input)[i].is_number_integer() || (*input)[i].is_array())
              throw HttpError{400, "field `input` holds token ids; expo serve takes text", ""};
            if (!(*input)[i].is_string())
              throw HttpError{400, str("input[", i, "] must be a string"), ""};
          }
          argument = *input;
        } else {
          throw HttpError{400, "field `input` must be a string or a non-empty array of strings",
                          ""};
        }
        expected = argument.size();
      } else {
        throw HttpError{400, "missing field `messages` (a conversation) or `input` (rendered text)",
                        ""};
      }
      // vLLM's precedence: the deprecated names first, then use_activation.
      std::optional<bool> activation;
      for (const char* key : {"softmax", "activation", "use_activation"}) {
        if (auto v = optional_bool(body, key)) {
          activation = v;
          break;
        }
      }
      const bool apply_sigmoid = activation.value_or(api == ScoreApi::kClassify);

      const auto scores = with_backend([&] { return backend.score(argument); });
      if (!scores)
        throw HttpError{
            400, str("model `", served, "` is not a reward model; ", path, " needs one"), ""};
      if (scores->size() != expected)
        fail("the backend returned ", scores->size(), " scores for ", expected, " inputs");
      std::vector<double> out = *scores;
      if (apply_sigmoid)
        for (double& v : out) v = 1.0 / (1.0 + std::exp(-v));
      reply(res, 200,
            score_response_to_json(api, out, served,
                                   new_id(api == ScoreApi::kPooling ? "pool-" : "classify-"),
                                   static_cast<int64_t>(std::time(nullptr))));
    });
  }

  void models(httplib::Response& res) {
    handle(res, [&] {
      json model = {{"id", backend.model_name()},
                    {"object", "model"},
                    {"created", static_cast<int64_t>(std::time(nullptr))},
                    {"owned_by", "expo"}};
      reply(res, 200, {{"object", "list"}, {"data", json::array({model})}});
    });
  }

  void install_routes() {
    // httplib's default also sets SO_REUSEPORT, which lets a second server bind the same port
    // and silently share its connections; SO_REUSEADDR alone only allows restarting at once.
    server.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    server.set_payload_max_length(kMaxRequestBytes);
    server.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.status = 200;
      res.set_content("{}", "application/json");
    });
    server.Get("/v1/models",
               [this](const httplib::Request&, httplib::Response& res) { models(res); });
    server.Post("/v1/chat/completions",
                [this](const httplib::Request& req, httplib::Response& res) { chat(req, res); });
    server.Post("/pooling", [this](const httplib::Request& req, httplib::Response& res) {
      score(ScoreApi::kPooling, req, res);
    });
    server.Post("/classify", [this](const httplib::Request& req, httplib::Response& res) {
      score(ScoreApi::kClassify, req, res);
    });
    // Called for every status >= 400; only answers those no handler wrote (unknown routes,
    // bodies over the limit).
    server.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          const int status = res.status;
          if (status == 404) {
            reply_error(res, 404,
                        str("no route ", req.method, " ", req.path,
                            "; expo serve answers GET /health, GET /v1/models, "
                            "POST /v1/chat/completions, POST /pooling and POST /classify"),
                        "invalid_request_error", "not_found");
          } else if (status == 413) {
            reply_error(res, 413, str("the request body is over ", kMaxRequestBytes >> 20, " MiB"));
          } else {
            reply_error(res, status, str("HTTP ", status, " for ", req.method, " ", req.path),
                        status >= 500 ? "internal_error" : "invalid_request_error");
          }
          return httplib::Server::HandlerResponse::Handled;
        }));
    server.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown exception";
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          reply_error(res, 500, str("internal error: ", what), "internal_error");
        });
  }
};

OpenAIServer::OpenAIServer(ServeBackend& backend, std::string host, int port)
    : impl_(std::make_unique<Impl>(backend, std::move(host), port)) {
  if (port < 0 || port > 65535) fail("port ", port, " is out of range; use 0..65535 (0: any)");
  impl_->install_routes();
}

OpenAIServer::~OpenAIServer() { stop(); }

void OpenAIServer::start() {
  Impl& s = *impl_;
  if (s.thread.joinable()) fail("the server on ", s.host, ":", s.bound_port, " is already running");
  int port = s.requested_port;
  if (port == 0) {
    port = s.server.bind_to_any_port(s.host);
  } else if (!s.server.bind_to_port(s.host, port)) {
    port = -1;
  }
  if (port <= 0)
    fail("cannot listen on ", s.host, ":", s.requested_port,
         "; is another server using the port, or is the address not one of this machine's? "
         "choose another with --port/--host");
  s.bound_port = port;
  s.listen_returned = false;
  s.thread = std::thread([&s] {
    s.server.listen_after_bind();
    s.listen_returned = true;
  });
  // httplib's stop() only acts once the listening loop runs: wait for it, so that a stop()
  // right after start() cannot be lost.
  while (!s.server.is_running() && !s.listen_returned)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (s.listen_returned) {
    s.thread.join();
    fail("the server on ", s.host, ":", port, " stopped as soon as it started");
  }
}

void OpenAIServer::stop() {
  Impl& s = *impl_;
  if (!s.thread.joinable()) return;
  s.server.stop();
  s.thread.join();
}

void OpenAIServer::set_request_log(std::function<void(const std::string& line)> log) {
  if (impl_->thread.joinable()) fail("set_request_log must be called before start()");
  impl_->server.set_logger(
      [log = std::move(log)](const httplib::Request& req, const httplib::Response& res) {
        if (log) log(str(req.method, " ", req.path, " ", res.status));
      });
}

void OpenAIServer::run() {
  install_interrupt_handlers();
  if (!impl_->thread.joinable()) start();
  while (!interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop();
}

int OpenAIServer::port() const { return impl_->bound_port; }

const std::string& OpenAIServer::host() const { return impl_->host; }

}  // namespace expo
