#include "http/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <iterator>
#include <list>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "http/http_chunked_decoder.h"

namespace expo {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The state of one accepted connection, shared by its thread's reading loop and the
// HttpResponder of the request being answered.
struct HttpConnection {
  int fd = -1;
  int wake_fd = -1;  // readable once the server stops
  const std::atomic<bool>* stopping = nullptr;
  milliseconds write_timeout{10000};
  std::string peer;
  std::string in;     // bytes received and not consumed yet (the head, pipelined requests)
  bool gone = false;  // a write failed or timed out
};

namespace {

constexpr size_t kReadBytes = 64 << 10;         // one recv()
constexpr size_t kLargeBody = size_t(1) << 20;  // above: reserved as it arrives, freed after
constexpr milliseconds kLinger{2000};           // reading what a refused client still sends
constexpr size_t kMaxRejectedLingering = 64;    // 503'd sockets the accept thread lingers on
constexpr milliseconds kLingerRejected{1000};
constexpr milliseconds kAcceptBackoff{100};  // after EMFILE and the like

enum class Io { kOk, kTimeout, kClosed, kStopping };

int poll_timeout_ms(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
}

std::string seconds_text(milliseconds ms) {
  if (ms.count() % 1000 == 0) return str(ms.count() / 1000, " s");
  return str(ms.count(), " ms");
}

// Waits until `fd` has bytes (or EOF, or an error) before `deadline`, unless the server stops.
Io wait_readable(const HttpConnection& c, Clock::time_point deadline) {
  while (true) {
    pollfd fds[2] = {{c.fd, POLLIN, 0}, {c.wake_fd, POLLIN, 0}};
    const int n = ::poll(fds, 2, poll_timeout_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Io::kClosed;
    if (fds[1].revents) return Io::kStopping;
    if (fds[0].revents) return Io::kOk;
    if (Clock::now() >= deadline) return Io::kTimeout;
  }
}

// Appends what arrives (at most kReadBytes) to c.in.
Io read_some(HttpConnection& c, Clock::time_point deadline) {
  while (true) {
    const Io waited = wait_readable(c, deadline);
    if (waited != Io::kOk) return waited;
    // Through a buffer on the stack, so that an idle connection's c.in stays small.
    char buffer[kReadBytes];
    const ssize_t n = ::recv(c.fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) {
      c.in.append(buffer, static_cast<size_t>(n));
      return Io::kOk;
    }
    if (n == 0) return Io::kClosed;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return Io::kClosed;
  }
}

// Sends every byte of `parts`, waiting for room up to write_timeout at a time; false (and the
// client marked gone) if the peer is gone or makes no progress for that long.
bool write_all(HttpConnection& c, std::initializer_list<std::string_view> parts) {
  if (c.gone) return false;
  iovec iov[8];
  size_t count = 0;
  for (const std::string_view part : parts) {
    if (part.empty()) continue;
    iov[count++] = {const_cast<char*>(part.data()), part.size()};
  }
  size_t first = 0;
  while (first < count) {
    msghdr message{};
    message.msg_iov = iov + first;
    message.msg_iovlen = count - first;
    const ssize_t n = ::sendmsg(c.fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) break;
      pollfd fd{c.fd, POLLOUT, 0};
      int ready;
      do {
        ready =
            ::poll(&fd, 1, static_cast<int>(std::min<long long>(c.write_timeout.count(), INT_MAX)));
      } while (ready < 0 && errno == EINTR);
      if (ready <= 0 || (fd.revents & (POLLERR | POLLHUP | POLLNVAL))) break;
      continue;
    }
    size_t sent = static_cast<size_t>(n);
    while (first < count && sent >= iov[first].iov_len) sent -= iov[first++].iov_len;
    if (first < count) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + sent;
      iov[first].iov_len -= sent;
    }
  }
  if (first < count) c.gone = true;
  return !c.gone;
}

// An RFC 9110 IMF-fixdate, without the locale's names of days and months.
std::string http_date() {
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[64];
  std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return text;
}

std::string format_peer(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (address.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(address);
    ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
    return str(text, ":", ntohs(a.sin_port));
  }
  if (address.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(address);
    ::inet_ntop(AF_INET6, &a.sin6_addr, text, sizeof text);
    return str("[", text, "]:", ntohs(a.sin6_port));
  }
  return "unknown";
}

std::string host_port(const std::string& host, int port) {
  return host.find(':') != std::string::npos ? str("[", host, "]:", port) : str(host, ":", port);
}

std::string default_error_json(int status, const std::string& message) {
  const nlohmann::json body = {{"error",
                                {{"message", message},
                                 {"type", status >= 500 ? "server_error" : "invalid_request_error"},
                                 {"code", status}}}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void check_header_text(std::string_view what, std::string_view text) {
  for (const char c : text) {
    if (c == '\r' || c == '\n' || c == '\0')
      fail("HttpResponder: ", what, " `", printable_excerpt(text),
           "` has a CR, LF or NUL, which would split the response head");
  }
}

// Releases the memory of a large request at once: glibc keeps freed memory in its arenas
// otherwise, and a server that took one 30 MB body would keep 30 MB for its lifetime.
void release_large_buffers(HttpRequest& request, std::string& in) {
  const bool large = request.body.capacity() > kLargeBody || in.capacity() > kLargeBody;
  if (!large) return;
  std::string().swap(request.body);
  if (in.capacity() > kLargeBody) std::string(in).swap(in);
  ::malloc_trim(0);
}

}  // namespace

const char* http_reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

const std::string* HttpRequest::header(std::string_view name) const {
  for (const HttpHeader& h : headers)
    if (ascii_iequals(h.name, name)) return &h.value;
  return nullptr;
}

// ---- HttpResponder ----

HttpResponder::HttpResponder(HttpConnection& connection, const HttpRequest& request,
                             bool keep_alive)
    : connection_(connection),
      head_only_(request.method == "HEAD"),
      http10_(request.version_minor == 0),
      keep_alive_(keep_alive) {}

bool HttpResponder::write_head(int status, std::string_view content_type,
                               const std::vector<HttpHeader>& extra, std::string_view framing,
                               std::string_view body) {
  if (status_ != 0)
    fail("HttpResponder: a response (status ", status_, ") was already begun for this request");
  if (status < 100 || status > 999) fail("HttpResponder: status ", status, " is not 3 digits");
  check_header_text("Content-Type", content_type);
  for (const HttpHeader& h : extra) {
    if (!is_http_token(h.name))
      fail("HttpResponder: header name `", printable_excerpt(h.name), "` is not a token");
    const std::string name = ascii_lower(h.name);
    if (name == "content-length" || name == "transfer-encoding" || name == "connection")
      fail("HttpResponder: header ", h.name, " is the server's to write; leave it out");
    check_header_text(h.name, h.value);
  }
  status_ = status;
  close_after_ = close_after_ || !keep_alive_ || connection_.stopping->load();
  std::string head =
      str("HTTP/1.1 ", status, " ", http_reason_phrase(status), "\r\nDate: ", http_date(), "\r\n");
  if (!content_type.empty()) head += str("Content-Type: ", content_type, "\r\n");
  head += framing;
  if (close_after_) {
    head += "Connection: close\r\n";
  } else if (http10_) {
    head += "Connection: keep-alive\r\n";
  }
  for (const HttpHeader& h : extra) head += str(h.name, ": ", h.value, "\r\n");
  head += "\r\n";
  return write_all(connection_, {head, head_only_ ? std::string_view() : body});
}

bool HttpResponder::send(int status, std::string_view content_type, std::string_view body,
                         const std::vector<HttpHeader>& extra) {
  return write_head(status, content_type, extra, str("Content-Length: ", body.size(), "\r\n"),
                    body);
}

bool HttpResponder::begin_stream(int status, std::string_view content_type,
                                 const std::vector<HttpHeader>& extra) {
  std::string framing = "Cache-Control: no-cache\r\n";
  if (http10_) {
    close_after_ = true;  // HTTP/1.0 has no chunks: the body ends with the connection
  } else {
    framing += "Transfer-Encoding: chunked\r\n";
  }
  const bool ok = write_head(status, content_type, extra, framing, {});
  streaming_ = true;
  return ok;
}

bool HttpResponder::write(std::string_view data) {
  if (!streaming_ || stream_ended_)
    fail("HttpResponder::write: ", streaming_ ? "the stream has ended" : "no begin_stream() yet");
  if (data.empty() || head_only_) return !connection_.gone;
  if (http10_) return write_all(connection_, {data});
  char size_line[32];
  const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
  return write_all(connection_,
                   {std::string_view(size_line, static_cast<size_t>(n)), data, "\r\n"});
}

bool HttpResponder::end() {
  if (!streaming_) fail("HttpResponder::end: no begin_stream() yet");
  if (stream_ended_) return !connection_.gone;
  stream_ended_ = true;
  if (http10_ || head_only_) return !connection_.gone;
  return write_all(connection_, {"0\r\n\r\n"});
}

bool HttpResponder::client_gone() {
  if (connection_.gone) return true;
  pollfd fd{connection_.fd, POLLRDHUP, 0};
  const int n = ::poll(&fd, 1, 0);
  return n > 0 && (fd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

bool HttpResponder::wait_client_gone(std::chrono::milliseconds timeout) {
  if (connection_.gone) return true;
  const Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    // POLLIN is not asked for: bytes the client pipelined do not wake this wait.
    pollfd fd{connection_.fd, POLLRDHUP, 0};
    const int n = ::poll(&fd, 1, poll_timeout_ms(deadline));
    if (n > 0 && (fd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) return true;
    if (n < 0 && errno != EINTR) return true;
    if (Clock::now() >= deadline) return false;
  }
}

bool HttpResponder::server_stopping() const { return connection_.stopping->load(); }

bool HttpResponder::reusable() const {
  return status_ != 0 && !close_after_ && !connection_.gone && (!streaming_ || stream_ended_);
}

// ---- HttpServer ----

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  HttpErrorFormatter errors;
  std::function<void(const HttpRequest&, int)> log;

  int listen_fd = -1;
  int wake_fd = -1;  // eventfd written once by stop(): every poll of the server watches it
  int reap_fd = -1;  // eventfd: a connection thread has finished and can be joined
  int bound_port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> open{0};

  std::mutex lifecycle_mutex;
  bool started = false;
  bool stopped = false;
  std::thread acceptor;

  struct Worker {
    std::thread thread;
    bool done = false;
  };
  std::mutex workers_mutex;
  std::list<Worker> workers;

  struct Rejected {  // a 503'd socket, read and discarded until the client closes it
    int fd;
    Clock::time_point deadline;
  };
  std::vector<Rejected> rejected;  // the accept thread's only

  std::string error_json(int status, const std::string& message) {
    if (errors) {
      try {
        return errors(status, message);
      } catch (const std::exception&) {
      }
    }
    return default_error_json(status, message);
  }

  void log_request(const HttpRequest& request, int status) {
    if (!log) return;
    try {
      log(request, status);
    } catch (const std::exception&) {
    }
  }

  void close_fds() {
    for (int* fd : {&listen_fd, &wake_fd, &reap_fd}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }

  void bind_and_listen();
  void accept_loop();
  void accept_ready(bool& backoff);
  void reject(int fd, const std::string& peer);
  void reap_workers();
  void serve_connection(int fd, std::string peer, std::list<Worker>::iterator self);
  void serve(HttpConnection& c);
  void answer_error(HttpConnection& c, HttpRequest& request, int status,
                    const std::string& message);
  void linger_and_close(HttpConnection& c, milliseconds linger);
};

void HttpServer::Impl::bind_and_listen() {
  const HttpServerOptions& o = options;
  const std::string where = host_port(o.host, o.port);
  if (o.port < 0 || o.port > 65535)
    fail("cannot listen on ", where, ": the port must be 0 to 65535; choose another --port");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(o.port);
  const int gai =
      ::getaddrinfo(o.host.empty() ? nullptr : o.host.c_str(), port_text.c_str(), &hints, &found);
  if (gai != 0)
    fail("cannot listen on ", where, ": the host is not an address of this machine (",
         ::gai_strerror(gai), "); use --host 127.0.0.1 (this machine only) or 0.0.0.0 (all)");
  int error = 0;
  for (addrinfo* a = found; a && listen_fd < 0; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // not SO_REUSEPORT
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      error = errno;
      ::close(fd);
      continue;
    }
    listen_fd = fd;
  }
  ::freeaddrinfo(found);
  if (listen_fd < 0) {
    const char* hint = "check --host and --port";
    if (error == EADDRINUSE)
      hint = "another program is listening there; choose another --port (0 picks a free one)";
    if (error == EADDRNOTAVAIL)
      hint = "that address is not one of this machine's; use --host 127.0.0.1 or 0.0.0.0";
    if (error == EACCES) hint = "ports below 1024 need privileges; choose a --port of 1024 or more";
    fail("cannot listen on ", where, ": ", std::strerror(error), "; ", hint);
  }
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&address), &length);
  bound_port = address.ss_family == AF_INET6
                   ? ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port)
                   : ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
}

