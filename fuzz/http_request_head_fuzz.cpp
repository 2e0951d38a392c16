// libFuzzer target for what `expo serve` reads from a socket before any handler sees it
// (src/http): the request head parser and the search for the head's end, and the chunked body
// decoder fed the same bytes in pieces. Neither may throw on any input; a head they accept
// must hold what the server relies on (a token method, a target starting with `/` or `*`).
#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "http/http_chunked_decoder.h"
#include "http/http_request_head.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input = expo::fuzz::as_text(data, size);

  const size_t end = expo::find_http_head_end(input);
  if (end != std::string::npos && end > input.size()) std::abort();
  expo::HttpHeadLimits limits;
  limits.max_headers = 20;
  limits.max_body_bytes = 1 << 20;
  for (const std::string_view head :
       {std::string_view(input), std::string_view(input).substr(0, std::min(end, input.size()))}) {
    const expo::HttpRequestHead parsed = expo::parse_http_request_head(head, limits);
    if (parsed.status == 0) {
      if (!expo::is_http_token(parsed.method) || parsed.target.empty()) std::abort();
      if (parsed.target != "*" && parsed.target[0] != '/') std::abort();
      if (parsed.headers.size() > limits.max_headers) std::abort();
      if (parsed.chunked && parsed.content_length) std::abort();
      if (parsed.content_length && *parsed.content_length > limits.max_body_bytes) std::abort();
    } else if (parsed.message.empty()) {
      std::abort();
    }
  }

  // The chunked decoder, fed in pieces whose size comes from the first byte.
  expo::HttpChunkedLimits chunked_limits;
  chunked_limits.max_body_bytes = 1 << 16;
  chunked_limits.max_line_bytes = 256;
  chunked_limits.max_trailer_bytes = 1024;
  expo::HttpChunkedDecoder decoder(chunked_limits);
  const size_t step = size ? 1 + data[0] % 64 : 1;
  std::string pending, body;
  for (size_t pos = 0; pos < input.size() && !decoder.done() && !decoder.failed(); pos += step) {
    pending += input.substr(pos, step);
    const size_t consumed = decoder.feed(pending, body);
    if (consumed > pending.size()) std::abort();
    pending.erase(0, consumed);
    if (pending.size() > chunked_limits.max_line_bytes + 2 + step) std::abort();
  }
  if (body.size() > chunked_limits.max_body_bytes) std::abort();
  return 0;
}
