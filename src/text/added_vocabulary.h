#pragma once
// tokenizer.json "added_tokens": tokens matched in the text before the model runs (special
// tokens such as <|eot_id|>, and user tokens), with the crate's flags: lstrip/rstrip absorb the
// whitespace beside a match, single_word refuses a match inside a word, normalized tokens are
// matched in the normalized text (the others in the raw text), and special ones are skipped by
// decode(skip_special_tokens). Matching is leftmost-longest, like the crate's Aho-Corasick.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace expo::text {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool single_word = false;
  std::string match_text;  // what is searched for: content, or its normalized form
};

// A stretch of text: an added token (id >= 0) or text between them (id -1).
struct Section {
  size_t begin, end;
  int32_t id;
};

class AddedVocabulary {
 public:
  // `tokens` carry their final ids and match_text; split_special_tokens leaves special tokens
  // unmatched (tokenizer_config.json "split_special_tokens").
  void build(std::vector<AddedToken> tokens, bool split_special_tokens);

  // Splits `text` at the tokens that match raw text (normalized == false) or normalized text.
  void split(std::string_view text, bool normalized, std::vector<Section>& out) const;

  const AddedToken* by_id(int32_t id) const;
  std::optional<int32_t> by_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  struct Trie {
    std::unordered_map<uint64_t, int32_t> edges;  // (node << 8 | byte) -> child
    std::vector<int32_t> token_at;                // node -> index in tokens_, or -1
    bool first_byte[256] = {};
    bool empty() const { return token_at.size() <= 1; }
    void add(std::string_view s, int32_t token);
    // Longest token starting at text[i]: (end, token index) or token -1.
    std::pair<size_t, int32_t> longest(std::string_view text, size_t i) const;
  };
  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, int32_t> by_content_;
  Trie raw_, normalized_;
};

}  // namespace expo::text
