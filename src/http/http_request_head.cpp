#include "http/http_request_head.h"

#include <algorithm>

#include "core/error.h"

namespace expo {

namespace {

bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Calls `each` with every non-empty element of a comma-separated list, trimmed.
template <typename F>
void for_each_list_element(std::string_view list, F&& each) {
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view element = trim(list.substr(0, comma));
    if (!element.empty()) each(element);
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

HttpRequestHead refuse(HttpRequestHead head, int status, std::string message) {
  head.status = status;
  head.message = std::move(message);
  return head;
}

// "HTTP/1.1" -> 1; another well-formed HTTP/d.d -> 505; anything else -> 400.
int parse_version(std::string_view text, int& minor) {
  const bool well_formed = text.size() == 8 && text.substr(0, 5) == "HTTP/" && is_digit(text[5]) &&
                           text[6] == '.' && is_digit(text[7]);
  if (!well_formed) return 400;
  if (text[5] != '1' || (text[7] != '0' && text[7] != '1')) return 505;
  minor = text[7] - '0';
  return 0;
}

}  // namespace

bool is_http_token(std::string_view text) {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string printable_excerpt(std::string_view text, size_t max_bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  const size_t n = std::min(text.size(), max_bytes);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (n < text.size()) out += "...";
  return out;
}

size_t find_http_head_end(std::string_view buffer, size_t from) {
  for (size_t i = buffer.find('\n', from); i != std::string_view::npos;
       i = buffer.find('\n', i + 1)) {
    if (i >= 1 && buffer[i - 1] == '\n') return i + 1;
    if (i >= 2 && buffer[i - 1] == '\r' && buffer[i - 2] == '\n') return i + 1;
  }
  return std::string_view::npos;
}

HttpRequestHead parse_http_request_head(std::string_view text, const HttpHeadLimits& limits) {
  HttpRequestHead head;

  // Split into lines (LF or CRLF); a CR anywhere else is refused, so that no two readers of
  // these bytes can see different line boundaries.
  std::vector<std::string_view> lines;
  bool ended = false;
  size_t line_start = 0;
  while (line_start < text.size()) {
    const size_t lf = text.find('\n', line_start);
    if (lf == std::string_view::npos) break;
    std::string_view line = text.substr(line_start, lf - line_start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t cr = line.find('\r');
    if (cr != std::string_view::npos)
      return refuse(std::move(head), 400,
                    str("line ", lines.size() + 1, " of the request head has a CR without LF"));
    line_start = lf + 1;
    if (line.empty()) {
      if (lines.empty()) {
        return refuse(std::move(head), 400, "the request head starts with an empty line");
      }
      ended = true;
      break;
    }
    lines.push_back(line);
  }
  if (!ended)
    return refuse(std::move(head), 400, "the request head does not end with an empty line");
  if (line_start != text.size())
    return refuse(std::move(head), 400, "bytes follow the empty line that ends the request head");

  // The request line.
  const std::string_view request_line = lines[0];
  const size_t sp1 = request_line.find(' ');
  const size_t sp2 =
      sp1 == std::string_view::npos ? std::string_view::npos : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos)
    return refuse(std::move(head), 400,
                  str("the request line `", printable_excerpt(request_line),
                      "` is not METHOD TARGET HTTP/1.1 with single spaces"));
  const std::string_view method = request_line.substr(0, sp1);
  const std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = request_line.substr(sp2 + 1);
  if (!is_http_token(method))
    return refuse(std::move(head), 400,
                  str("the method `", printable_excerpt(method), "` is not a token"));
  if (target.empty() || (target != "*" && target[0] != '/'))
    return refuse(std::move(head), 400,
                  str("the request target `", printable_excerpt(target),
                      "` must start with `/` (or be `*`)"));
  for (size_t i = 0; i < target.size(); ++i) {
    if (is_control(static_cast<unsigned char>(target[i])))
      return refuse(std::move(head), 400,
                    str("the request target `", printable_excerpt(target),
                        "` has a control character at byte ", i + 1));
  }
  if (const int status = parse_version(version, head.version_minor); status != 0)
    return refuse(std::move(head), status,
                  status == 505 ? str("HTTP version `", printable_excerpt(version),
                                      "` is not supported; use HTTP/1.1 or HTTP/1.0")
                                : str("the request line ends with `", printable_excerpt(version),
                                      "`, not HTTP/1.1 or HTTP/1.0"));
  head.method = std::string(method);
  head.target = std::string(target);
  head.path = std::string(target.substr(0, target.find('?')));

  // The header fields.
  if (lines.size() - 1 > limits.max_headers)
    return refuse(std::move(head), 431,
                  str("the request has ", lines.size() - 1, " header fields; at most ",
                      limits.max_headers, " are accepted"));
  bool close = false, keep_alive = false;
  std::vector<std::string_view> transfer_encodings;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line[0] == ' ' || line[0] == '\t')
      return refuse(std::move(head), 400,
                    str("header line ", i,
                        " starts with a space or tab (obsolete line folding is not accepted)"));
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      return refuse(std::move(head), 400,
                    str("header line ", i, " has no ':' (`", printable_excerpt(line), "`)"));
    const std::string_view name = line.substr(0, colon);
    if (!is_http_token(name))
      return refuse(std::move(head), 400,
                    str("header line ", i, " has a name `", printable_excerpt(name),
                        "` that is not a token (no spaces before ':')"));
    const std::string_view value = trim(line.substr(colon + 1));
    for (const char c : value) {
      if (c != '\t' && is_control(static_cast<unsigned char>(c)))
        return refuse(std::move(head), 400,
                      str("header `", printable_excerpt(name), "` (line ", i,
                          ") has a control character in its value"));
    }
    HttpHeader header{ascii_lower(name), std::string(value)};

    if (header.name == "content-length") {
      if (value.empty() || !std::all_of(value.begin(), value.end(), is_digit))
        return refuse(std::move(head), 400,
                      str("Content-Length `", printable_excerpt(value), "` is not a number"));
      uint64_t n = 0;
      for (const char c : value) {
        if (__builtin_mul_overflow(n, uint64_t{10}, &n) ||
            __builtin_add_overflow(n, static_cast<uint64_t>(c - '0'), &n))
          return refuse(std::move(head), 413,
                        str("Content-Length ", printable_excerpt(value, 40),
                            " is over the limit of ", limits.max_body_bytes, " bytes"));
      }
      if (head.content_length && *head.content_length != n)
        return refuse(std::move(head), 400,
                      str("Content-Length is sent twice with different values (",
                          *head.content_length, " and ", n, ")"));
      head.content_length = n;
    } else if (header.name == "transfer-encoding") {
      transfer_encodings.push_back(value);
    } else if (header.name == "connection") {
      for_each_list_element(value, [&](std::string_view option) {
        if (ascii_iequals(option, "close")) close = true;
        if (ascii_iequals(option, "keep-alive")) keep_alive = true;
      });
    } else if (header.name == "expect") {
      if (ascii_iequals(value, "100-continue")) head.expect_continue = true;
    }
    head.headers.push_back(std::move(header));
  }

