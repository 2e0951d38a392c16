#include "text/pre_tokenizer.h"

#include <array>
#include <optional>

#include "text/normalizer.h"
#include "text/regex.h"
#include "text/unicode_text.h"

namespace expo::text {

namespace {

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Span {
  size_t begin, end;
  bool flag;  // is a match (before the behaviour), or "remove" (after)
};

// The crate's NormalizedString::split: matches cover the text, then the behaviour decides which
// spans are kept and how delimiters attach to their neighbours.
void split_by(const Piece& piece, std::vector<Span> matches, Behavior behavior,
              std::vector<Piece>& out) {
  std::vector<Span> splits;
  switch (behavior) {
    case Behavior::kIsolated:
      for (auto& m : matches) splits.push_back({m.begin, m.end, false});
      break;
    case Behavior::kRemoved:
      splits = std::move(matches);
      break;
    case Behavior::kContiguous: {
      bool previous = false;
      for (const auto& m : matches) {
        if (m.flag == previous && !splits.empty())
          splits.back().end = m.end;
        else
          splits.push_back({m.begin, m.end, false});
        previous = m.flag;
      }
      break;
    }
    case Behavior::kMergedWithPrevious: {
      bool previous = false;
      for (const auto& m : matches) {
        if (m.flag && !previous && !splits.empty())
          splits.back().end = m.end;
        else
          splits.push_back({m.begin, m.end, false});
        previous = m.flag;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool previous = false;
      for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
        if (it->flag && !previous && !splits.empty())
          splits.back().begin = it->begin;
        else
          splits.push_back({it->begin, it->end, false});
        previous = it->flag;
      }
      std::reverse(splits.begin(), splits.end());
      break;
    }
  }
  for (const auto& s : splits) {
    if (s.flag || s.end == s.begin) continue;
    out.push_back(
        {piece.text.substr(s.begin, s.end - s.begin), piece.at_input_start && s.begin == 0});
  }
}

std::vector<Span> regex_matches(const Regex& regex, const std::string& text, bool invert) {
  std::vector<Span> spans;
  size_t prev = 0;
  regex.for_each_match(text, [&](size_t b, size_t e) {
    if (prev != b) spans.push_back({prev, b, invert});
    spans.push_back({b, e, !invert});
    prev = e;
  });
  if (prev != text.size()) spans.push_back({prev, text.size(), invert});
  return spans;
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Regex regex, Behavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 4);
    for (const auto& p : pieces)
      split_by(p, regex_matches(regex_, p.text, invert_), behavior_, out);
    pieces = std::move(out);
  }

 private:
  Regex regex_;
  Behavior behavior_;
  bool invert_;
};

struct ByteLevelTable {
  std::array<std::string, 256> chars;
  std::array<int16_t, 324> bytes;  // code points 0..323 -> byte
  ByteLevelTable() {
    bytes.fill(-1);
    const auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t c = printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      append_utf8(chars[b], c);
      bytes[c] = static_cast<int16_t>(b);
    }
  }
};

const ByteLevelTable& byte_level_table() {
  static const ByteLevelTable table;
  return table;
}

constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space),
        regex_(use_regex ? std::optional<Regex>(Regex::oniguruma(kGpt2Pattern, "ByteLevel"))
                         : std::nullopt) {}
  void set_add_prefix_space(bool v) { add_prefix_space_ = v; }
  bool add_prefix_space() const { return add_prefix_space_; }

  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_)
      for (auto& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text = " " + p.text;
    if (regex_) {
      std::vector<Piece> out;
      out.reserve(pieces.size() * 4);
      for (const auto& p : pieces)
        split_by(p, regex_matches(*regex_, p.text, false), Behavior::kIsolated, out);
      pieces = std::move(out);
    }
    const auto& table = byte_level_table();
    for (auto& p : pieces) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (unsigned char b : p.text) mapped += table.chars[b];
      p.text = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  std::optional<Regex> regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)),
        scheme_(scheme),
        split_(split),
        space_(Regex::literal(" ", "Metaspace")),
        replacement_regex_(Regex::literal(replacement_, "Metaspace")) {}

  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (auto& p : pieces) {
      p.text = replace_all(space_, p.text, replacement_);
      const bool starts = p.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways ||
                      (scheme_ == PrependScheme::kFirst && p.at_input_start)))
        p.text = replacement_ + p.text;
      if (split_) {
        // The crate splits on each replacement character, MergedWithNext.
        split_by(p, regex_matches(replacement_regex_, p.text, false), Behavior::kMergedWithNext,
                 out);
      } else {
        out.push_back(std::move(p));
      }
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  Regex space_, replacement_regex_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& step : steps_) step->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

