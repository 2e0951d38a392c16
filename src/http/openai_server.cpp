#include "http/openai_server.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <iterator>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/interrupt.h"
#include "http/http_server.h"
#include "http/json_fields.h"

namespace expo {

using nlohmann::json;

namespace {

// How often a handler waiting for tokens looks at its client.
constexpr std::chrono::milliseconds kClientCheck{50};

std::string dump(const json& body) {
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string error_text(int status, const std::string& message, const std::string& code = "") {
  const std::string type =
      status >= 500 ? (status == 503 ? "server_busy" : "internal_error") : "invalid_request_error";
  return dump(error_body(message, type, code));
}

// A client error with its HTTP status, thrown inside a handler and answered by `handle`.
struct HttpError {
  int status;
  std::string message;
  std::string code;
};

// Cancels a generation unless it was answered in full: a handler that returns early (its
// client went away, a write failed, an exception) frees the batch slot.
struct CancelUnlessDone {
  std::shared_ptr<GenerationStream> stream;
  bool done = false;
  ~CancelUnlessDone() {
    if (!done) stream->cancel();
  }
};

std::string sse(const json& chunk) { return "data: " + dump(chunk) + "\n\n"; }

// Every route, for the 404/405 messages and the metrics' route label; Impl::route dispatches.
struct Route {
  const char* method;
  const char* path;
};
constexpr Route kRouteTable[] = {{"GET", "/health"},          {"GET", "/v1/models"},
                                 {"GET", "/metrics"},         {"POST", "/v1/chat/completions"},
                                 {"POST", "/v1/completions"}, {"POST", "/pooling"},
                                 {"POST", "/classify"}};

bool known_path(const std::string& path) {
  for (const Route& r : kRouteTable)
    if (path == r.path) return true;
  return false;
}

// "expo serve answers GET /health, ... and POST /classify"
std::string routes_text() {
  std::string text = "expo serve answers ";
  const size_t n = std::size(kRouteTable);
  for (size_t i = 0; i < n; ++i)
    text += str(i == 0       ? ""
                : i + 1 == n ? " and "
                             : ", ",
                kRouteTable[i].method, " ", kRouteTable[i].path);
  return text;
}

}  // namespace

struct OpenAIServer::Impl {
  ServeBackend& backend;
  OpenAIServerOptions options;
  ServeMetrics metrics;
  std::function<void(const std::string&)> log;
  std::unique_ptr<HttpServer> http;
  std::atomic<uint64_t> next_id{0};
  uint64_t id_salt = std::random_device{}();

  Impl(ServeBackend& b, OpenAIServerOptions o) : backend(b), options(std::move(o)) {}

  std::string new_id(const char* prefix) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(id_salt ^ (++next_id * 0x9e3779b97f4a7c15ULL)));
    return std::string(prefix) + hex;
  }

