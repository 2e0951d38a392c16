#include "text/normalizer.h"

#include <vector>

#include "text/unicode_text.h"

namespace expo::text {

namespace {

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  void normalize(std::string& text) const override { text = normalize_unicode(text, form_); }

 private:
  NormalForm form_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Regex regex, std::string content)
      : regex_(std::move(regex)), content_(std::move(content)) {}
  void normalize(std::string& text) const override { text = replace_all(regex_, text, content_); }

 private:
  Regex regex_;
  std::string content_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text = prefix_ + text;  // the crate prepends to non-empty text only
  }

 private:
  std::string prefix_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& step : steps_) step->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::string replace_all(const Regex& regex, const std::string& text, const std::string& content) {
  std::string out;
  size_t last = 0;
  bool any = false;
  regex.for_each_match(text, [&](size_t b, size_t e) {
    if (!any) out.reserve(text.size() + 16);
    any = true;
    out.append(text, last, b - last);
    out += content;
    last = e;
  });
  if (!any) return text;
  out.append(text, last, std::string::npos);
  return out;
}

Regex parse_pattern(const JsonReader& reader, const Json& j, const std::string& path) {
  reader.allow_only(j, path, {"String", "Regex"});
  if (j.size() != 1) reader.error(path, "expected exactly one of String or Regex");
  if (j.contains("String")) {
    const std::string s = reader.get_string(j, path, "String");
    check_utf8(s, reader.where(JsonReader::child(path, "String")));
    return Regex::literal(s, reader.where(JsonReader::child(path, "String")));
  }
  const std::string r = reader.get_string(j, path, "Regex");
  return Regex::oniguruma(r, reader.where(JsonReader::child(path, "Regex")));
}

std::unique_ptr<Normalizer> parse_normalizer(const JsonReader& reader, const Json& j,
                                             const std::string& path) {
  if (j.is_null()) return nullptr;
  const std::string type = reader.type(j, path);
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    reader.allow_only(j, path, {"type"});
    const NormalForm form = type == "NFC"    ? NormalForm::kNfc
                            : type == "NFD"  ? NormalForm::kNfd
                            : type == "NFKC" ? NormalForm::kNfkc
                                             : NormalForm::kNfkd;
    return std::make_unique<UnicodeNormalizer>(form);
  }
  if (type == "Replace") {
    reader.allow_only(j, path, {"type", "pattern", "content"});
    Regex regex =
        parse_pattern(reader, reader.get(j, path, "pattern"), JsonReader::child(path, "pattern"));
    return std::make_unique<ReplaceNormalizer>(std::move(regex),
                                               reader.get_string(j, path, "content"));
  }
  if (type == "Prepend") {
    reader.allow_only(j, path, {"type", "prepend"});
    return std::make_unique<PrependNormalizer>(reader.get_string(j, path, "prepend"));
  }
  if (type == "Sequence") {
    reader.allow_only(j, path, {"type", "normalizers"});
    const Json& list = reader.get_array(j, path, "normalizers");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string p = JsonReader::index(JsonReader::child(path, "normalizers"), i);
      auto step = parse_normalizer(reader, list[i], p);
      if (!step) reader.error(p, "a Sequence step cannot be null");
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  reader.error(JsonReader::child(path, "type"),
               "normalizer type '" + type +
                   "' is not supported (expo supports NFC, NFD, NFKC, NFKD, Replace, Prepend, "
                   "Sequence)");
}

}  // namespace expo::text
