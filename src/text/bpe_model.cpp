#include "text/bpe_model.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "text/unicode_text.h"

namespace expo::text {

namespace {

uint64_t hash_bytes(std::string_view s) {
  // 64-bit multiply-xorshift over 8-byte words; good enough for token strings.
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xFF51AFD7ED558CCDull);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  h = (h ^ tail) * 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 32;
  return h;
}

uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  x *= 0xC4CEB9FE1A85EC53ull;
  x ^= x >> 33;
  return x;
}

// Ids far above the number of tokens would make the id-indexed arrays huge; real vocabularies
// are dense.
constexpr int64_t kMaxId = (int64_t{1} << 28);
constexpr int64_t kIdSlack = int64_t{1} << 20;  // ids allowed past the entry count

}  // namespace

// --- TokenTable ------------------------------------------------------------------------------

void TokenTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap > slots_.size()) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(cap, Slot{});
    for (const auto& s : old)
      if (s.id >= 0) {
        size_t i = hash_bytes(by_id_[s.id]) & (slots_.size() - 1);
        while (slots_[i].id >= 0) i = (i + 1) & (slots_.size() - 1);
        slots_[i] = s;
      }
  }
}

void TokenTable::grow() { reserve(std::max<size_t>(count_ + 1, slots_.size())); }

std::optional<int32_t> TokenTable::find(std::string_view token) const {
  if (slots_.empty()) return std::nullopt;
  const uint64_t h = hash_bytes(token);
  const uint32_t tag = static_cast<uint32_t>(h >> 32);
  size_t i = h & (slots_.size() - 1);
  while (slots_[i].id >= 0) {
    const Slot& slot = slots_[i];
    if (slot.hash == tag && slot.size == token.size() &&
        std::memcmp(slot.data, token.data(), token.size()) == 0)
      return slot.id;
    i = (i + 1) & (slots_.size() - 1);
  }
  return std::nullopt;
}

const std::string_view* TokenTable::token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= by_id_.size() || !present_[id]) return nullptr;
  return &by_id_[id];
}

// The caller checks that `token` is not in the table yet (BpeModel::add_token does).
bool TokenTable::insert(std::string_view token, int32_t id) {
  if (id < 0) return false;
  if (static_cast<size_t>(id) < present_.size() && present_[id]) return false;
  if (token.size() > UINT32_MAX) return false;
  if ((count_ + 1) * 2 > slots_.size()) grow();
  // Copy the string into the arena.
  if (chunk_used_ + token.size() > chunk_size_) {
    chunk_size_ = std::max<size_t>(1 << 20, token.size());
    chunks_.push_back(std::make_unique<char[]>(chunk_size_));
    chunk_used_ = 0;
  }
  char* dst = chunks_.back().get() + chunk_used_;
  if (!token.empty()) std::memcpy(dst, token.data(), token.size());
  chunk_used_ += token.size();
  if (static_cast<size_t>(id) >= by_id_.size()) {
    by_id_.resize(static_cast<size_t>(id) + 1);
    present_.resize(static_cast<size_t>(id) + 1, false);
  }
  by_id_[id] = std::string_view(dst, token.size());
  present_[id] = true;
  const uint64_t h = hash_bytes(token);
  size_t i = h & (slots_.size() - 1);
  while (slots_[i].id >= 0) i = (i + 1) & (slots_.size() - 1);
  slots_[i] = Slot{dst, static_cast<uint32_t>(token.size()), static_cast<uint32_t>(h >> 32), id};
  ++count_;
  return true;
}

// --- BpeModel --------------------------------------------------------------------------------

std::string BpeModel::add_token(std::string_view token, int64_t id) {
  if (id < 0 || id >= kMaxId) return str("id ", id, " is outside [0, ", kMaxId, ")");
  if (id >= id_limit_)
    return str("id ", id, " is far beyond the vocabulary's ", id_limit_ - kIdSlack,
               " entries (expo refuses ids above the entry count + ", kIdSlack,
               ": real vocabularies number their tokens from 0, and sparse ids would cost memory "
               "for nothing)");
  if (const auto existing = vocab_.find(token))
    return str("appears twice (ids ", *existing, " and ", id, ")");
  if (vocab_.token(static_cast<int32_t>(id)))
    return str("id ", id, " is also given to '", *vocab_.token(static_cast<int32_t>(id)), "'");
  vocab_.insert(token, static_cast<int32_t>(id));
  return {};
}