  json parse_body(const HttpRequest& req) {
    try {
      // The parsed form may take a few times the body (strings, small values); a body of many
      // tiny values is refused before it is built.
      return parse_request_body(req.body, 8 * options.max_body_bytes + (size_t(1) << 20));
    } catch (const Error& e) {
      throw HttpError{400, e.what(), ""};
    }
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

  // Runs a handler body, mapping failures to OpenAI-style error answers (unless the answer
  // has started: then the connection just ends).
  template <typename F>
  void handle(HttpResponder& res, F&& f) {
    auto answer = [&](int status, const std::string& message, const std::string& code,
                      std::vector<HttpHeader> extra = {}) {
      if (!res.responded())
        res.send(status, "application/json", error_text(status, message, code), extra);
    };
    try {
      f();
    } catch (const HttpError& e) {
      answer(e.status, e.message, e.code);
    } catch (const ServerBusy& e) {
      answer(503, e.what(), "", {{"Retry-After", "1"}});
    } catch (const Error& e) {
      answer(400, e.what(), "");
    } catch (const std::exception& e) {
      answer(500, str("internal error: ", e.what()), "");
    }
  }

  void generation(ServeEndpoint endpoint, const HttpRequest& req, HttpResponder& res) {
    handle(res, [&] {
      const json body = parse_body(req);
      const std::string served = backend.model_name();
      ServeRequest request = serve_request_from_json(body, endpoint);  // expo::Error -> 400
      check_model(body, served);
      request.generation.model = served;
      CancelUnlessDone guard{backend.generate(request)};
      GenerationStream& stream = *guard.stream;
      const bool chat = endpoint == ServeEndpoint::kChat;
      const std::string id = new_id(chat ? "chatcmpl-" : "cmpl-");
      const int64_t created = static_cast<int64_t>(std::time(nullptr));

      if (!request.stream) {
        std::string text;
        std::vector<StreamedLogprob> logprobs;
        for (;;) {
          if (!stream.wait(kClientCheck)) {
            if (res.client_gone()) return;  // the guard cancels
            continue;
          }
          StreamUpdate u = stream.take();
          text += u.text;
          for (auto& l : u.logprobs) logprobs.push_back(std::move(l));
          if (!u.finished) continue;
          guard.done = true;
          if (!u.error.empty()) throw std::runtime_error(u.error);
          res.send(
              200, "application/json",
              dump(serve_response_to_json(request, text, logprobs, u.finish_reason, u.prompt_tokens,
                                          u.completion_tokens, served, id, created)));
          return;
        }
      }

      if (!res.begin_stream(200, "text/event-stream", {{"X-Accel-Buffering", "no"}})) return;
      if (chat &&
          !res.write(sse(serve_chunk_to_json(request, "", {}, true, "", served, id, created))))
        return;
      for (;;) {
        if (!stream.wait(kClientCheck)) {
          if (res.client_gone()) return;
          continue;
        }
        StreamUpdate u = stream.take();
        if (!u.text.empty() || !u.logprobs.empty()) {
          if (!res.write(sse(serve_chunk_to_json(request, u.text, u.logprobs, false, "", served, id,
                                                 created))))
            return;
        }
        if (!u.finished) continue;
        guard.done = true;
        std::string tail;
        if (!u.error.empty()) {
          tail += sse(error_body(u.error, "internal_error"));
        } else {
          tail += sse(
              serve_chunk_to_json(request, "", {}, false, u.finish_reason, served, id, created));
          if (request.include_usage)
            tail += sse(serve_usage_chunk_to_json(request, u.prompt_tokens, u.completion_tokens,
                                                  served, id, created));
        }
        tail += "data: [DONE]\n\n";
        if (res.write(tail)) res.end();
        return;
      }
    });
  }

  void score(ScoreApi api, const HttpRequest& req, HttpResponder& res) {
    handle(res, [&] {
      const std::string served = backend.model_name();
      const char* path = score_api_path(api);
      if (!backend.is_reward_model())
        throw HttpError{400,
                        str("model `", served, "` is not a reward model; ", path,
                            " needs one (serve a checkpoint with a reward head, e.g. "
                            "*ForSequenceClassification or InternLM2ForRewardModel)"),
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
        if (find_field(body, key)) {
          activation = bool_field(body, key, false);
          break;
        }
      }
      const bool apply_sigmoid = activation.value_or(api == ScoreApi::kClassify);

      const auto scores = backend.score(argument);
      if (!scores)
        throw HttpError{
            400, str("model `", served, "` is not a reward model; ", path, " needs one"), ""};
      if (scores->size() != expected)
        fail("the backend returned ", scores->size(), " scores for ", expected, " inputs");
      std::vector<double> out = *scores;
      if (apply_sigmoid)
        for (double& v : out) v = 1.0 / (1.0 + std::exp(-v));
      res.send(200, "application/json",
               dump(score_response_to_json(
                   api, out, served, new_id(api == ScoreApi::kPooling ? "pool-" : "classify-"),
                   static_cast<int64_t>(std::time(nullptr)))));
    });
  }

  void models(HttpResponder& res) {
    handle(res, [&] {
      json model = {{"id", backend.model_name()},
                    {"object", "model"},
                    {"created", static_cast<int64_t>(std::time(nullptr))},
                    {"owned_by", "expo"}};
      res.send(200, "application/json", dump({{"object", "list"}, {"data", json::array({model})}}));
    });
  }

  void route(const HttpRequest& req, HttpResponder& res) {
    const std::string& p = req.path;
    const bool get = req.method == "GET" || req.method == "HEAD";
    const bool post = req.method == "POST";
    if (get && p == "/health") {
      res.send(200, "application/json", "{}");
    } else if (get && p == "/v1/models") {
      models(res);
    } else if (get && p == "/metrics") {
      res.send(200, "text/plain; version=0.0.4; charset=utf-8", metrics.text(backend.model_name()));
    } else if (post && p == "/v1/chat/completions") {
      generation(ServeEndpoint::kChat, req, res);
    } else if (post && p == "/v1/completions") {
      generation(ServeEndpoint::kCompletions, req, res);
    } else if (post && p == "/pooling") {
      score(ScoreApi::kPooling, req, res);
    } else if (post && p == "/classify") {
      score(ScoreApi::kClassify, req, res);
    } else if (known_path(p)) {
      res.send(
          405, "application/json",
          error_text(405, str("method ", req.method, " is not allowed on ", p, "; ", routes_text()),
                     "method_not_allowed"));
    } else {
      res.send(
          404, "application/json",
          error_text(404, str("no route ", req.method, " ", p, "; ", routes_text()), "not_found"));
    }
  }

  static std::string route_label(const std::string& path) {
    return known_path(path) ? path : "other";
  }
};

OpenAIServer::OpenAIServer(ServeBackend& backend, OpenAIServerOptions options)
    : impl_(std::make_unique<Impl>(backend, std::move(options))) {
  const auto& o = impl_->options;
  if (o.port < 0 || o.port > 65535)
    fail("port ", o.port, " is out of range; use 0..65535 (0: any)");
  backend.set_metrics(&impl_->metrics);
}

OpenAIServer::OpenAIServer(ServeBackend& backend, std::string host, int port)
    : OpenAIServer(backend, [&] {
        OpenAIServerOptions o;
        o.host = std::move(host);
        o.port = port;
        return o;
      }()) {}

OpenAIServer::~OpenAIServer() {
  stop();
  impl_->backend.set_metrics(nullptr);
}

void OpenAIServer::start() {
  Impl& s = *impl_;
  if (s.http) fail("the server on ", s.options.host, ":", s.http->port(), " is already running");
  auto ms = [](double seconds) {
    return std::chrono::milliseconds(static_cast<int64_t>(std::llround(seconds * 1000)));
  };
  HttpServerOptions o;
  o.host = s.options.host;
  o.port = s.options.port;
  o.max_body_bytes = s.options.max_body_bytes;
  o.max_connections = s.options.max_connections;
  o.head_timeout = ms(s.options.head_timeout_seconds);
  o.body_timeout = ms(s.options.body_timeout_seconds);
  o.idle_timeout = ms(s.options.idle_timeout_seconds);
  auto http = std::make_unique<HttpServer>(
      o, [&s](const HttpRequest& req, HttpResponder& res) { s.route(req, res); },
      [](int status, const std::string& message) { return error_text(status, message); });
  http->set_request_log([&s](const HttpRequest& req, int status) {
    s.metrics.count_request(Impl::route_label(req.path), status);
    if (s.log) s.log(str(req.method, " ", req.path, " ", status));
  });
  http->start();
  s.http = std::move(http);
}

void OpenAIServer::stop() {
  if (impl_->http) impl_->http->stop();
}

void OpenAIServer::set_request_log(std::function<void(const std::string& line)> log) {
  if (impl_->http) fail("set_request_log must be called before start()");
  impl_->log = std::move(log);
}

void OpenAIServer::run() {
  install_interrupt_handlers();
  if (!impl_->http) start();
  while (!interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  impl_->backend.shutdown();  // answers what is in flight with an error, so stop() is prompt
  stop();
}

int OpenAIServer::port() const { return impl_->http ? impl_->http->port() : 0; }

const std::string& OpenAIServer::host() const { return impl_->options.host; }

ServeMetrics& OpenAIServer::metrics() { return impl_->metrics; }

}  // namespace expo
