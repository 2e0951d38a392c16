#include "text/added_vocabulary.h"

#include "text/unicode_text.h"

namespace expo::text {

namespace {

// Code point ending at byte `end` (exclusive) of valid UTF-8 text.
char32_t code_point_before(std::string_view s, size_t end) {
  size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  return next_code_point(s, b);
}

char32_t code_point_at(std::string_view s, size_t i) { return next_code_point(s, i); }

}  // namespace

void AddedVocabulary::Trie::add(std::string_view s, int32_t token) {
  if (token_at.empty()) token_at.push_back(-1);
  int32_t node = 0;
  for (unsigned char b : s) {
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | b;
    auto it = edges.find(key);
    if (it == edges.end()) {
      it = edges.emplace(key, static_cast<int32_t>(token_at.size())).first;
      token_at.push_back(-1);
    }
    node = it->second;
  }
  token_at[node] = token;  // a later token with the same text wins, as in the crate's map
  first_byte[static_cast<unsigned char>(s[0])] = true;
}

std::pair<size_t, int32_t> AddedVocabulary::Trie::longest(std::string_view text, size_t i) const {
  std::pair<size_t, int32_t> best{i, -1};
  int32_t node = 0;
  for (size_t k = i; k < text.size(); ++k) {
    const auto it =
        edges.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[k]));
    if (it == edges.end()) break;
    node = it->second;
    if (token_at[node] >= 0) best = {k + 1, token_at[node]};
  }
  return best;
}

void AddedVocabulary::build(std::vector<AddedToken> tokens, bool split_special_tokens) {
  tokens_ = std::move(tokens);
  by_id_.clear();
  by_content_.clear();
  raw_ = Trie{};
  normalized_ = Trie{};
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    by_id_[t.id] = i;
    by_content_[t.content] = t.id;
    if (t.content.empty() || t.match_text.empty()) continue;
    if (split_special_tokens && t.special) continue;
    (t.normalized ? normalized_ : raw_).add(t.match_text, static_cast<int32_t>(i));
  }
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::by_content(std::string_view content) const {
  const auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

void AddedVocabulary::split(std::string_view text, bool normalized,
                            std::vector<Section>& out) const {
  const Trie& trie = normalized ? normalized_ : raw_;
  if (trie.empty()) {
    out.push_back({0, text.size(), -1});
    return;
  }
  size_t start_offset = 0;  // end of the last emitted section
  size_t i = 0;
  while (i < text.size()) {
    if (!trie.first_byte[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    const auto [match_end, index] = trie.longest(text, i);
    if (index < 0) {
      ++i;
      continue;
    }
    const AddedToken& token = tokens_[index];
    size_t start = i, stop = match_end;
    i = match_end;  // the next search starts after this match, kept or not
    if (token.single_word) {
      const bool space_before = start == 0 || !is_word_char(code_point_before(text, start));
      const bool space_after = stop == text.size() || !is_word_char(code_point_at(text, stop));
      if (!space_before || !space_after) continue;
    }
    if (start < start_offset) continue;  // inside whitespace an rstrip token already took
    if (token.lstrip) {
      size_t s = start;
      while (s > start_offset && is_white_space(code_point_before(text, s))) {
        do --s;
        while (s > 0 && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80);
      }
      start = s;
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t k = stop;
        if (!is_white_space(next_code_point(text, k))) break;
        stop = k;
      }
      i = std::max(i, stop);
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, token.id});
    start_offset = stop;
  }
  if (start_offset != text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace expo::text