const BpeModel::MergeSlot* BpeModel::find_merge(int32_t a, int32_t b) const {
  if (merges_.empty()) return nullptr;
  const uint64_t key =
      (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  size_t i = mix64(key) & (merges_.size() - 1);
  while (merges_[i].pair != kEmpty) {
    if (merges_[i].pair == key) return &merges_[i];
    i = (i + 1) & (merges_.size() - 1);
  }
  return nullptr;
}

std::string BpeModel::add_merge(std::string_view a, std::string_view b, uint32_t rank) {
  const auto a_id = vocab_.find(a);
  if (!a_id) return str("'", a, "' is not in model.vocab");
  const auto b_id = vocab_.find(b);
  if (!b_id) return str("'", b, "' is not in model.vocab");
  const size_t prefix = options_.continuing_subword_prefix.size();
  if (b.size() < prefix || b.substr(0, prefix) != options_.continuing_subword_prefix)
    return str("'", b, "' does not start with continuing_subword_prefix '",
               options_.continuing_subword_prefix, "'");
  scratch_.assign(a);
  scratch_.append(b.substr(prefix));
  const auto new_id = vocab_.find(scratch_);
  if (!new_id) return str("the merged token '", scratch_, "' is not in model.vocab");
  if ((merge_count_ + 1) * 4 > merges_.size() * 3) {
    std::vector<MergeSlot> old;
    old.swap(merges_);
    merges_.assign(std::max<size_t>(1024, old.size() * 2), MergeSlot{});
    for (const auto& s : old)
      if (s.pair != kEmpty) {
        size_t i = mix64(s.pair) & (merges_.size() - 1);
        while (merges_[i].pair != kEmpty) i = (i + 1) & (merges_.size() - 1);
        merges_[i] = s;
      }
  }
  const uint64_t key =
      (static_cast<uint64_t>(static_cast<uint32_t>(*a_id)) << 32) | static_cast<uint32_t>(*b_id);
  size_t i = mix64(key) & (merges_.size() - 1);
  while (merges_[i].pair != kEmpty && merges_[i].pair != key) i = (i + 1) & (merges_.size() - 1);
  // A pair listed twice keeps its last rank, as the crate's hash map does.
  if (merges_[i].pair == kEmpty) ++merge_count_;
  merges_[i] = MergeSlot{key, rank, *new_id};
  return {};
}

void BpeModel::reserve(size_t tokens, size_t merges) {
  vocab_.reserve(tokens);
  id_limit_ = static_cast<int64_t>(std::min<size_t>(tokens, kMaxId)) + kIdSlack;
  if (merge_count_ == 0) {
    size_t cap = 1024;
    while (cap < merges + merges / 2) cap <<= 1;
    merges_.assign(cap, MergeSlot{});
  }
}

void BpeModel::finish_loading() {
  if (options_.unk_token) unk_id_ = vocab_.find(*options_.unk_token);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const auto id = vocab_.find(name);
    byte_ids_[b] = id ? *id : -1;
  }
  scratch_.clear();
  scratch_.shrink_to_fit();
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges)
    if (const auto id = vocab_.find(word)) {
      out.push_back(*id);
      return;
    }
  if (word.size() >= kMaxCachedWord) {
    merge_word(word, out);
    return;
  }
  {
    std::shared_lock lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_word(word, out);
  std::unique_lock lock(cache_mutex_);
  if (cache_.size() < kCacheCapacity)
    cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + first, out.end()));
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    uint32_t len;  // bytes of the word it covers; 0 once merged into its left neighbour
  };
  struct Merge {
    uint32_t rank;
    int32_t pos;
    int32_t new_id;
    // std heap functions build a max-heap: "less" means later (higher rank, then position).
    bool operator<(const Merge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Merge> heap;
  thread_local std::string piece;
  symbols.clear();
  heap.clear();

  const auto add = [&](int32_t id, uint32_t len) {
    const int32_t n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back({id, n - 1, -1, len});
  };
  // A pending unknown stretch (id, byte length), fused with following unknowns if fuse_unk.
  bool unk = false;
  int32_t unk_id = -1;
  uint32_t unk_len = 0;
  const auto unknown_id = [&]() -> int32_t {
    if (!unk_id_)
      fail("BPE: unk_token '", *options_.unk_token,
           "' is needed for a character outside the vocabulary but is not in model.vocab");
    return *unk_id_;
  };

  size_t i = 0;
  while (i < word.size()) {
    const size_t start = i;
    i += utf8_length(static_cast<unsigned char>(word[i]));
    if (i > word.size()) i = word.size();
    const bool is_first = start == 0, is_last = i == word.size();
    const auto len = static_cast<uint32_t>(i - start);
    std::string_view s = word.substr(start, i - start);
    if ((!is_first && !options_.continuing_subword_prefix.empty()) ||
        (is_last && !options_.end_of_word_suffix.empty())) {
      piece.clear();
      if (!is_first) piece += options_.continuing_subword_prefix;
      piece += s;
      if (is_last) piece += options_.end_of_word_suffix;
      s = piece;
    }
    if (const auto id = vocab_.find(s)) {
      if (unk) {
        add(unk_id, unk_len);
        unk = false;
      }
      add(*id, len);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (unsigned char b : s) all &= byte_ids_[b] >= 0;
      if (all) {
        // The crate adds the byte tokens without flushing a pending unknown first.
        for (unsigned char b : s) add(byte_ids_[b], 1);
        continue;
      }
    }
    if (options_.unk_token) {
      if (unk && options_.fuse_unk) {
        unk_len += len;
      } else {
        if (unk) add(unk_id, unk_len);
        unk = true;
        unk_id = unknown_id();
        unk_len = len;
      }
    }
    // Without an unk_token an unknown character is dropped, as the crate does.
  }
  if (unk) add(unk_id, unk_len);

  for (size_t k = 0; k + 1 < symbols.size(); ++k)
    if (const MergeSlot* m = find_merge(symbols[k].id, symbols[k + 1].id))
      heap.push_back({m->rank, static_cast<int32_t>(k), m->new_id});
  std::make_heap(heap.begin(), heap.end());

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Merge top = heap.back();
    heap.pop_back();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const int32_t next_pos = cur.next;
    const Symbol right = symbols[next_pos];
    // Skip stale entries: the pair at this position changed since it was queued.
    const MergeSlot* m = find_merge(cur.id, right.id);
    if (!m || m->new_id != top.new_id) continue;
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (cur.prev >= 0)
      if (const MergeSlot* p = find_merge(symbols[cur.prev].id, cur.id)) {
        heap.push_back({p->rank, cur.prev, p->new_id});
        std::push_heap(heap.begin(), heap.end());
      }
    if (cur.next >= 0)
      if (const MergeSlot* n = find_merge(cur.id, symbols[cur.next].id)) {
        heap.push_back({n->rank, top.pos, n->new_id});
        std::push_heap(heap.begin(), heap.end());
      }
  }
  for (const auto& s : symbols)
    if (s.len != 0) out.push_back(s.id);
}

}  // namespace expo::text
