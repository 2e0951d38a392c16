#pragma once
// An answer's text while it is being generated: the engine decodes all of a sequence's tokens
// after each step and hands the text here, which says where a stop string ends the answer and
// which part of the text is final, so that a streaming client is sent nothing that could still
// change:
//   - no part of a stop string that may yet complete (text that could be the start of one is
//     held back until the next tokens show it is not);
//   - no incomplete UTF-8 character, and no trailing U+FFFD (a byte-level token may be the
//     first bytes of a character whose last byte comes with the next token);
//   - no trailing spaces (clean_up_tokenization_spaces turns "a ." into "a." once the "."
//     arrives).
// The concatenation of everything released equals the whole answer, as it would be answered
// without streaming, whenever decoding the tokens so far gives a prefix of the final text
// outside these held-back tails (true for the byte-level and SentencePiece decoders).
#include <cstddef>
#include <string>
#include <vector>

namespace expo {

class AnswerText {
 public:
  explicit AnswerText(std::vector<std::string> stop = {});

  // The decoded text of every token so far. Returns true when a stop string occurs: the
  // answer ends where it starts.
  bool update(std::string text);
  bool stopped() const { return cut_ != std::string::npos; }
  // What became final since the last call.
  std::string take_released();
  // The generation ended: the rest of the answer (cut before a stop string).
  std::string finish();
  // The whole answer: after finish(), the text cut before a stop string.
  const std::string& text() const { return text_; }

 private:
  size_t safe_end() const;

  std::vector<std::string> stop_;
  size_t max_stop_ = 0;
  std::string text_;
  size_t cut_ = std::string::npos;  // where the first stop string starts
  size_t searched_ = 0;             // text_ before this offset holds no stop string
  std::string released_;            // what take_released() returned so far
};

}  // namespace expo
