#pragma once
// The decoder of a chunked request body (RFC 9112 section 7.1), fed the bytes as they arrive
// and without any I/O, so that it can be tested and fuzzed on its own. Chunk sizes are hex
// with an overflow check; chunk extensions are ignored; trailer fields are skipped (bounded
// in count and bytes). A body over `max_body_bytes` stops the decoder with 413, a malformed
// one with 400.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace expo {

struct HttpChunkedLimits {
  uint64_t max_body_bytes = uint64_t(32) << 20;
  size_t max_line_bytes = 4096;         // a chunk-size line with its extensions, or a trailer
  size_t max_trailer_bytes = 64 << 10;  // all trailer lines together
  size_t max_trailer_fields = 100;
};

class HttpChunkedDecoder {
 public:
  explicit HttpChunkedDecoder(HttpChunkedLimits limits = {}) : limits_(limits) {}

  // Decodes what it can of `input`, appending chunk data to `body`, and returns how many bytes
  // of `input` it consumed. Bytes it did not consume (a line not yet complete) must be given
  // again, with more after them, in the next call. Consumes nothing once done() or failed().
  size_t feed(std::string_view input, std::string& body);

  bool done() const { return state_ == State::kDone; }
  bool failed() const { return status_ != 0; }
  int status() const { return status_; }  // 0, 400 or 413
  const std::string& message() const { return message_; }
  uint64_t body_bytes() const { return total_; }  // announced by the size lines so far

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  size_t fail(int status, std::string message, size_t consumed);

  HttpChunkedLimits limits_;
  State state_ = State::kSize;
  uint64_t chunk_left_ = 0;  // bytes of the current chunk still to come
  uint64_t total_ = 0;       // decoded body bytes so far
  size_t trailer_bytes_ = 0;
  size_t trailer_fields_ = 0;
  size_t chunks_ = 0;
  int status_ = 0;
  std::string message_;
};

}  // namespace expo