Behavior parse_behavior(const JsonReader& reader, const Json& j, const std::string& path) {
  const std::string b = reader.get_string(j, path, "behavior");
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  reader.error(JsonReader::child(path, "behavior"),
               "unknown split behavior '" + b +
                   "' (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

}  // namespace

bool set_byte_level_prefix_space(PreTokenizer& p, bool add_prefix_space) {
  auto* byte_level = dynamic_cast<ByteLevelPreTokenizer*>(&p);
  if (byte_level) byte_level->set_add_prefix_space(add_prefix_space);
  return byte_level != nullptr;
}

const std::string& byte_level_char(unsigned char b) { return byte_level_table().chars[b]; }

int byte_level_byte(char32_t c) {
  return c < byte_level_table().bytes.size() ? byte_level_table().bytes[c] : -1;
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const JsonReader& reader, const Json& j,
                                                  const std::string& path) {
  if (j.is_null()) return nullptr;
  const std::string type = reader.type(j, path);
  if (type == "Split") {
    reader.allow_only(j, path, {"type", "pattern", "behavior", "invert"});
    Regex regex =
        parse_pattern(reader, reader.get(j, path, "pattern"), JsonReader::child(path, "pattern"));
    return std::make_unique<SplitPreTokenizer>(std::move(regex), parse_behavior(reader, j, path),
                                               reader.get_bool(j, path, "invert"));
  }
  if (type == "ByteLevel") {
    // trim_offsets only moves offsets, which expo does not report.
    reader.allow_only(j, path, {"type", "add_prefix_space", "trim_offsets", "use_regex"});
    return std::make_unique<ByteLevelPreTokenizer>(
        reader.get_bool(j, path, "add_prefix_space", true),
        reader.get_bool(j, path, "use_regex", true));
  }
  if (type == "Metaspace") {
    // str_rep is a serialization leftover of older versions of the crate (it is the
    // replacement as a string).
    reader.allow_only(
        j, path, {"type", "replacement", "prepend_scheme", "split", "add_prefix_space", "str_rep"});
    const std::string replacement = reader.get_string(j, path, "replacement");
    size_t k = 0;
    if (replacement.empty() || find_invalid_utf8(replacement) != std::string::npos ||
        (next_code_point(replacement, k), k != replacement.size()))
      reader.error(JsonReader::child(path, "replacement"), "must be exactly one character");
    PrependScheme scheme = PrependScheme::kAlways;
    if (auto s = reader.opt_string(j, path, "prepend_scheme")) {
      if (*s == "always")
        scheme = PrependScheme::kAlways;
      else if (*s == "first")
        scheme = PrependScheme::kFirst;
      else if (*s == "never")
        scheme = PrependScheme::kNever;
      else
        reader.error(JsonReader::child(path, "prepend_scheme"),
                     "unknown prepend_scheme '" + *s + "' (always, first, never)");
    }
    if (j.contains("add_prefix_space") && !reader.get_bool(j, path, "add_prefix_space")) {
      if (scheme != PrependScheme::kNever)
        reader.error(JsonReader::child(path, "add_prefix_space"),
                     "add_prefix_space false does not match prepend_scheme (the crate refuses "
                     "this too)");
    }
    return std::make_unique<MetaspacePreTokenizer>(replacement, scheme,
                                                   reader.get_bool(j, path, "split", true));
  }
  if (type == "Sequence") {
    reader.allow_only(j, path, {"type", "pretokenizers"});
    const Json& list = reader.get_array(j, path, "pretokenizers");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string p = JsonReader::index(JsonReader::child(path, "pretokenizers"), i);
      auto step = parse_pre_tokenizer(reader, list[i], p);
      if (!step) reader.error(p, "a Sequence step cannot be null");
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  reader.error(JsonReader::child(path, "type"),
               "pre-tokenizer type '" + type +
                   "' is not supported (expo supports Split, ByteLevel, Metaspace, Sequence)");
}

}  // namespace expo::text
