#include "serve/answer_text.h"

#include <algorithm>

#include "core/utf8.h"

namespace expo {

namespace {

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// The length of `text` without an incomplete UTF-8 sequence at its end.
size_t complete_utf8(const std::string& text, size_t end) {
  size_t start = end;
  while (start > 0 && end - start < 4 &&
         is_continuation(static_cast<unsigned char>(text[start - 1])))
    --start;
  if (start == 0) return end;
  const unsigned char lead = static_cast<unsigned char>(text[start - 1]);
  if (lead < 0xC0) return end;  // ASCII (or a stray continuation run): nothing pending
  return end - (start - 1) >= utf8_length(lead) ? end : start - 1;
}

}  // namespace

AnswerText::AnswerText(std::vector<std::string> stop) : stop_(std::move(stop)) {
  for (const auto& s : stop_) max_stop_ = std::max(max_stop_, s.size());
}

bool AnswerText::update(std::string text) {
  text_ = std::move(text);
  if (cut_ != std::string::npos || stop_.empty()) return stopped();
  const size_t from = std::min(searched_, text_.size());
  for (const auto& s : stop_) cut_ = std::min(cut_, text_.find(s, from));
  // A character still incomplete decodes differently once its last byte arrives, so the last
  // few bytes are searched again next time.
  searched_ = text_.size() > max_stop_ + 8 ? text_.size() - max_stop_ - 8 : 0;
  return stopped();
}

size_t AnswerText::safe_end() const {
  if (cut_ != std::string::npos) return cut_;
  size_t end = text_.size();
  // A tail that could be the start of a stop string.
  for (const auto& s : stop_)
    for (size_t k = std::min(s.size() - 1, text_.size()); k > 0; --k)
      if (text_.compare(text_.size() - k, k, s, 0, k) == 0) {
        end = std::min(end, text_.size() - k);
        break;
      }
  for (;;) {
    const size_t before = end;
    end = complete_utf8(text_, end);
    while (end >= 3 && text_.compare(end - 3, 3, "\xEF\xBF\xBD") == 0) end -= 3;
    while (end > 0 && text_[end - 1] == ' ') --end;
    if (end == before) break;
  }
  return end;
}

std::string AnswerText::take_released() {
  const size_t end = safe_end();
  if (end <= released_.size() || text_.compare(0, released_.size(), released_) != 0) return {};
  std::string delta = text_.substr(released_.size(), end - released_.size());
  released_ += delta;
  return delta;
}

std::string AnswerText::finish() {
  if (cut_ != std::string::npos) text_.resize(cut_);
  if (text_.size() < released_.size() || text_.compare(0, released_.size(), released_) != 0)
    return {};  // the decoder rewrote released text; nothing better can be sent now
  std::string rest = text_.substr(released_.size());
  released_ = text_;
  return rest;
}

}  // namespace expo
