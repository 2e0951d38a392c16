// The HTTP/1.1 transport under `expo serve` (src/http/http_server, http_request_head,
// http_chunked_decoder): the head parser and the chunked decoder on good and bad input, and
// the server over loopback, driven by raw-socket clients so that every byte on the wire is the
// test's choice (pipelining, trickling, half-sent bodies, clients that vanish). Timeouts are
// short so that the suite stays fast; nothing asserts on wall time: what a test checks is the
// order of events (the other client was answered while the slow one was still sending).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "http/http_chunked_decoder.h"
#include "http/http_request_head.h"
#include "http/http_server.h"
#include "test_util.h"

namespace expo {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// ---------------------------------------------------------------- the head parser

HttpRequestHead parse(std::string_view head, HttpHeadLimits limits = {}) {
  return parse_http_request_head(head, limits);
}

TEST(HttpTransport, HeadParsesRequestLineAndHeaders) {
  const HttpRequestHead h = parse(
      "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: localhost:8000\r\n"
      "Content-Type:  application/json \t\r\nContent-Length: 12\r\nX-Empty:\r\n\r\n");
  ASSERT_EQ(h.status, 0) << h.message;
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.target, "/v1/chat/completions?x=1");
  EXPECT_EQ(h.path, "/v1/chat/completions");
  EXPECT_EQ(h.version_minor, 1);
  ASSERT_EQ(h.headers.size(), 4u);
  EXPECT_EQ(h.headers[0].name, "host");
  EXPECT_EQ(h.headers[1].name, "content-type");
  EXPECT_EQ(h.headers[1].value, "application/json");  // trimmed of spaces and tabs
  EXPECT_EQ(h.headers[3].value, "");
  EXPECT_EQ(h.content_length, 12u);
  EXPECT_FALSE(h.chunked);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.expect_continue);
}

