#include "http/http_chunked_decoder.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "http/http_request_head.h"

namespace expo {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

size_t HttpChunkedDecoder::fail(int status, std::string message, size_t consumed) {
  status_ = status;
  message_ = std::move(message);
  return consumed;
}

size_t HttpChunkedDecoder::feed(std::string_view input, std::string& body) {
  size_t pos = 0;
  while (!failed() && state_ != State::kDone && pos < input.size()) {
    if (state_ == State::kData) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_left_, input.size() - pos));
      body.append(input.data() + pos, n);
      pos += n;
      chunk_left_ -= n;
      if (chunk_left_ == 0) state_ = State::kDataEnd;
      continue;
    }
    if (state_ == State::kDataEnd) {  // the CRLF (or LF) after a chunk's data
      if (input[pos] == '\n') {
        pos += 1;
      } else if (input[pos] == '\r') {
        if (pos + 1 >= input.size()) return pos;  // wait for the LF
        if (input[pos + 1] != '\n')
          return fail(400, str("chunk ", chunks_, " of the request body is not followed by CRLF"),
                      pos);
        pos += 2;
      } else {
        return fail(
            400, str("chunk ", chunks_, " of the request body is longer than its size line says"),
            pos);
      }
      state_ = State::kSize;
      continue;
    }

    // A line: a chunk size (with extensions) or a trailer field.
    const size_t lf = input.find('\n', pos);
    if (lf == std::string_view::npos) {
      if (input.size() - pos > limits_.max_line_bytes)
        return fail(400,
                    state_ == State::kSize
                        ? str("a chunk-size line of the request body is longer than ",
                              limits_.max_line_bytes, " bytes")
                        : str("a trailer field of the request body is longer than ",
                              limits_.max_line_bytes, " bytes"),
                    pos);
      return pos;  // wait for the rest of the line
    }
    std::string_view line = input.substr(pos, lf - pos);
    if (line.size() > limits_.max_line_bytes + 1)
      return fail(400,
                  str("a line of the chunked request body is longer than ", limits_.max_line_bytes,
                      " bytes"),
                  pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos)
      return fail(400, "a line of the chunked request body has a CR without LF", pos);

    if (state_ == State::kTrailer) {
      trailer_bytes_ += lf + 1 - pos;
      pos = lf + 1;
      if (line.empty()) {
        state_ = State::kDone;
        break;
      }
      if (++trailer_fields_ > limits_.max_trailer_fields ||
          trailer_bytes_ > limits_.max_trailer_bytes)
        return fail(400,
                    str("the chunked request body has more than ", limits_.max_trailer_fields,
                        " trailer fields or ", limits_.max_trailer_bytes, " bytes of them"),
                    pos);
      continue;
    }

    // chunk-size [ BWS ";" extensions ]: hex digits, then nothing or (spaces and) a ';'.
    uint64_t size = 0;
    size_t i = 0;
    for (; i < line.size() && hex_value(line[i]) >= 0; ++i) {
      if (size > (std::numeric_limits<uint64_t>::max() >> 4))
        return fail(413,
                    str("chunk ", chunks_ + 1, " of the request body has a size over 2^64 bytes"),
                    pos);
      size = (size << 4) | static_cast<uint64_t>(hex_value(line[i]));
    }
    size_t rest = i;
    while (rest < line.size() && (line[rest] == ' ' || line[rest] == '\t')) ++rest;
    if (i == 0 || (rest < line.size() && line[rest] != ';'))
      return fail(400,
                  str("chunk ", chunks_ + 1, " of the request body has a bad size line `",
                      printable_excerpt(line, 40), "` (hex digits expected)"),
                  pos);
    pos = lf + 1;
    if (size == 0) {
      state_ = State::kTrailer;
      continue;
    }
    ++chunks_;
    if (size > limits_.max_body_bytes - total_)
      return fail(413,
                  str("the chunked request body is over the limit of ", limits_.max_body_bytes,
                      " bytes (chunk ", chunks_, " has ", size, " bytes after ", total_, ")"),
                  pos);
    total_ += size;
    chunk_left_ = size;
    state_ = State::kData;
  }
  return pos;
}

}  // namespace expo
