#pragma once
// The BPE model of tokenizer.json ("model": {"type": "BPE"}): byte-level vocabularies (GPT-2,
// Llama-3, Qwen) and SentencePiece-style ones (Llama-2, Mistral, Gemma: byte_fallback with
// <0xNN> tokens, fuse_unk). Merges are ranked pairs of token ids in an open-addressing table;
// a word is merged with a min-heap of (rank, position) over a linked list of symbols, the
// crate's exact order, and results for words under 256 bytes are cached.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace expo::text {

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

// token string <-> id, strings kept in one arena.
class TokenTable {
 public:
  // False when the id is already taken by another string (or the string by another id).
  bool insert(std::string_view token, int32_t id);
  std::optional<int32_t> find(std::string_view token) const;
  const std::string_view* token(int32_t id) const;  // nullptr when the id has no token
  size_t size() const { return count_; }
  int32_t max_id() const { return static_cast<int32_t>(by_id_.size()) - 1; }
  void reserve(size_t n);

 private:
  struct Slot {  // the string's location is kept here to spare a lookup in by_id_
    const char* data = nullptr;
    uint32_t size = 0;
    uint32_t hash = 0;
    int32_t id = -1;
  };
  void grow();
  std::vector<Slot> slots_;
  std::vector<std::string_view> by_id_;  // views into chunks_
  std::vector<bool> present_;
  std::vector<std::unique_ptr<char[]>> chunks_;
  size_t chunk_used_ = 0, chunk_size_ = 0;
  size_t count_ = 0;
};

class BpeModel {
 public:
  explicit BpeModel(BpeOptions options) : options_(std::move(options)) {}

  // Loading. Each returns an error message, or an empty string when the entry was accepted.
  std::string add_token(std::string_view token, int64_t id);
  std::string add_merge(std::string_view a, std::string_view b, uint32_t rank);
  void finish_loading();  // resolves unk and byte-fallback ids
  // Sizes the tables for `tokens` vocabulary entries and `merges` merges, and from then on refuses
  // ids above tokens + 2^20: real vocabularies number their tokens densely from 0, and a hostile
  // {"a": 268435455} in a 100-byte file would otherwise cost gigabytes of id table.
  void reserve(size_t tokens, size_t merges);

  // Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  const TokenTable& vocab() const { return vocab_; }
  const BpeOptions& options() const { return options_; }
  size_t merge_count() const { return merge_count_; }

 private:
  struct MergeSlot {
    uint64_t pair = kEmpty;
    uint32_t rank = 0;
    int32_t new_id = -1;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  const MergeSlot* find_merge(int32_t a, int32_t b) const;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  BpeOptions options_;
  TokenTable vocab_;
  std::vector<MergeSlot> merges_;
  size_t merge_count_ = 0;
  int64_t id_limit_ = INT64_MAX;  // set by reserve()
  std::optional<int32_t> unk_id_;
  int32_t byte_ids_[256];
  std::string scratch_;

  // Word cache (the crate keeps one too): words under kMaxCachedWord bytes, up to
  // kCacheCapacity entries, then no more inserts.
  static constexpr size_t kMaxCachedWord = 256;
  static constexpr size_t kCacheCapacity = 1 << 17;
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace expo::text
