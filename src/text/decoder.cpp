#include "text/decoder.h"

#include "text/normalizer.h"
#include "text/pre_tokenizer.h"
#include "text/regex.h"
#include "text/unicode_text.h"

namespace expo::text {

namespace {

std::vector<char32_t> code_points(const std::string& s) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) out.push_back(next_code_point(s, i));
  return out;
}

std::string from_code_points(const std::vector<char32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) append_utf8(out, cps[i]);
  return out;
}

// GPT-2 bytes: each token's characters map back to bytes (a token with a character outside
// the table keeps its own UTF-8 bytes); the bytes of all tokens become one string, with
// U+FFFD for ill-formed UTF-8.
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      const size_t mark = bytes.size();
      bool mapped = true;
      for (size_t i = 0; i < t.size() && mapped;) {
        const int b = byte_level_byte(next_code_point(t, i));
        if (b < 0)
          mapped = false;
        else
          bytes += static_cast<char>(b);
      }
      if (!mapped) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Regex regex, std::string content)
      : regex_(std::move(regex)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = replace_all(regex_, t, content_);
  }

 private:
  Regex regex_;
  std::string content_;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// <0xNN> tokens become bytes; a run of them that is not valid UTF-8 becomes one U+FFFD per
// byte (the crate's rule, stricter than a lossy conversion).
class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    size_t pending_count = 0;
    const auto flush = [&] {
      if (pending_count == 0) return;
      if (find_invalid_utf8(pending) == std::string::npos) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending_count; ++i) out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
      pending_count = 0;
    };
    for (auto& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        // Rust's u8::from_str_radix(.., 16) on the two characters (it also takes "+F").
        const int hi = hex_value(t[3]), lo = hex_value(t[4]);
        if (hi >= 0 && lo >= 0)
          byte = hi * 16 + lo;
        else if (t[3] == '+' && lo >= 0)
          byte = lo;
      }
      if (byte >= 0) {
        pending += static_cast<char>(byte);
        ++pending_count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      const auto cps = code_points(t);
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < cps.size() && cps[i] == content_; ++i) start_cut = i + 1;
      size_t stop_cut = cps.size();
      for (size_t i = 0; i < stop_ && i < cps.size(); ++i) {
        const size_t index = cps.size() - i - 1;
        if (cps[index] != content_) break;
        stop_cut = index;
      }
      t = start_cut < stop_cut ? from_code_points(cps, start_cut, stop_cut) : std::string();
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool prepends)
      : replacement_(replacement), prepends_(prepends) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t k = 0; k < tokens.size(); ++k) {
      std::string out;
      const std::string& t = tokens[k];
      for (size_t i = 0; i < t.size();) {
        const char32_t c = next_code_point(t, i);
        if (c != replacement_)
          append_utf8(out, c);
        else if (k != 0 || !prepends_)
          out += ' ';  // the first token loses its replacements
      }
      tokens[k] = std::move(out);
    }
  }

 private:
  char32_t replacement_;
  bool prepends_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& s : steps_) s->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

char32_t one_char(const JsonReader& reader, const Json& j, const std::string& path,
                  std::string_view key) {
  const std::string s = reader.get_string(j, path, key);
  size_t k = 0;
  if (s.empty() || find_invalid_utf8(s) != std::string::npos)
    reader.error(JsonReader::child(path, key), "must be exactly one character");
  const char32_t c = next_code_point(s, k);
  if (k != s.size()) reader.error(JsonReader::child(path, key), "must be exactly one character");
  return c;
}

}  // namespace

std::unique_ptr<Decoder> parse_decoder(const JsonReader& reader, const Json& j,
                                       const std::string& path) {
  if (j.is_null()) return nullptr;
  const std::string type = reader.type(j, path);
  if (type == "ByteLevel") {
    reader.allow_only(j, path, {"type", "add_prefix_space", "trim_offsets", "use_regex"});
    return std::make_unique<ByteLevelDecoder>();
  }
  if (type == "Replace") {
    reader.allow_only(j, path, {"type", "pattern", "content"});
    Regex regex =
        parse_pattern(reader, reader.get(j, path, "pattern"), JsonReader::child(path, "pattern"));
    return std::make_unique<ReplaceDecoder>(std::move(regex),
                                            reader.get_string(j, path, "content"));
  }
  if (type == "ByteFallback") {
    reader.allow_only(j, path, {"type"});
    return std::make_unique<ByteFallbackDecoder>();
  }
  if (type == "Fuse") {
    reader.allow_only(j, path, {"type"});
    return std::make_unique<FuseDecoder>();
  }
  if (type == "Strip") {
    reader.allow_only(j, path, {"type", "content", "start", "stop"});
    return std::make_unique<StripDecoder>(one_char(reader, j, path, "content"),
                                          reader.get_int(j, path, "start", 0, 1 << 20),
                                          reader.get_int(j, path, "stop", 0, 1 << 20));
  }
  if (type == "Metaspace") {
    reader.allow_only(
        j, path, {"type", "replacement", "prepend_scheme", "split", "add_prefix_space", "str_rep"});
    std::string scheme = reader.opt_string(j, path, "prepend_scheme").value_or("always");
    if (scheme != "always" && scheme != "first" && scheme != "never")
      reader.error(JsonReader::child(path, "prepend_scheme"),
                   "unknown prepend_scheme '" + scheme + "' (always, first, never)");
    if (j.contains("add_prefix_space") && !reader.get_bool(j, path, "add_prefix_space")) {
      if (scheme != "never")
        reader.error(JsonReader::child(path, "add_prefix_space"),
                     "add_prefix_space false does not match prepend_scheme (the crate refuses "
                     "this too)");
    }
    return std::make_unique<MetaspaceDecoder>(one_char(reader, j, path, "replacement"),
                                              scheme != "never");
  }
  if (type == "Sequence") {
    reader.allow_only(j, path, {"type", "decoders"});
    const Json& list = reader.get_array(j, path, "decoders");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string p = JsonReader::index(JsonReader::child(path, "decoders"), i);
      auto step = parse_decoder(reader, list[i], p);
      if (!step) reader.error(p, "a Sequence step cannot be null");
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  reader.error(JsonReader::child(path, "type"),
               "decoder type '" + type +
                   "' is not supported (expo supports ByteLevel, Replace, ByteFallback, Fuse, "
                   "Strip, Metaspace, Sequence)");
}

}  // namespace expo::text
