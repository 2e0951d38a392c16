#pragma once
// One HTTP/1.x request head (the request line and the header fields, up to and including the
// blank line that ends them), parsed from untrusted bytes without any I/O, so that it can be
// unit-tested and fuzzed on its own (fuzz/http_request_head_fuzz.cpp). The server
// (http_server) answers a head this parser refuses with the status and message it returns.
//
// What it accepts (RFC 9112, strictly where a lenient reading would let two servers disagree
// about where a request ends, which is how request smuggling works):
//   - request line: METHOD SP TARGET SP HTTP/1.0 or HTTP/1.1, single spaces; the method a token;
//     the target `*` or starting with `/`, without control characters or spaces; any other
//     HTTP/d.d version is 505, anything else 400;
//   - lines end with CRLF or a bare LF (as most servers accept); a CR elsewhere is refused;
//   - header fields: NAME ":" VALUE, the name a token (no space before the colon), the value
//     without control characters other than tab, trimmed of spaces and tabs around it;
//     obsolete line folding (a line starting with a space or tab) is refused; more than
//     `max_headers` fields is 431;
//   - Content-Length: digits only; over `max_body_bytes` (or over 2^64) 413; repeated with
//     different values 400;
//   - Transfer-Encoding: only `chunked` (501 otherwise); together with Content-Length 400; in
//     an HTTP/1.0 request 400.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace expo {

struct HttpHeader {
  std::string name;  // lower-cased
  std::string value;
};

struct HttpHeadLimits {
  size_t max_headers = 100;                                        // beyond: 431
  uint64_t max_body_bytes = std::numeric_limits<uint64_t>::max();  // a larger Content-Length: 413
};

struct HttpRequestHead {
  int status = 0;       // 0: a valid head; else the status to answer (400, 413, 431, 501, 505)
  std::string message;  // what is wrong, when status != 0 (printable ASCII)
  std::string method;
  std::string target;  // as sent
  std::string path;    // target without its query
  int version_minor = 1;
  std::vector<HttpHeader> headers;
  std::optional<uint64_t> content_length;
  bool chunked = false;          // Transfer-Encoding: chunked
  bool keep_alive = true;        // HTTP/1.1 unless Connection: close; 1.0 only with keep-alive
  bool expect_continue = false;  // Expect: 100-continue (HTTP/1.1 only)
};

// Parses `head`, which must end with its blank line (find_http_head_end tells where that is).
// Never throws on bad input: a refused head has status != 0 and a message.
HttpRequestHead parse_http_request_head(std::string_view head, const HttpHeadLimits& limits = {});

// The offset just past the blank line that ends the head at the start of `buffer` ("\r\n\r\n",
// "\n\n" or a mix), or npos if it has not arrived yet. `from` lets a caller that appends to
// the buffer resume the search where the previous one stopped (pass the old size).
size_t find_http_head_end(std::string_view buffer, size_t from = 0);

// `text` made safe to quote in an error message: at most `max_bytes` of it, every byte that
// is not printable ASCII written as \xNN, and "..." when it was cut.
std::string printable_excerpt(std::string_view text, size_t max_bytes = 80);

// RFC 9110's token characters (methods, header names, transfer codings).
bool is_http_token(std::string_view text);

// ASCII lower-case, and case-insensitive equality (header names, tokens).
std::string ascii_lower(std::string_view text);
bool ascii_iequals(std::string_view a, std::string_view b);

}  // namespace expo