TEST(HttpTransport, HeadAcceptsBareLfAndOptionsStar) {
  const HttpRequestHead h = parse("OPTIONS * HTTP/1.0\nConnection: Keep-Alive\n\n");
  ASSERT_EQ(h.status, 0) << h.message;
  EXPECT_EQ(h.target, "*");
  EXPECT_EQ(h.version_minor, 0);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n").keep_alive);  // 1.0: off by default
  EXPECT_FALSE(parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n").keep_alive);
  EXPECT_TRUE(parse("GET / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n").expect_continue);
  EXPECT_FALSE(parse("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
}

TEST(HttpTransport, HeadChunkedAndContentLengthRules) {
  const HttpRequestHead chunked = parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n");
  ASSERT_EQ(chunked.status, 0) << chunked.message;
  EXPECT_TRUE(chunked.chunked);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").status, 0);

  struct Case {
    const char* head;
    int status;
    const char* message_part;
  };
  const Case cases[] = {
      {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, "twice"},
      {"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400, "not a number"},
      {"POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", 400, "not a number"},
      {"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", 400, "not a number"},
      {"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", 400, "not a number"},
      {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413, "over"},
      {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
       "both Content-Length and Transfer-Encoding"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "gzip"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501,
       "not supported"},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"},
  };
  for (const Case& c : cases) {
    const HttpRequestHead h = parse(c.head);
    EXPECT_EQ(h.status, c.status) << c.head;
    EXPECT_CONTAINS(h.message, c.message_part);
  }
  HttpHeadLimits limits;
  limits.max_body_bytes = 100;
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n", limits).status, 0);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", limits).status, 413);
}

TEST(HttpTransport, HeadRefusesMalformedInput) {
  struct Case {
    std::string head;
    int status;
    const char* message_part;
  };
  const Case cases[] = {
      {"GET /\r\n\r\n", 400, "METHOD TARGET HTTP/1.1"},
      {"GET  / HTTP/1.1\r\n\r\n", 400, "single spaces"},
      {"GET / HTTP/1.1 \r\n\r\n", 400, "single spaces"},
      {"G(T / HTTP/1.1\r\n\r\n", 400, "not a token"},
      {"GET x HTTP/1.1\r\n\r\n", 400, "must start with `/`"},
      {"GET http://a/ HTTP/1.1\r\n\r\n", 400, "must start with `/`"},
      {std::string("GET /a\x01 HTTP/1.1\r\n\r\n"), 400, "control character at byte 3"},
      {"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2.0"},
      {"GET / HTTP/1.2\r\n\r\n", 505, "not supported"},
      {"GET / HTTP/1.10\r\n\r\n", 400, "not HTTP/1.1"},
      {"GET / http/1.1\r\n\r\n", 400, "not HTTP/1.1"},
      {"GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n", 400, "header line 2 has no ':'"},
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "not a token"},
      {"GET / HTTP/1.1\r\n: a\r\n\r\n", 400, "not a token"},
      {"GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", 400, "folding"},
      {std::string("GET / HTTP/1.1\r\nX-A: a\x7f\r\n\r\n"), 400, "control character"},
      {std::string("GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 28), 400, "control character"},
      {"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400, "CR without LF"},
      {"GET / HTTP/1.1\rX-A: a\r\n\r\n", 400, "CR without LF"},
      {"GET / HTTP/1.1\r\nX-A: a\r\n", 400, "does not end with an empty line"},
      {"GET / HTTP/1.1\r\n\r\nGET", 400, "bytes follow"},
      {"\r\n", 400, "starts with an empty line"},
      {"", 400, "does not end"},
  };
  for (const Case& c : cases) {
    const HttpRequestHead h = parse(c.head);
    EXPECT_EQ(h.status, c.status) << printable_excerpt(c.head);
    EXPECT_CONTAINS(h.message, c.message_part);
  }
  // Tabs are allowed in values; bytes over 0x7f too (obs-text).
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nX-A: a\tb \xc3\xa9\r\n\r\n").status, 0);
  // Messages quote client bytes only as printable ASCII.
  const HttpRequestHead binary = parse(std::string("GET\xff / HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(binary.status, 400);
  EXPECT_CONTAINS(binary.message, "GET\\xff");
}

TEST(HttpTransport, HeadHeaderCountLimitIs431) {
  std::string head = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 100; ++i) head += "X-H" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(parse(head + "\r\n").status, 0);
  const HttpRequestHead h = parse(head + "X-One-Too-Many: v\r\n\r\n");
  EXPECT_EQ(h.status, 431);
  EXPECT_CONTAINS(h.message, "101 header fields");
}

TEST(HttpTransport, HeadEndIsFoundAcrossReads) {
  EXPECT_EQ(find_http_head_end("GET / HTTP/1.1\r\n\r\nrest"), 18u);
  EXPECT_EQ(find_http_head_end("GET / HTTP/1.1\n\nrest"), 16u);
  EXPECT_EQ(find_http_head_end("GET / HTTP/1.1\r\nA: b\n\r\n"), 23u);
  EXPECT_EQ(find_http_head_end("GET / HTTP/1.1\r\nA: b\r\n"), std::string::npos);
  // Resuming where the previous search stopped finds an end split across two reads.
  const std::string buffer = "GET / HTTP/1.1\r\nA: b\r\n\r\n";
  for (size_t split = 0; split < buffer.size(); ++split)
    EXPECT_EQ(find_http_head_end(buffer, split), buffer.size()) << split;
}

// ---------------------------------------------------------------- the chunked decoder

// Feeds `input` in pieces of `step` bytes, keeping what the decoder did not consume.
HttpChunkedDecoder decode(const std::string& input, size_t step, std::string& body,
                          HttpChunkedLimits limits = {}) {
  HttpChunkedDecoder decoder(limits);
  std::string pending;
  for (size_t pos = 0; pos < input.size() && !decoder.done() && !decoder.failed(); pos += step) {
    pending += input.substr(pos, step);
    pending.erase(0, decoder.feed(pending, body));
  }
  return decoder;
}

TEST(HttpTransport, ChunkedDecoderDecodesInAnyPieces) {
  const std::string input =
      "5;name=value\r\nhello\r\n1A \r\nabcdefghijklmnopqrstuvwxyz\r\n"
      "0\r\nTrailer: x\r\n\r\n";
  for (size_t step : {1, 2, 3, 7, 100}) {
    std::string body;
    const HttpChunkedDecoder d = decode(input, step, body);
    EXPECT_TRUE(d.done()) << step << ": " << d.message();
    EXPECT_EQ(body, "helloabcdefghijklmnopqrstuvwxyz") << step;
  }
  std::string body;
  EXPECT_TRUE(decode("3\nabc\n0\n\n", 1, body).done());  // bare LF
  EXPECT_EQ(body, "abc");
}

TEST(HttpTransport, ChunkedDecoderRefusesBadBodies) {
  struct Case {
    std::string input;
    int status;
    const char* part;
  };
  const Case cases[] = {
      {"x\r\n", 400, "bad size line"},
      {"\r\n", 400, "bad size line"},
      {"5 x\r\nhello\r\n", 400, "bad size line"},
      {"3\r\nhello\r\n", 400, "longer than its size line"},
      {"3\r\nabcX\r\n", 400, "longer than its size line"},
      {"3\r\nabc\rX", 400, "not followed by CRLF"},
      {"fffffffffffffffff\r\n", 413, "2^64"},
      {"ffffffff\r\n", 413, "over the limit"},
      {"3\r\nabc\r\n" + std::string(5000, 'a'), 400, "longer than"},
      {"3\r\nabc\r\n0\r\n" + std::string(5000, 'a'), 400, "trailer field"},
  };
  for (const Case& c : cases) {
    std::string body;
    const HttpChunkedDecoder d = decode(c.input, 1000, body);
    EXPECT_EQ(d.status(), c.status) << printable_excerpt(c.input);
    EXPECT_CONTAINS(d.message(), c.part);
  }
  HttpChunkedLimits limits;
  limits.max_body_bytes = 10;
  std::string body;
  EXPECT_EQ(decode("6\r\nabcdef\r\n5\r\nabcde\r\n0\r\n\r\n", 3, body, limits).status(), 413);
}

// ---------------------------------------------------------------- a raw-socket client

struct Response {
  int status = 0;  // 0: no (complete) response came
  std::string head;
  std::string body;
  std::string header(const std::string& name) const {
    const std::string lower_head = ascii_lower(head);
    const size_t at = lower_head.find("\r\n" + ascii_lower(name) + ":");
    if (at == std::string::npos) return "";
    const size_t start = head.find_first_not_of(' ', at + name.size() + 3);
    return head.substr(start, head.find("\r\n", start) - start);
  }
  json error() const { return json::parse(body, nullptr, false); }
};

class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    timeval timeout{10, 0};  // a test that fails must not hang
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      throw std::runtime_error(std::string("connect failed: ") + std::strerror(errno));
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One response: the head, then the body by Content-Length, by chunks, or up to EOF.
  Response read_response() {
    Response r;
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return r;
    r.head = buffer_.substr(0, end + 2);
    buffer_.erase(0, end + 4);
    const std::string length = r.header("Content-Length");
    if (!length.empty()) {
      if (!read_exact(std::stoul(length), r.body)) return r;
    } else if (ascii_iequals(r.header("Transfer-Encoding"), "chunked")) {
      std::string chunk;
      while (true) {
        if (!read_chunk(chunk)) return r;
        if (chunk.empty()) break;
        r.body += chunk;
      }
    } else if (r.head.find(" 100 Continue") == std::string::npos) {
      while (fill()) {
      }
      r.body = std::move(buffer_);
      buffer_.clear();
    }
    r.status = std::stoi(r.head.substr(9, 3));
    return r;
  }

  // The head of a streamed response, leaving its chunks unread.
  Response read_head() {
    Response r;
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return r;
    r.head = buffer_.substr(0, end + 2);
    buffer_.erase(0, end + 4);
    r.status = std::stoi(r.head.substr(9, 3));
    return r;
  }

  // One chunk's data (empty for the last chunk, whose trailer is consumed too).
  bool read_chunk(std::string& data) {
    size_t eol;
    while ((eol = buffer_.find("\r\n")) == std::string::npos)
      if (!fill()) return false;
    const size_t size = std::stoul(buffer_.substr(0, eol), nullptr, 16);
    buffer_.erase(0, eol + 2);
    data.clear();
    if (!read_exact(size, data)) return false;
    std::string crlf;
    return read_exact(2, crlf) && crlf == "\r\n";
  }

  // True when the server closes the connection (EOF or reset) before sending anything more.
  bool closed_by_server() {
    if (!buffer_.empty()) return false;
    char byte;
    const ssize_t n = ::recv(fd_, &byte, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  // Whatever the server has sent by now, without waiting.
  std::string available() {
    char data[4096];
    ssize_t n;
    while ((n = ::recv(fd_, data, sizeof data, MSG_DONTWAIT)) > 0)
      buffer_.append(data, static_cast<size_t>(n));
    return buffer_;
  }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  bool fill() {
    char data[65536];
    const ssize_t n = ::recv(fd_, data, sizeof data, 0);
    if (n <= 0) return false;
    buffer_.append(data, static_cast<size_t>(n));
    return true;
  }
  bool read_exact(size_t n, std::string& out) {
    while (buffer_.size() < n)
      if (!fill()) return false;
    out.append(buffer_, 0, n);
    buffer_.erase(0, n);
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
};

// ---------------------------------------------------------------- a server to talk to

std::string error_json(int status, const std::string& message) {
  return json{{"error", {{"message", message}, {"code", status}}}}.dump();
}

HttpServerOptions fast_options() {
  HttpServerOptions o;
  o.head_timeout = 2s;
  o.idle_timeout = 2s;
  o.body_timeout = 2s;
  o.write_timeout = 2s;
  return o;
}

// /hello: "hello"; /echo: the body back, with the method and target in headers; /throw: an
// exception; /silent: returns without answering; anything else: 404.
void routes(const HttpRequest& request, HttpResponder& responder) {
  if (request.path == "/hello") {
    responder.send(200, "text/plain", "hello");
  } else if (request.path == "/echo") {
    const std::string* type = request.header("CONTENT-TYPE");
    responder.send(200, type ? *type : "application/octet-stream", request.body,
                   {{"X-Method", request.method}, {"X-Target", request.target}});
  } else if (request.path == "/throw") {
    throw std::runtime_error("boom");
  } else if (request.path == "/silent") {
    return;
  } else {
    responder.send(404, "application/json", error_json(404, "no route " + request.path));
  }
}

struct Served {
  explicit Served(HttpServerOptions options = fast_options(), HttpHandler handler = routes)
      : server(std::move(options), std::move(handler), error_json) {
    server.set_request_log([this](const HttpRequest& request, int status) {
      std::lock_guard lock(log_mutex);
      log.push_back(request.method + " " + request.path + " " + std::to_string(status));
    });
    server.start();
  }
  std::unique_ptr<RawClient> connect() { return std::make_unique<RawClient>(server.port()); }
  Response request(const std::string& bytes) {
    RawClient client(server.port());
    client.send(bytes);
    return client.read_response();
  }
  std::vector<std::string> log_lines() {
    std::lock_guard lock(log_mutex);
    return log;
  }

  std::mutex log_mutex;
  std::vector<std::string> log;
  HttpServer server;
};

// Waits (briefly) until `condition` holds: for server-side state the test cannot observe on
// the wire, such as the count of accepted connections.
template <typename F>
bool eventually(F&& condition) {
  for (int i = 0; i < 1000; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

void expect_json_error(const Response& r, int status, const std::string& part) {
  EXPECT_EQ(r.status, status) << r.head << r.body;
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  const json body = r.error();
  ASSERT_TRUE(body.is_object()) << r.body;
  EXPECT_EQ(body["error"]["code"], status);
  EXPECT_CONTAINS(body["error"]["message"].get<std::string>(), part);
}

// ---------------------------------------------------------------- the server

TEST(HttpTransport, GetAndPost) {
  Served s;
  const Response get = s.request("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.head.substr(0, 17), "HTTP/1.1 200 OK\r\n");
  EXPECT_EQ(get.header("Content-Type"), "text/plain");
  EXPECT_EQ(get.header("Content-Length"), "5");
  EXPECT_FALSE(get.header("Date").empty());
  EXPECT_EQ(get.body, "hello");

  const Response post = s.request(
      "POST /echo?a=b HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 13\r\n\r\n{\"x\": [1, 2]}");
  EXPECT_EQ(post.status, 200);
  EXPECT_EQ(post.body, "{\"x\": [1, 2]}");
  EXPECT_EQ(post.header("Content-Type"), "application/json");
  EXPECT_EQ(post.header("X-Method"), "POST");
  EXPECT_EQ(post.header("X-Target"), "/echo?a=b");

  const Response missing = s.request("GET /nope HTTP/1.1\r\n\r\n");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.head.substr(0, 24), "HTTP/1.1 404 Not Found\r\n");
  s.server.stop();
  EXPECT_EQ(s.log_lines(),
            (std::vector<std::string>{"GET /hello 200", "POST /echo 200", "GET /nope 404"}));
}

TEST(HttpTransport, KeepAliveServesTwoRequestsOnOneConnection) {
  Served s;
  auto client = s.connect();
  client->send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  const Response first = client->read_response();
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.header("Connection"), "");
  client->send("POST /echo HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
  const Response second = client->read_response();
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, "abc");
  EXPECT_EQ(second.header("Connection"), "close");
  EXPECT_TRUE(client->closed_by_server());

  // HTTP/1.0: closed after the response unless it asks for keep-alive.
  auto old = s.connect();
  old->send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  const Response kept = old->read_response();
  EXPECT_EQ(kept.header("Connection"), "keep-alive");
  old->send("GET /hello HTTP/1.0\r\n\r\n");
  EXPECT_EQ(old->read_response().header("Connection"), "close");
  EXPECT_TRUE(old->closed_by_server());
}

TEST(HttpTransport, PipelinedRequestsAreAnsweredInOrder) {
  Served s;
  auto client = s.connect();
  client->send(
      "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\none"
      "GET /hello HTTP/1.1\r\n\r\n"
      "\r\n"  // an empty line between requests is ignored (RFC 9112 2.2)
      "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nthree\r\n0\r\n\r\n"
      "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(client->read_response().body, "one");
  EXPECT_EQ(client->read_response().body, "hello");
  EXPECT_EQ(client->read_response().body, "three");
  EXPECT_EQ(client->read_response().body, "hello");
  EXPECT_TRUE(client->closed_by_server());
}

TEST(HttpTransport, ChunkedRequestBodyIsDecoded) {
  Served s;
  auto client = s.connect();
  client->send("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n");
  std::this_thread::sleep_for(20ms);  // the rest in another segment
  client->send("7\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n");
  const Response r = client->read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Wikipedia in \r\nchunks.");
}

TEST(HttpTransport, ExpectContinueGetsContinueBeforeTheBody) {
  Served s;
  auto client = s.connect();
  client->send("POST /echo HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  const Response interim = client->read_head();
  EXPECT_EQ(interim.head, "HTTP/1.1 100 Continue\r\n");
  client->send("hello");
  const Response r = client->read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
}

TEST(HttpTransport, LargeFormUrlencodedBodyArrivesIntact) {
  // httplib 0.11 answered 413 to any form body over 8 KB (what `curl -d` sends).
  Served s;
  std::string body;
  for (int i = 0; body.size() < 100000; ++i) {
    body += 'k';
    body += std::to_string(i);
    body += "=v%20&";
  }
  const Response r = s.request(
      "POST /echo HTTP/1.1\r\nContent-Type: "
      "application/x-www-form-urlencoded\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(r.body.size(), body.size());
  EXPECT_TRUE(r.body == body);
}

TEST(HttpTransport, BodiesOverOneMiBArriveIntact) {
  // Past the first MiB the body is reserved as it arrives, and freed after the request.
  Served s;
  std::string body(3 * (1 << 20) + 7, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7919 % 251);
  auto client = s.connect();
  client->send("POST /echo HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n\r\n");
  client->send(body);
  const Response r = client->read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == body);
  // The same bytes chunked, in uneven chunks, on the same connection.
  std::string chunked;
  for (size_t pos = 0, n = 1; pos < body.size(); pos += n, n = n * 3 + 1) {
    const std::string piece = body.substr(pos, n);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    chunked += size + piece + "\r\n";
  }
  client->send("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + "0\r\n\r\n");
  const Response again = client->read_response();
  EXPECT_EQ(again.status, 200);
  EXPECT_TRUE(again.body == body);
}

TEST(HttpTransport, BodyOverTheLimitIs413BeforeItIsRead) {
  HttpServerOptions o = fast_options();
  o.max_body_bytes = 1000;
  o.body_timeout = 60s;  // were the body awaited, the answer would not come before the timeout
  std::atomic<int> handled{0};
  Served s(o, [&](const HttpRequest& request, HttpResponder& responder) {
    ++handled;
    routes(request, responder);
  });
  // A gigabyte announced, nothing sent: answered at once, without a 100 Continue.
  auto client = s.connect();
  client->send("POST /echo HTTP/1.1\r\nContent-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n");
  const Response r = client->read_response();
  expect_json_error(r, 413, "1000000000 bytes (Content-Length) is over the limit of 1000");
  EXPECT_EQ(r.header("Connection"), "close");
  EXPECT_TRUE(client->closed_by_server());

  // The limit itself is accepted.
  EXPECT_EQ(
      s.request("POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'a'))
          .body.size(),
      1000u);

  // A chunked body is counted as its chunks announce themselves.
  auto chunked = s.connect();
  chunked->send("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n" +
                std::string(0x200, 'a') + "\r\n");
  chunked->send("200\r\n");  // 1024 bytes announced, over 1000: refused before its data
  expect_json_error(chunked->read_response(), 413, "over the limit of 1000 bytes");
  EXPECT_EQ(handled.load(), 1);
}

TEST(HttpTransport, MalformedHeadsAre400WithTheProblemNamed) {
  Served s;
  // A connection's thread logs its request after the response is sent, so the next request's
  // line could come first: wait for each line before sending the next request.
  size_t logged = 0;
  auto settle = [&] {
    ++logged;
    for (int i = 0; i < 200 && s.log_lines().size() < logged; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  expect_json_error(s.request("GET /hello HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n"), 400,
                    "header line 2 has no ':'");
  settle();
  expect_json_error(s.request("GET hello HTTP/1.1\r\n\r\n"), 400, "must start with `/`");
  settle();
  expect_json_error(s.request("GET /hello HTTP/1.1 extra\r\n\r\n"), 400, "single spaces");
  settle();
  expect_json_error(s.request("GET /hello HTTP/1.1\r\nX: a\r\n folded\r\n\r\n"), 400, "folding");
  settle();
  expect_json_error(s.request("GET /hello HTTP/3.0\r\n\r\n"), 505, "HTTP/3.0");
  settle();
  expect_json_error(s.request("POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 501,
                    "gzip");
  settle();
  expect_json_error(s.request("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
                    400, "bad size line");
  settle();
  expect_json_error(
      s.request(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15)), 400,
      "\\x16");     // a TLS hello, quoted as printable ASCII
  s.server.stop();  // joins the connections: the last line is logged
  const std::vector<std::string> log = s.log_lines();
  ASSERT_EQ(log.size(), 8u);
  EXPECT_EQ(log[0], "GET /hello 400");  // the head was read far enough to name the request
  EXPECT_EQ(log[7], "  400");
}

TEST(HttpTransport, TooManyOrTooLargeHeadersAre431) {
  HttpServerOptions o = fast_options();
  o.max_head_bytes = 4096;
  Served s(o);
  std::string many = "GET /hello HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  expect_json_error(s.request(many + "\r\n"), 431, "101 header fields");
  expect_json_error(
      s.request("GET /hello HTTP/1.1\r\nX-Big: " + std::string(5000, 'a') + "\r\n\r\n"), 431,
      "over the limit of 4096 bytes");
  // A head that never ends is cut at the limit, not buffered.
  auto endless = s.connect();
  endless->send("GET /hello HTTP/1.1\r\nX-Big: " + std::string(8000, 'a'));
  expect_json_error(endless->read_response(), 431, "4096");
}

TEST(HttpTransport, TricklingClientIsCutWhileOthersAreServed) {
  HttpServerOptions o = fast_options();
  o.head_timeout = 500ms;
  Served s(o);
  const std::string head = "GET /hello HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow\r\n\r\n";
  std::atomic<bool> trickler_cut{false};
  std::promise<void> first_bytes_sent;
  std::string trickler_got;
  size_t bytes_sent = 0;
  std::thread trickler([&] {
    RawClient client(s.server.port());
    for (; bytes_sent < head.size(); ++bytes_sent) {
      if (!client.send(head.substr(bytes_sent, 1))) break;  // one byte every 100 ms
      if (bytes_sent == 1) first_bytes_sent.set_value();
      std::this_thread::sleep_for(100ms);
      trickler_got = client.available();
      if (!trickler_got.empty()) break;
    }
    trickler_cut = true;
    if (trickler_got.empty()) trickler_got = client.read_response().head;
  });
  first_bytes_sent.get_future().wait();
  const Response other = s.request("GET /hello HTTP/1.1\r\n\r\n");
  const bool trickler_cut_before_other_answered = trickler_cut.load();
  trickler.join();
  EXPECT_EQ(other.status, 200);
  EXPECT_FALSE(trickler_cut_before_other_answered);
  EXPECT_EQ(trickler_got.substr(0, 12), "HTTP/1.1 408");
  EXPECT_CONTAINS(trickler_got, "did not arrive within 500 ms");
  EXPECT_LT(bytes_sent, head.size());  // cut before its head was complete: a total deadline
}

TEST(HttpTransport, IdleConnectionsDoNotDelayARequest) {
  HttpServerOptions o = fast_options();
  o.idle_timeout = 30s;
  Served s(o);
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 50; ++i) idle.push_back(s.connect());
  ASSERT_TRUE(eventually([&] { return s.server.open_connections() == 50; }));
  const Response r = s.request("GET /hello HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
  s.server.stop();  // with 50 idle connections open
  EXPECT_EQ(s.server.open_connections(), 0u);
  for (auto& client : idle) EXPECT_TRUE(client->closed_by_server());
}

TEST(HttpTransport, ConnectionsBeyondTheLimitGet503) {
  HttpServerOptions o = fast_options();
  o.max_connections = 2;
  o.idle_timeout = 30s;
  Served s(o);
  auto a = s.connect();
  auto b = s.connect();
  ASSERT_TRUE(eventually([&] { return s.server.open_connections() == 2; }));
  auto c = s.connect();
  c->send("GET /hello HTTP/1.1\r\n\r\n");
  const Response refused = c->read_response();
  expect_json_error(refused, 503, "2 connections open");
  EXPECT_EQ(refused.header("Retry-After"), "1");
  EXPECT_TRUE(c->closed_by_server());
  // The connections inside the limit are served.
  a->send("GET /hello HTTP/1.1\r\n\r\n");
  EXPECT_EQ(a->read_response().status, 200);
  // Once one closes, a new connection is accepted again.
  b.reset();
  ASSERT_TRUE(eventually([&] { return s.server.open_connections() == 1; }));
  EXPECT_EQ(s.request("GET /hello HTTP/1.1\r\n\r\n").status, 200);
}

TEST(HttpTransport, HandlerSeesItsClientGo) {
  std::promise<bool> gone_at_start, waited, gone_after;
  std::promise<void> handler_running;
  Served s(fast_options(), [&](const HttpRequest&, HttpResponder& responder) {
    gone_at_start.set_value(responder.client_gone());
    handler_running.set_value();
    waited.set_value(responder.wait_client_gone(10s));
    gone_after.set_value(responder.client_gone());
    responder.send(200, "text/plain", "too late");
  });
  auto client = s.connect();
  client->send("POST /work HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
  handler_running.get_future().wait();
  client->close();
  EXPECT_FALSE(gone_at_start.get_future().get());
  EXPECT_TRUE(waited.get_future().get());
  EXPECT_TRUE(gone_after.get_future().get());
}

TEST(HttpTransport, WritesToAGoneClientFail) {
  std::promise<void> stream_begun;
  std::promise<bool> saw_gone, write_failed;
  Served s(fast_options(), [&](const HttpRequest&, HttpResponder& responder) {
    responder.begin_stream(200, "text/plain");
    stream_begun.set_value();
    saw_gone.set_value(responder.wait_client_gone(10s));
    bool failed = false;
    const std::string piece(1024, 'x');
    for (int i = 0; i < 100000 && !failed; ++i) failed = !responder.write(piece);
    write_failed.set_value(failed);
    EXPECT_TRUE(responder.client_gone());
  });
  auto client = s.connect();
  client->send("GET /stream HTTP/1.1\r\n\r\n");
  stream_begun.get_future().wait();
  client->close();
  EXPECT_TRUE(saw_gone.get_future().get());
  EXPECT_TRUE(write_failed.get_future().get());
}

TEST(HttpTransport, StreamToAnHttp10ClientEndsWithTheConnection) {
  Served s(fast_options(), [](const HttpRequest&, HttpResponder& responder) {
    responder.begin_stream(200, "text/plain");
    responder.write("one ");
    responder.write("two");
    responder.end();
  });
  auto client = s.connect();
  client->send("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  const Response r = client->read_response();  // no length, no chunks: read to EOF
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Transfer-Encoding"), "");
  EXPECT_EQ(r.header("Connection"), "close");
  EXPECT_EQ(r.body, "one two");
}

TEST(HttpTransport, PipelinedBytesAreNotAGoneClient) {
  std::atomic<int> calls{0};
  std::atomic<bool> gone{true}, waited_gone{true};
  Served s(fast_options(), [&](const HttpRequest& request, HttpResponder& responder) {
    if (++calls == 1) {
      gone = responder.client_gone();
      waited_gone = responder.wait_client_gone(100ms);
    }
    routes(request, responder);
  });
  auto client = s.connect();
  client->send("GET /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
  EXPECT_EQ(client->read_response().status, 200);
  EXPECT_EQ(client->read_response().status, 200);
  EXPECT_FALSE(gone.load());
  EXPECT_FALSE(waited_gone.load());
}

TEST(HttpTransport, StreamedChunksArriveOneByOne) {
  std::promise<void> first_read;
  std::future<void> first_read_future = first_read.get_future();
  std::promise<bool> second_ok;
  Served s(fast_options(), [&](const HttpRequest&, HttpResponder& responder) {
    responder.begin_stream(200, "text/event-stream", {{"X-Stream", "yes"}});
    responder.write("data: first\n\n");
    // The second piece is written only after the client has read the first.
    if (first_read_future.wait_for(10s) != std::future_status::ready) return;
    second_ok.set_value(responder.write("data: second\n\n"));
    responder.write("");  // nothing: an empty chunk would end the stream
    responder.end();
  });
  auto client = s.connect();
  client->send("GET /events HTTP/1.1\r\n\r\n");
  const Response head = client->read_head();
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("Transfer-Encoding"), "chunked");
  EXPECT_EQ(head.header("Cache-Control"), "no-cache");
  EXPECT_EQ(head.header("Content-Type"), "text/event-stream");
  EXPECT_EQ(head.header("X-Stream"), "yes");
  std::string chunk;
  ASSERT_TRUE(client->read_chunk(chunk));
  EXPECT_EQ(chunk, "data: first\n\n");
  first_read.set_value();
  ASSERT_TRUE(client->read_chunk(chunk));
  EXPECT_EQ(chunk, "data: second\n\n");
  ASSERT_TRUE(client->read_chunk(chunk));
  EXPECT_EQ(chunk, "");  // the last chunk
  EXPECT_TRUE(second_ok.get_future().get());
  // The connection stays usable after a complete stream.
  client->send("GET /events HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(client->read_response().body, "data: first\n\ndata: second\n\n");
}

TEST(HttpTransport, StopReturnsWithIdleConnectionsOpen) {
  HttpServerOptions o = fast_options();
  o.idle_timeout = std::chrono::hours(1);
  o.head_timeout = std::chrono::hours(1);
  auto s = std::make_unique<Served>(o);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 10; ++i) clients.push_back(s->connect());
  clients[0]->send("GET /hello HTTP/1.1\r\n\r\n");  // kept alive, idle after its answer
  EXPECT_EQ(clients[0]->read_response().status, 200);
  clients[1]->send("GET /hel");  // half a head
  ASSERT_TRUE(eventually([&] { return s->server.open_connections() == 10; }));
  // Were stop() to wait for idle clients, it would wait an hour; this guard only catches that.
  auto stopped = std::async(std::launch::async, [&] { s->server.stop(); });
  ASSERT_EQ(stopped.wait_for(60s), std::future_status::ready);
  for (auto& client : clients) EXPECT_TRUE(client->closed_by_server());
  EXPECT_EQ(s->server.open_connections(), 0u);
  EXPECT_THROW(RawClient(s->server.port()), std::runtime_error);  // no longer listening
  s->server.stop();                                               // idempotent
}

TEST(HttpTransport, StopWaitsForARunningHandler) {
  std::promise<void> handler_running;
  std::atomic<bool> handler_returned{false};
  Served s(fast_options(), [&](const HttpRequest&, HttpResponder& responder) {
    handler_running.set_value();
    while (!responder.server_stopping()) std::this_thread::sleep_for(1ms);
    responder.send(200, "text/plain", "finished");
    handler_returned = true;
  });
  auto client = s.connect();
  client->send("GET /work HTTP/1.1\r\n\r\n");
  handler_running.get_future().wait();
  s.server.stop();
  EXPECT_TRUE(handler_returned.load());
  const Response r = client->read_response();
  EXPECT_EQ(r.body, "finished");
  EXPECT_EQ(r.header("Connection"), "close");
}

TEST(HttpTransport, HandlerThatThrowsOrDoesNotAnswerIs500) {
  Served s;
  auto client = s.connect();
  client->send("GET /throw HTTP/1.1\r\n\r\n");
  expect_json_error(client->read_response(), 500, "internal error: boom");
  client->send("GET /silent HTTP/1.1\r\n\r\n");  // the connection is still usable
  expect_json_error(client->read_response(), 500, "without answering");
  client->send("GET /hello HTTP/1.1\r\n\r\n");
  EXPECT_EQ(client->read_response().body, "hello");
}

TEST(HttpTransport, SlowBodyIs408AndIdleConnectionCloses) {
  HttpServerOptions o = fast_options();
  o.body_timeout = 300ms;
  o.idle_timeout = 300ms;
  Served s(o);
  auto slow = s.connect();
  slow->send("POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly ten b");
  expect_json_error(slow->read_response(), 408, "10 bytes came");
  auto idle = s.connect();  // nothing sent: closed without an answer
  EXPECT_TRUE(idle->closed_by_server());
}

TEST(HttpTransport, HeadRequestGetsNoBody) {
  Served s;
  auto client = s.connect();
  client->send("HEAD /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
  const Response head = client->read_head();
  EXPECT_EQ(head.header("Content-Length"), "5");
  EXPECT_EQ(client->read_response().body, "hello");  // the next response follows at once
}

TEST(HttpTransport, BadResponseHeadersAreRefused) {
  std::promise<std::string> error;
  Served s(fast_options(), [&](const HttpRequest&, HttpResponder& responder) {
    try {
      responder.send(200, "text/plain", "x", {{"X-Bad", "a\r\nSet-Cookie: evil"}});
    } catch (const Error& e) {
      error.set_value(e.what());
      throw;
    }
  });
  EXPECT_EQ(s.request("GET / HTTP/1.1\r\n\r\n").status, 500);
  EXPECT_CONTAINS(error.get_future().get(), "CR, LF or NUL");
}

TEST(HttpTransport, PortInUseIsAClearError) {
  Served s;
  HttpServerOptions o;
  o.port = s.server.port();
  HttpServer second(o, routes, error_json);
  EXPECT_ERROR(second.start(), "127.0.0.1:" + std::to_string(o.port), "--port");
  HttpServerOptions bad_host;
  bad_host.host = "203.0.113.7";  // TEST-NET-3: not an address of this machine
  HttpServer third(bad_host, routes, error_json);
  EXPECT_ERROR(third.start(), "203.0.113.7:0", "--host");
}

}  // namespace
}  // namespace expo