void HttpServer::Impl::accept_loop() {
  bool backoff = false;
  while (true) {
    reap_workers();
    std::vector<pollfd> fds = {{listen_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}, {reap_fd, POLLIN, 0}};
    Clock::time_point deadline = Clock::time_point::max();
    for (const Rejected& r : rejected) {
      fds.push_back({r.fd, POLLIN, 0});
      deadline = std::min(deadline, r.deadline);
    }
    if (backoff) {  // out of file descriptors: do not spin on a listening socket we cannot serve
      fds[0].events = 0;
      deadline = std::min(deadline, Clock::now() + kAcceptBackoff);
    }
    const int timeout = deadline == Clock::time_point::max() ? -1 : poll_timeout_ms(deadline);
    const int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0) {  // EINTR; ENOMEM: try again shortly
      backoff = errno != EINTR;
      continue;
    }
    if (fds[1].revents) break;  // stop()
    if (fds[2].revents) {
      eventfd_t ignored;
      ::eventfd_read(reap_fd, &ignored);
    }
    const Clock::time_point now = Clock::now();
    for (size_t i = 0; i < rejected.size();) {
      bool finished = now >= rejected[i].deadline;
      if (fds[3 + i].revents && !finished) {
        char scratch[4096];
        const ssize_t got = ::recv(rejected[i].fd, scratch, sizeof scratch, MSG_DONTWAIT);
        finished = got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR);
      }
      if (finished) {
        ::close(rejected[i].fd);
        fds.erase(fds.begin() + 3 + static_cast<std::ptrdiff_t>(i));
        rejected.erase(rejected.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    if (backoff) {
      backoff = false;
      continue;
    }
    if (fds[0].revents) accept_ready(backoff);
  }
  for (const Rejected& r : rejected) ::close(r.fd);
  rejected.clear();
}

void HttpServer::Impl::accept_ready(bool& backoff) {
  while (true) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    const int fd =
        ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&address), &length, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) backoff = true;
      return;  // EAGAIN: nothing more to accept
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // streamed chunks go at once
    std::string peer = format_peer(address);
    if (open.load() >= options.max_connections) {
      reject(fd, peer);
      continue;
    }
    open.fetch_add(1);
    bool started = true;
    {
      std::lock_guard lock(workers_mutex);
      workers.emplace_back();
      const auto self = std::prev(workers.end());
      try {
        self->thread = std::thread(&Impl::serve_connection, this, fd, peer, self);
      } catch (const std::system_error&) {
        workers.erase(self);
        started = false;
      }
    }
    if (!started) {  // out of threads: answered as if there were too many connections
      open.fetch_sub(1);
      reject(fd, peer);
    }
  }
}