  if (!transfer_encodings.empty()) {
    if (head.content_length)
      return refuse(std::move(head), 400,
                    "the request has both Content-Length and Transfer-Encoding; send one");
    if (head.version_minor == 0)
      return refuse(std::move(head), 400,
                    "Transfer-Encoding is not allowed in an HTTP/1.0 request; send "
                    "Content-Length");
    std::vector<std::string_view> codings;
    for (const std::string_view value : transfer_encodings)
      for_each_list_element(value, [&](std::string_view coding) { codings.push_back(coding); });
    if (codings.size() != 1 || !ascii_iequals(codings[0], "chunked")) {
      std::string all;
      for (const std::string_view value : transfer_encodings)
        all += (all.empty() ? "" : ", ") + std::string(value);
      return refuse(std::move(head), 501,
                    str("Transfer-Encoding `", printable_excerpt(all),
                        "` is not supported; only `chunked` is"));
    }
    head.chunked = true;
  }
  if (head.content_length && *head.content_length > limits.max_body_bytes)
    return refuse(
        std::move(head), 413,
        str("the request body of ", *head.content_length,
            " bytes (Content-Length) is over the limit of ", limits.max_body_bytes, " bytes"));
  if (head.version_minor == 0) head.expect_continue = false;
  head.keep_alive = !close && (head.version_minor == 1 || keep_alive);
  return head;
}

}  // namespace expo
