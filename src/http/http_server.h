#pragma once
// A small HTTP/1.1 server on POSIX sockets, the transport under `expo serve`: one accept
// thread, and one thread per connection (so that a slow or idle client ties up only its own
// thread), at most `max_connections` of them. Every read has a deadline (the head as a whole,
// the body by its length, the wait for the next request on a kept-alive connection), every
// write a no-progress timeout, so that no client can hold a thread for long; bodies are bytes
// whatever their Content-Type, up to `max_body_bytes`; handlers can see that their client has
// gone. Why our own code rather than cpp-httplib: CONTRIBUTING.md.
//
// Requests are parsed by http_request_head (the head) and http_chunked_decoder (chunked
// bodies). What the server answers by itself, with the formatter's JSON: 400 (a malformed
// head or chunked body), 408 (the head or the body too slow), 413 (a body over the limit,
// refused before it is read), 431 (too many or too large header fields), 501 (a
// Transfer-Encoding other than chunked), 505 (not HTTP/1.x), 503 with Retry-After: 1 (too
// many connections), and 500 when the handler throws or returns without responding. After
// any of them (but 500) the connection is closed.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/http_request_head.h"  // HttpHeader

namespace expo {

struct HttpRequest {
  std::string method;     // "GET", "POST", ...
  std::string target;     // as sent: "/v1/models?x=1"
  std::string path;       // target without the query
  int version_minor = 1;  // HTTP/1.x
  std::vector<HttpHeader> headers;
  std::string body;  // de-chunked
  std::string peer;  // "127.0.0.1:54321"
  // Case-insensitive, first match, nullptr if none.
  const std::string* header(std::string_view name) const;
};

struct HttpConnection;  // http_server.cpp

// One per request, given to the handler, valid only during the handler's call. Not
// thread-safe: call it from the handler's thread (or hand it over, not share it).
class HttpResponder {
 public:
  // A whole response: status line with the standard reason phrase, Content-Type,
  // Content-Length, extra headers, body. Returns false if the client is gone or the write
  // timed out. Throws expo::Error if a response was already begun, or an extra header has a
  // CR, LF or NUL.
  bool send(int status, std::string_view content_type, std::string_view body,
            const std::vector<HttpHeader>& extra = {});
  // A streamed response (Transfer-Encoding: chunked, Cache-Control: no-cache): begin, then
  // write() each piece (sent and flushed as one chunk at once; an empty piece sends nothing),
  // then end(). To an HTTP/1.0 client the pieces are sent as they are and the connection
  // closed after end(). Returning without end() closes the connection without the last
  // chunk, so that the client sees an incomplete answer.
  bool begin_stream(int status, std::string_view content_type,
                    const std::vector<HttpHeader>& extra = {});
  bool write(std::string_view data);
  bool end();
  // Non-blocking: the peer has closed or reset the connection (bytes it already pipelined do
  // not count), or a write to it failed. A peer that only shut down its sending side counts as
  // gone: on the wire that cannot be told apart from a close until a write fails.
  bool client_gone();
  // Blocks up to `timeout`; returns true as soon as the peer is gone, false at the timeout.
  bool wait_client_gone(std::chrono::milliseconds timeout);
  bool responded() const { return status_ != 0; }
  int status() const { return status_; }  // of the response begun, 0 before
  // HttpServer::stop() was called: finish (or give up on) the answer soon.
  bool server_stopping() const;

  // Made by the server for each request (HttpConnection is private to http_server.cpp).
  HttpResponder(HttpConnection& connection, const HttpRequest& request, bool keep_alive);
  // The connection can be kept for the next request: the response was complete and did not
  // say Connection: close, and no write failed.
  bool reusable() const;

 private:
  bool write_head(int status, std::string_view content_type, const std::vector<HttpHeader>& extra,
                  std::string_view framing, std::string_view body);

  HttpConnection& connection_;
  bool head_only_;   // a HEAD request: headers without the body
  bool http10_;      // an HTTP/1.0 request: no chunks
  bool keep_alive_;  // what the request asked for
  int status_ = 0;
  bool streaming_ = false;
  bool stream_ended_ = false;
  bool close_after_ = false;  // the response said Connection: close (or ends with the connection)
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponder&)>;
// The JSON text of an error the server answers by itself (bad head, body too large, timeouts,
// too many connections). Empty: {"error": {"message": ..., "type": ..., "code": status}}.
using HttpErrorFormatter = std::function<std::string(int status, const std::string& message)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                                    // 0: a free port
  size_t max_body_bytes = size_t(32) << 20;        // whatever the Content-Type; over it: 413
  size_t max_head_bytes = size_t(64) << 10;        // request line + headers; over it: 431
  std::chrono::milliseconds head_timeout{10000};   // first byte of a request to the end of its
                                                   // head: else 408 and close
  std::chrono::milliseconds idle_timeout{5000};    // wait for the first byte of the next request
                                                   // on a kept-alive connection (and of the
                                                   // first request): close silently
  std::chrono::milliseconds body_timeout{30000};   // the body must arrive within this plus 1 s
                                                   // per MiB of its length: else 408 and close
  std::chrono::milliseconds write_timeout{10000};  // a write that makes no progress for this
                                                   // long: the client is treated as gone
  size_t max_connections = 512;                    // beyond: 503 with Retry-After: 1, closed
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler, HttpErrorFormatter errors);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds (expo::Error naming host:port, suggesting --port/--host, if it cannot;
  // SO_REUSEADDR but not SO_REUSEPORT, so that a second server on the same port fails),
  // starts serving, returns once accepting. Throws if called twice.
  void start();
  // Stops accepting, closes idle connections (and those still sending a request) at once,
  // waits for running handlers to return and joins every thread. Idempotent. Not from a
  // handler (it would wait for itself): handlers see HttpResponder::server_stopping().
  void stop();
  int port() const;  // the bound port, after start()
  const std::string& host() const;
  size_t open_connections() const;
  // Optional: called once per answered request with the request (method and path empty when
  // its head could not be parsed; only peer for a 503) and the status, from the server's
  // threads, for a log line. Set it before start().
  void set_request_log(std::function<void(const HttpRequest&, int status)> log);

 private:
  struct Impl;  // http_server.cpp
  std::unique_ptr<Impl> impl_;
};

// The standard reason phrase of a status ("Not Found"), "Unknown" for a code it does not list.
const char* http_reason_phrase(int status);

}  // namespace expo