// 503 and close, from the accept thread, without a thread for the connection. The socket
// lingers (its input read and dropped) so that closing it with unread bytes does not reset the
// connection before the client has read the 503.
void HttpServer::Impl::reject(int fd, const std::string& peer) {
  const std::string body = error_json(503, str("the server has ", options.max_connections,
                                               " connections open, its limit; retry in a second"));
  const std::string response =
      str("HTTP/1.1 503 Service Unavailable\r\nDate: ", http_date(),
          "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
          "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n", body);
  ::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd, SHUT_WR);
  HttpRequest request;
  request.peer = peer;
  log_request(request, 503);
  if (rejected.size() >= kMaxRejectedLingering) {
    ::close(fd);
    return;
  }
  rejected.push_back({fd, Clock::now() + kLingerRejected});
}

void HttpServer::Impl::reap_workers() {
  std::vector<std::thread> finished;
  {
    std::lock_guard lock(workers_mutex);
    for (auto it = workers.begin(); it != workers.end();) {
      if (it->done) {
        finished.push_back(std::move(it->thread));
        it = workers.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (std::thread& t : finished) t.join();
}

void HttpServer::Impl::serve_connection(int fd, std::string peer,
                                        std::list<Worker>::iterator self) {
  HttpConnection c;
  c.fd = fd;
  c.wake_fd = wake_fd;
  c.stopping = &stopping;
  c.write_timeout = options.write_timeout;
  c.peer = std::move(peer);
  try {
    serve(c);
  } catch (const std::exception&) {  // out of memory, say: drop this connection only
  }
  ::close(fd);
  open.fetch_sub(1);
  {
    std::lock_guard lock(workers_mutex);
    self->done = true;
  }
  ::eventfd_write(reap_fd, 1);
}

void HttpServer::Impl::linger_and_close(HttpConnection& c, milliseconds linger) {
  // Half-close, then drop what the client still sends: closing a socket with unread input
  // resets the connection, and a reset can destroy the response before the client reads it.
  ::shutdown(c.fd, SHUT_WR);
  const Clock::time_point deadline = Clock::now() + linger;
  c.in.clear();
  if (linger.count() == 0) {  // only what has arrived already, a bounded amount of it
    char scratch[4096];
    for (int i = 0; i < 256; ++i)
      if (::recv(c.fd, scratch, sizeof scratch, MSG_DONTWAIT) <= 0) return;
    return;
  }
  while (read_some(c, deadline) == Io::kOk) c.in.clear();
}

void HttpServer::Impl::answer_error(HttpConnection& c, HttpRequest& request, int status,
                                    const std::string& message) {
  HttpResponder responder(c, request, /*keep_alive=*/false);
  responder.send(status, "application/json", error_json(status, message));
  log_request(request, status);
  linger_and_close(c, kLinger);
}

void HttpServer::Impl::serve(HttpConnection& c) {
  const HttpServerOptions& o = options;
  const HttpHeadLimits head_limits{100, o.max_body_bytes};
  auto drop_empty_lines = [&c] {  // RFC 9112 2.2: ignore empty lines before a request line
    size_t n = 0;
    while (n < c.in.size() && (c.in[n] == '\r' || c.in[n] == '\n')) ++n;
    c.in.erase(0, n);
    return n > 0;
  };

  while (!stopping.load()) {
    HttpRequest request;
    request.peer = c.peer;

    // The head: the first byte within idle_timeout, all of it within head_timeout of that.
    drop_empty_lines();
    if (c.in.empty() && read_some(c, Clock::now() + o.idle_timeout) != Io::kOk) return;
    const Clock::time_point head_deadline = Clock::now() + o.head_timeout;
    size_t head_end = std::string::npos;
    size_t scanned = 0;
    while (true) {
      if (drop_empty_lines()) scanned = 0;
      head_end = find_http_head_end(c.in, scanned);
      if (head_end != std::string::npos || c.in.size() >= o.max_head_bytes) break;
      scanned = c.in.size();
      const Io io = read_some(c, head_deadline);
      if (io == Io::kTimeout)
        return answer_error(
            c, request, 408,
            str("the request head did not arrive within ", seconds_text(o.head_timeout), " (",
                c.in.size(), " bytes came); send the whole head at once"));
      if (io != Io::kOk) return;
    }
    if (head_end == std::string::npos || head_end > o.max_head_bytes)
      return answer_error(c, request, 431,
                          str("the request head is over the limit of ", o.max_head_bytes,
                              " bytes; send fewer or shorter header fields"));
    HttpRequestHead head =
        parse_http_request_head(std::string_view(c.in).substr(0, head_end), head_limits);
    c.in.erase(0, head_end);
    request.method = std::move(head.method);
    request.target = std::move(head.target);
    request.path = std::move(head.path);
    request.version_minor = head.version_minor;
    request.headers = std::move(head.headers);
    if (head.status != 0) return answer_error(c, request, head.status, head.message);

    // The body.
    const bool has_body = head.chunked || (head.content_length && *head.content_length > 0);
    if (has_body && head.expect_continue && !write_all(c, {"HTTP/1.1 100 Continue\r\n\r\n"}))
      return;
    const Clock::time_point body_start = Clock::now();
    auto body_deadline = [&](uint64_t length) {  // body_timeout plus 1 s per MiB
      const uint64_t ms =
          (length >> 20) * 1000 + ((length & ((uint64_t(1) << 20) - 1)) * 1000 >> 20);
      return body_start + o.body_timeout + milliseconds(static_cast<int64_t>(ms));
    };
    if (head.content_length && *head.content_length > 0) {
      const uint64_t length = *head.content_length;
      request.body.reserve(static_cast<size_t>(std::min<uint64_t>(length, kLargeBody)));
      const Clock::time_point deadline = body_deadline(length);
      while (true) {
        const size_t take =
            static_cast<size_t>(std::min<uint64_t>(length - request.body.size(), c.in.size()));
        if (request.body.size() + take > request.body.capacity())  // grow, never past length
          request.body.reserve(static_cast<size_t>(std::min<uint64_t>(
              length, std::max(2 * request.body.capacity(), request.body.size() + take))));
        request.body.append(c.in, 0, take);
        c.in.erase(0, take);
        if (request.body.size() == length) break;
        const Io io = read_some(c, deadline);
        if (io == Io::kTimeout)
          return answer_error(
              c, request, 408,
              str("the request body (", length, " bytes) did not arrive within ",
                  seconds_text(std::chrono::duration_cast<milliseconds>(deadline - body_start)),
                  "; ", request.body.size(), " bytes came"));
        if (io != Io::kOk) return;
      }
    } else if (head.chunked) {
      HttpChunkedLimits limits;
      limits.max_body_bytes = o.max_body_bytes;
      limits.max_trailer_bytes = o.max_head_bytes;
      HttpChunkedDecoder decoder(limits);
      while (true) {
        c.in.erase(0, decoder.feed(c.in, request.body));
        if (decoder.failed()) return answer_error(c, request, decoder.status(), decoder.message());
        if (decoder.done()) break;
        const Clock::time_point deadline = body_deadline(decoder.body_bytes());
        const Io io = read_some(c, deadline);
        if (io == Io::kTimeout)
          return answer_error(
              c, request, 408,
              str("the chunked request body did not end within ",
                  seconds_text(std::chrono::duration_cast<milliseconds>(deadline - body_start)),
                  "; ", request.body.size(), " bytes came"));
        if (io != Io::kOk) return;
      }
    }

    // The handler.
    HttpResponder responder(c, request, head.keep_alive);
    try {
      handler(request, responder);
    } catch (const std::exception& e) {
      if (!responder.responded())
        responder.send(500, "application/json", error_json(500, str("internal error: ", e.what())));
    } catch (...) {
      if (!responder.responded())
        responder.send(500, "application/json",
                       error_json(500, "internal error: an unknown exception"));
    }
    if (!responder.responded())
      responder.send(500, "application/json",
                     error_json(500, "internal error: the handler returned without answering"));
    log_request(request, responder.status());
    release_large_buffers(request, c.in);
    if (!responder.reusable()) return linger_and_close(c, milliseconds(0));
  }
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler, HttpErrorFormatter errors)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->errors = std::move(errors);
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  Impl& s = *impl_;
  std::lock_guard lock(s.lifecycle_mutex);
  if (s.started) fail("HttpServer::start: the server was started already");
  const HttpServerOptions& o = s.options;
  if (!s.handler) fail("HttpServer: no handler");
  if (o.max_connections == 0 || o.max_head_bytes == 0)
    fail("HttpServer: max_connections and max_head_bytes must be positive");
  for (const milliseconds timeout :
       {o.head_timeout, o.idle_timeout, o.body_timeout, o.write_timeout})
    if (timeout.count() <= 0 || timeout > std::chrono::hours(24))
      fail("HttpServer: a timeout of ", timeout.count(), " ms; each must be 1 ms to 24 hours");
  s.wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  s.reap_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s.wake_fd < 0 || s.reap_fd < 0) {
    const int error = errno;
    s.close_fds();
    fail("cannot start the HTTP server: eventfd: ", std::strerror(error));
  }
  try {
    s.bind_and_listen();
    s.acceptor = std::thread(&Impl::accept_loop, &s);
  } catch (...) {
    s.close_fds();
    throw;
  }
  s.started = true;
}

void HttpServer::stop() {
  Impl& s = *impl_;
  std::lock_guard lock(s.lifecycle_mutex);  // a second caller returns once the first is done
  if (!s.started || s.stopped) return;
  s.stopped = true;
  s.stopping.store(true);
  ::eventfd_write(s.wake_fd, 1);  // never read: every poll that watches it wakes, now and later
  s.acceptor.join();
  ::close(s.listen_fd);  // refuse new connections while the running handlers finish
  s.listen_fd = -1;
  // The entries stay in the list until every thread is joined: a finishing thread marks its own.
  std::vector<std::thread> threads;
  {
    std::lock_guard workers_lock(s.workers_mutex);
    for (Impl::Worker& w : s.workers) threads.push_back(std::move(w.thread));
  }
  for (std::thread& t : threads) t.join();
  s.workers.clear();
  s.close_fds();
}

int HttpServer::port() const { return impl_->bound_port; }
const std::string& HttpServer::host() const { return impl_->options.host; }
size_t HttpServer::open_connections() const { return impl_->open.load(); }

void HttpServer::set_request_log(std::function<void(const HttpRequest&, int status)> log) {
  impl_->log = std::move(log);
}

}  // namespace expo
