#include "http/openai_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <random>
#include <set>
#include <system_error>
#include <thread>

#include "core/error.h"
#include "core/input_limits.h"
#include "core/interrupt.h"
#include "core/units.h"

namespace expo {

using nlohmann::json;

namespace {

// libcurl wants one curl_global_init before any thread uses it; a function-local static is
// initialised exactly once, thread-safely.
void init_curl_once() {
  static const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (code != CURLE_OK) fail("libcurl failed to initialise: ", curl_easy_strerror(code));
}

// "http://host:8000/v1/" -> "http://host:8000": routes are added to what remains.
std::string root_of(const std::string& base_url) {
  std::string root = base_url;
  while (!root.empty() && root.back() == '/') root.pop_back();
  if (root.size() >= 3 && root.compare(root.size() - 3, 3, "/v1") == 0)
    root.resize(root.size() - 3);
  while (!root.empty() && root.back() == '/') root.pop_back();
  return root;
}

// Loopback never goes through a proxy (an http_proxy in the environment would otherwise
// catch requests to a local server); the user's own no_proxy list is kept.
std::string no_proxy_list() {
  std::string list = "localhost,127.0.0.1,::1";
  for (const char* name : {"no_proxy", "NO_PROXY"}) {
    if (const char* value = std::getenv(name); value && *value) {
      list += ",";
      list += value;
      break;
    }
  }
  return list;
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;

struct Attempt {
  CURLcode code = CURLE_OK;
  std::string curl_error;
  long status = 0;
  std::string body;
  double retry_after_s = -1;  // from a Retry-After header in seconds; -1 when absent
  uint64_t max_body_bytes = 0;
  bool body_too_large = false;  // the transfer was cut at max_body_bytes
};

// Returning less than it was given makes curl abort the transfer with CURLE_WRITE_ERROR: a body
// over the cap is dropped as soon as it passes it, never held whole.
size_t append_body(char* data, size_t size, size_t count, void* out) {
  Attempt& a = *static_cast<Attempt*>(out);
  const size_t n = size * count;
  if (n > a.max_body_bytes - a.body.size()) {
    a.body_too_large = true;
    return 0;
  }
  a.body.append(data, n);
  return n;
}

size_t read_header(char* data, size_t size, size_t count, void* out) {
  const size_t n = size * count;
  std::string line(data, n);
  static const std::string kName = "retry-after:";
  if (line.size() > kName.size()) {
    std::string head = line.substr(0, kName.size());
    std::transform(head.begin(), head.end(), head.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (head == kName) {
      char* end = nullptr;
      const double seconds = std::strtod(line.c_str() + kName.size(), &end);
      if (end != line.c_str() + kName.size() && std::isfinite(seconds) && seconds >= 0)
        static_cast<Attempt*>(out)->retry_after_s = seconds;
    }
  }
  return n;
}

int abort_on_interrupt(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return interrupted() ? 1 : 0;
}

bool retryable(const Attempt& a) {
  switch (a.code) {
    case CURLE_OK:
      return a.status == 429 || a.status >= 500;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

std::string trimmed(std::string text, size_t max_chars = 300) {
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "... (truncated)";
  return text;
}

}  // namespace

struct OpenAIClient::Impl {
  std::vector<Endpoint> endpoints;
  std::vector<std::string> roots;
  ClientOptions options;
  std::string no_proxy = no_proxy_list();

  std::mutex mutex;  // guards everything below
  std::vector<size_t> in_flight;
  size_t cursor = 0;  // where the next tie-break starts
  std::mt19937_64 jitter;
  std::vector<CurlHandle> idle_handles;

  CurlHandle acquire_handle() {
    {
      std::lock_guard lock(mutex);
      if (!idle_handles.empty()) {
        CurlHandle handle = std::move(idle_handles.back());
        idle_handles.pop_back();
        return handle;
      }
    }
    CurlHandle handle(curl_easy_init());
    if (!handle) fail("libcurl could not create a handle (out of memory?)");
    return handle;
  }

  void release_handle(CurlHandle handle) {
    std::lock_guard lock(mutex);
    idle_handles.push_back(std::move(handle));
  }

  // The endpoint with the fewest requests in flight, ties broken in turn; `avoid` (the one
  // that just failed) only when it is the only endpoint.
  size_t pick_endpoint(long avoid) {
    std::lock_guard lock(mutex);
    const size_t n = endpoints.size();
    size_t best = n;
    for (size_t k = 0; k < n; ++k) {
      const size_t e = (cursor + k) % n;
      if (n > 1 && static_cast<long>(e) == avoid) continue;
      if (best == n || in_flight[e] < in_flight[best]) best = e;
    }
    cursor = (best + 1) % n;
    ++in_flight[best];
    return best;
  }

  void done_with_endpoint(size_t e) {
    std::lock_guard lock(mutex);
    --in_flight[e];
  }

  double backoff_s(int retry, double retry_after_s) {
    double base = options.initial_backoff_s * std::pow(2.0, retry);
    base = std::min(base, options.max_backoff_s);
    double u;
    {
      std::lock_guard lock(mutex);
      u = std::uniform_real_distribution<double>(0.0, 1.0)(jitter);
    }
    double wait = base * (0.5 + 0.5 * u);  // jitter keeps parallel workers from retrying in step
    if (retry_after_s >= 0) wait = std::max(wait, std::min(retry_after_s, options.max_backoff_s));
    // A server's hint never holds a request longer than the request timeout the user chose.
    return std::min(wait, options.timeout_s);
  }

  static void sleep_unless_interrupted(double seconds) {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                       std::chrono::duration<double>(seconds));
    while (!interrupted()) {
      const Clock::duration left = until - Clock::now();
      if (left <= Clock::duration::zero()) break;
      std::this_thread::sleep_for(std::min<Clock::duration>(left, std::chrono::milliseconds(50)));
    }
  }

  Attempt perform(CURL* curl, const std::string& url, const std::string* body,
                  const std::string& api_key, double timeout_s) {
    Attempt a;
    a.max_body_bytes = options.max_body_bytes;
    char error_buffer[CURL_ERROR_SIZE] = {0};
    curl_easy_reset(curl);  // options only: the connection cache is kept
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: threads are safe
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(std::ceil(timeout_s * 1000)));
    curl_easy_setopt(
        curl, CURLOPT_CONNECTTIMEOUT_MS,
        static_cast<long>(std::ceil(std::min(options.connect_timeout_s, timeout_s) * 1000)));
    curl_easy_setopt(curl, CURLOPT_NOPROXY, no_proxy.c_str());
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, abort_on_interrupt);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");  // whatever curl can decode
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
    std::string auth;
    if (!api_key.empty()) {
      auth = "Authorization: Bearer " + api_key;
      headers = curl_slist_append(headers, auth.c_str());
    }
    if (body) {
      headers = curl_slist_append(headers, "Content-Type: application/json");
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    } else {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    a.code = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
    a.curl_error = error_buffer[0] ? error_buffer : curl_easy_strerror(a.code);
    if (a.code == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a.status);
    return a;
  }

  std::string describe(const Attempt& a, double timeout_s) const {
    if (a.body_too_large)
      return str("the answer is larger than expo reads; the transfer was stopped ",
                 limit_hint(options.max_body_bytes, kHttpMaxBodyEnv));
    switch (a.code) {
      case CURLE_OK:
        return str("HTTP ", a.status, ": ", error_message_from_body(a.body));
      case CURLE_COULDNT_CONNECT:
        return str("could not connect (", a.curl_error, ")");
      case CURLE_OPERATION_TIMEDOUT:
        return str("no complete answer within ", timeout_s, " s (", a.curl_error, ")");
      default:
        return str(a.curl_error, " (curl error ", static_cast<int>(a.code), ")");
    }
  }

  static std::string hint(const Attempt& a, const std::string& path) {
    if (a.code == CURLE_COULDNT_CONNECT || a.code == CURLE_COULDNT_RESOLVE_HOST)
      return "; is the server running, and is the base URL right?";
    if (a.code == CURLE_OPERATION_TIMEDOUT)
      return "; the server may be overloaded, or raise the timeout for long generations";
    if (a.code != CURLE_OK) return "";
    if (a.status == 401 || a.status == 403)
      return "; check the API key (--api-key-env names the variable that holds it)";
    if (a.status == 404 && (path == "/pooling" || path == "/classify"))
      return "; does this server serve a reward model, and does it have this endpoint? (the "
             "other scoring API, /pooling or /classify, may work)";
    if (a.status == 404) return "; check the base URL and the model name (GET /v1/models)";
    return "";
  }

  struct Answer {
    std::string body;
    std::string url;
  };

  // One logical request with its retries. fixed_endpoint >= 0 pins it to that endpoint.
  Answer request(CURL* curl, const char* method, const std::string& path, const std::string* body,
                 const std::string& label, long fixed_endpoint = -1) {
    long last = -1;
    std::set<std::string> urls_tried;
    for (int attempt = 0;; ++attempt) {
      if (interrupted()) fail(label, ": interrupted by a signal before ", method, " ", path);
      size_t e;
      if (fixed_endpoint >= 0) {
        e = static_cast<size_t>(fixed_endpoint);
        std::lock_guard lock(mutex);
        ++in_flight[e];
      } else {
        e = pick_endpoint(last);
      }
      const std::string url = roots[e] + path;
      urls_tried.insert(url);
      Attempt a = perform(curl, url, body, endpoints[e].api_key, options.timeout_s);
      done_with_endpoint(e);
      if (a.code == CURLE_OK && a.status >= 200 && a.status < 300) return {std::move(a.body), url};
      if (a.code == CURLE_ABORTED_BY_CALLBACK && interrupted())
        fail(label, ": ", method, " ", url, ": interrupted by a signal");
      const std::string what = describe(a, options.timeout_s);
      if (!retryable(a)) fail(label, ": ", method, " ", url, ": ", what, hint(a, path));
      if (attempt >= options.max_retries) {
        std::string where;
        if (urls_tried.size() > 1) {
          where = " (tried";
          for (const auto& u : urls_tried) where += " " + u;
          where += ")";
        }
        fail(label, ": ", method, " ", url, ": ", what, "; gave up after ", attempt + 1,
             attempt == 0 ? " attempt" : " attempts", where, hint(a, path));
      }
      const double wait = backoff_s(attempt, a.retry_after_s);
      if (a.retry_after_s >= 0)
        std::fprintf(stderr,
                     "expo: %s: %s answered %ld with Retry-After: %s s; waiting %s s before retry "
                     "%d of %d (capped by --request-timeout %s s and the longest backoff, %s s)\n",
                     label.c_str(), url.c_str(), a.status,
                     format_printf("%.10g", a.retry_after_s).c_str(),
                     format_printf("%.1f", wait).c_str(), attempt + 1, options.max_retries,
                     format_printf("%.10g", options.timeout_s).c_str(),
                     format_printf("%.10g", options.max_backoff_s).c_str());
      sleep_unless_interrupted(wait);
      last = static_cast<long>(e);
    }
  }

  // A request body as text; invalid UTF-8 in a message is an error, not silently replaced.
  static std::string dump(const json& body, const std::string& label) {
    try {
      return body.dump();
    } catch (const json::exception& e) {
      fail(label, ": the request cannot be sent as JSON (", e.what(),
           "); is a message's text valid UTF-8?");
    }
  }

  static json parse(const Answer& answer, const std::string& label, const char* method) {
    json parsed = json::parse(answer.body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded())
      fail(label, ": ", method, " ", answer.url,
           ": the answer is not JSON: ", trimmed(answer.body));
    return parsed;
  }

  struct Job {
    std::string path;
    std::string body;
    std::string label;
  };

  // Runs count jobs on up to options.parallel workers. finish(i, answer, label) parses the
  // answer and reports it; it is called outside any lock (the callers serialise their own
  // callbacks).
  void run_batch(size_t count, const std::function<Job(size_t)>& make_job,
                 const std::function<void(size_t, const Answer&, const std::string&)>& finish) {
    if (count == 0) return;
    std::atomic<size_t> next{0};
    std::atomic<size_t> finished{0};
    std::atomic<bool> stop{false};
    std::mutex error_mutex;
    std::exception_ptr first_error;

    auto worker = [&] {
      CurlHandle handle;
      try {
        handle = acquire_handle();
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        stop = true;
        return;
      }
      while (!stop) {
        const size_t i = next++;
        if (i >= count) break;
        try {
          Job job = make_job(i);
          Answer answer = request(handle.get(), "POST", job.path, &job.body, job.label);
          finish(i, answer, job.label);
          ++finished;
        } catch (...) {
          std::lock_guard lock(error_mutex);
          if (!first_error) first_error = std::current_exception();
          stop = true;
        }
      }
      release_handle(std::move(handle));
    };

    const size_t workers = std::min(std::max<size_t>(options.parallel, 1), count);
    std::vector<std::thread> threads;
    threads.reserve(workers - 1);
    try {
      for (size_t w = 1; w < workers; ++w) threads.emplace_back(worker);
    } catch (const std::system_error&) {
      // The system refused a thread: the requests are shared out, so fewer workers still finish
      // them all, only with less in flight.
    }
    worker();
    for (auto& t : threads) t.join();

    if (!first_error) return;
    if (count == 1) std::rethrow_exception(first_error);
    try {
      std::rethrow_exception(first_error);
    } catch (const Error& e) {
      fail(e.what(), " [", finished.load(), " of ", count,
           " requests had finished and were reported before the batch stopped]");
    }
  }
};

ClientOptions ClientOptions::from_environment() {
  ClientOptions options;
  options.max_body_bytes = size_from_environment(kHttpMaxBodyEnv, options.max_body_bytes);
  return options;
}

OpenAIClient::OpenAIClient(std::vector<Endpoint> endpoints, ClientOptions options)
    : impl_(std::make_unique<Impl>()) {
  init_curl_once();
  if (endpoints.empty()) fail("no endpoint given; pass at least one base URL (--endpoint)");
  for (const auto& endpoint : endpoints) {
    const std::string& url = endpoint.base_url;
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
      fail("endpoint '", url, "' is not an http:// or https:// URL (e.g. http://127.0.0.1:8000)");
    impl_->roots.push_back(root_of(url));
  }
  if (!(options.timeout_s > 0)) fail("the timeout must be > 0 seconds, not ", options.timeout_s);
  if (!(options.connect_timeout_s > 0))
    fail("the connect timeout must be > 0 seconds, not ", options.connect_timeout_s);
  if (options.max_retries < 0) fail("max_retries must be >= 0, not ", options.max_retries);
  if (!(options.initial_backoff_s >= 0) || !(options.max_backoff_s >= 0))
    fail("backoff times must be >= 0 seconds");
  if (options.parallel == 0) fail("parallel must be >= 1 (requests in flight at once)");
  if (options.max_body_bytes == 0) fail("max_body_bytes must be >= 1");
  impl_->endpoints = std::move(endpoints);
  impl_->in_flight.assign(impl_->endpoints.size(), 0);
  impl_->jitter.seed(options.seed);
  impl_->options = options;
}

OpenAIClient::~OpenAIClient() = default;

const std::vector<Endpoint>& OpenAIClient::endpoints() const { return impl_->endpoints; }

std::vector<ChatResponse> OpenAIClient::chat_all(const std::vector<ChatRequest>& requests,
                                                 const ChatCallback& on_done) {
  std::vector<ChatResponse> results(requests.size());
  std::mutex callback_mutex;
  impl_->run_batch(
      requests.size(),
      [&](size_t i) {
        const ChatRequest& r = requests[i];
        const std::string label = r.label.empty() ? str("request ", i) : r.label;
        return Impl::Job{"/v1/chat/completions", Impl::dump(chat_request_to_json(r), label), label};
      },
      [&](size_t i, const Impl::Answer& answer, const std::string& label) {
        const json body = Impl::parse(answer, label, "POST");
        ChatResponse response;
        try {
          response = chat_response_from_json(body);
        } catch (const Error& e) {
          fail(label, ": POST ", answer.url, ": unexpected answer: ", e.what());
        }
        std::lock_guard lock(callback_mutex);
        results[i] = std::move(response);
        if (on_done) on_done(i, results[i]);
      });
  return results;
}

ChatResponse OpenAIClient::chat(const ChatRequest& request) {
  ChatRequest labelled = request;
  if (labelled.label.empty()) labelled.label = "request";
  return chat_all({labelled}).front();
}

std::vector<double> OpenAIClient::score_all(const std::string& model,
                                            const std::vector<ScoreInput>& inputs,
                                            const ScoreCallback& on_done) {
  const ScoreApi api = impl_->options.score_api;
  std::vector<double> results(inputs.size());
  std::mutex callback_mutex;
  impl_->run_batch(
      inputs.size(),
      [&](size_t i) {
        const std::string label =
            inputs[i].label.empty() ? str("score input ", i) : inputs[i].label;
        return Impl::Job{
            score_api_path(api),
            Impl::dump(score_request_to_json(api, model, inputs[i], impl_->options.raw_scores),
                       label),
            label};
      },
      [&](size_t i, const Impl::Answer& answer, const std::string& label) {
        const json body = Impl::parse(answer, label, "POST");
        std::vector<double> scores;
        try {
          scores = score_response_from_json(api, body);
        } catch (const Error& e) {
          fail(label, ": POST ", answer.url, ": unexpected answer: ", e.what());
        }
        if (scores.size() != 1)
          fail(label, ": POST ", answer.url, ": the answer holds ", scores.size(),
               " scores for one input");
        std::lock_guard lock(callback_mutex);
        results[i] = scores[0];
        if (on_done) on_done(i, results[i]);
      });
  return results;
}

double OpenAIClient::score(const std::string& model, const ScoreInput& input) {
  return score_all(model, {input}).front();
}

std::vector<std::string> OpenAIClient::models() {
  CurlHandle handle = impl_->acquire_handle();
  const std::string label = "listing models";
  Impl::Answer answer;
  try {
    answer = impl_->request(handle.get(), "GET", "/v1/models", nullptr, label, 0);
  } catch (...) {
    impl_->release_handle(std::move(handle));
    throw;
  }
  impl_->release_handle(std::move(handle));
  const json body = Impl::parse(answer, label, "GET");
  auto data = body.is_object() ? body.find("data") : body.end();
  if (!body.is_object() || data == body.end() || !data->is_array())
    fail(label, ": GET ", answer.url, ": the answer has no `data` array: ", trimmed(answer.body));
  std::vector<std::string> ids;
  for (const json& model : *data) {
    if (!model.is_object() || !model.contains("id") || !model["id"].is_string())
      fail(label, ": GET ", answer.url, ": a model without a string `id`: ", trimmed(model.dump()));
    ids.push_back(model["id"].get<std::string>());
  }
  return ids;
}

bool OpenAIClient::healthy() {
  CurlHandle handle = impl_->acquire_handle();
  bool all = true;
  for (size_t e = 0; e < impl_->endpoints.size() && all; ++e) {
    Attempt a =
        impl_->perform(handle.get(), impl_->roots[e] + "/health", nullptr,
                       impl_->endpoints[e].api_key, std::min(impl_->options.timeout_s, 10.0));
    all = a.code == CURLE_OK && a.status == 200;
  }
  impl_->release_handle(std::move(handle));
  return all;
}

}  // namespace expo
