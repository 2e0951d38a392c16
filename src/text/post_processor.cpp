#include "text/post_processor.h"

#include <map>

namespace expo::text {

namespace {

struct TemplatePiece {
  bool is_sequence;
  std::string sequence_or_token;  // "A"/"B", or the special token's template id
};

class TemplateProcessor : public PostProcessor {
 public:
  // Resolved single template: for each piece, the ids to add (nullopt: the sequence itself).
  explicit TemplateProcessor(std::vector<std::optional<std::vector<int32_t>>> single)
      : single_(std::move(single)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const auto& piece : single_) {
      if (!piece)
        out.insert(out.end(), ids.begin(), ids.end());
      else if (add_special_tokens)
        out.insert(out.end(), piece->begin(), piece->end());
    }
    ids = std::move(out);
  }

 private:
  std::vector<std::optional<std::vector<int32_t>>> single_;
};

class NoOpProcessor : public PostProcessor {
 public:
  void process(std::vector<int32_t>&, bool) const override {}
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
      : steps_(std::move(steps)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    for (const auto& s : steps_) s->process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

// One template piece: {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<s>",
// "type_id": 0}}, or the string forms "$A", "$B:1", "<s>:0".
TemplatePiece parse_piece(const JsonReader& reader, const Json& j, const std::string& path) {
  if (j.is_string()) {
    std::string s = j.get<std::string>();
    const size_t colon = s.rfind(':');
    if (colon != std::string::npos) {
      const std::string type_id = s.substr(colon + 1);
      if (type_id.empty() || type_id.find_first_not_of("0123456789") != std::string::npos)
        reader.error(path, "bad template piece '" + s + "'");
      s = s.substr(0, colon);
    }
    if (!s.empty() && s[0] == '$') {
      const std::string rest = s.substr(1);
      if (rest.empty() || rest == "A" || rest == "a") return {true, "A"};
      if (rest == "B" || rest == "b") return {true, "B"};
      if (rest.find_first_not_of("0123456789") == std::string::npos) return {true, "A"};
      reader.error(path, "bad template piece '" + j.get<std::string>() + "'");
    }
    return {false, s};
  }
  reader.expect_object(j, path);
  if (j.size() != 1) reader.error(path, "expected one of Sequence or SpecialToken");
  if (j.contains("Sequence")) {
    const std::string p = JsonReader::child(path, "Sequence");
    const Json& seq = j.at("Sequence");
    reader.allow_only(seq, p, {"id", "type_id"});
    const std::string id = reader.get_string(seq, p, "id");
    if (id != "A" && id != "B") reader.error(JsonReader::child(p, "id"), "must be A or B");
    reader.get_int(seq, p, "type_id", 0, UINT32_MAX, 0);
    return {true, id};
  }
  if (j.contains("SpecialToken")) {
    const std::string p = JsonReader::child(path, "SpecialToken");
    const Json& tok = j.at("SpecialToken");
    reader.allow_only(tok, p, {"id", "type_id"});
    reader.get_int(tok, p, "type_id", 0, UINT32_MAX, 0);
    return {false, reader.get_string(tok, p, "id")};
  }
  reader.error(path, "expected one of Sequence or SpecialToken, found " + json_brief(j));
}

}  // namespace

std::unique_ptr<PostProcessor> make_template(std::optional<int32_t> bos,
                                             std::optional<int32_t> eos) {
  std::vector<std::optional<std::vector<int32_t>>> single;
  if (bos) single.push_back(std::vector<int32_t>{*bos});
  single.push_back(std::nullopt);
  if (eos) single.push_back(std::vector<int32_t>{*eos});
  return std::make_unique<TemplateProcessor>(std::move(single));
}

std::unique_ptr<PostProcessor> parse_post_processor(const JsonReader& reader, const Json& j,
                                                    const std::string& path,
                                                    const std::function<bool(int64_t)>& id_exists) {
  if (j.is_null()) return nullptr;
  const std::string type = reader.type(j, path);
  if (type == "TemplateProcessing") {
    reader.allow_only(j, path, {"type", "single", "pair", "special_tokens"});
    // special_tokens: {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}
    const std::string sp = JsonReader::child(path, "special_tokens");
    const Json& specials = reader.get(j, path, "special_tokens");
    reader.expect_object(specials, sp);
    std::map<std::string, std::vector<int32_t>> ids_of;
    for (const auto& [name, value] : specials.items()) {
      const std::string p = JsonReader::child(sp, name);
      reader.allow_only(value, p, {"id", "ids", "tokens"});
      if (reader.get_string(value, p, "id") != name)
        reader.error(JsonReader::child(p, "id"), "differs from its key '" + name + "'");
      const Json& ids = reader.get_array(value, p, "ids");
      const Json& tokens = reader.get_array(value, p, "tokens");
      if (ids.size() != tokens.size()) reader.error(p, "ids and tokens have different lengths");
      std::vector<int32_t> resolved;
      for (size_t i = 0; i < ids.size(); ++i) {
        const std::string ip = JsonReader::index(JsonReader::child(p, "ids"), i);
        if (!ids[i].is_number_integer() || ids[i].get<int64_t>() < 0 ||
            !id_exists(ids[i].get<int64_t>()))
          reader.error(ip, "id " + json_brief(ids[i]) + " is not in the vocabulary");
        resolved.push_back(static_cast<int32_t>(ids[i].get<int64_t>()));
      }
      ids_of[name] = std::move(resolved);
    }
    const auto read_template = [&](std::string_view key, bool single) {
      std::vector<std::optional<std::vector<int32_t>>> out;
      const std::string tp = JsonReader::child(path, key);
      const Json& t = reader.get(j, path, key);
      std::vector<Json> pieces;
      if (t.is_string()) {  // "[CLS] $A [SEP]"
        std::string s = t.get<std::string>(), word;
        for (char c : s + " ")
          if (c == ' ') {
            if (!word.empty()) pieces.push_back(word);
            word.clear();
          } else {
            word += c;
          }
      } else {
        reader.expect_array(t, tp);
        pieces.assign(t.begin(), t.end());
      }
      for (size_t i = 0; i < pieces.size(); ++i) {
        const std::string pp = JsonReader::index(tp, i);
        const TemplatePiece piece = parse_piece(reader, pieces[i], pp);
        if (piece.is_sequence) {
          if (single && piece.sequence_or_token == "B")
            reader.error(pp, "the single-sequence template cannot use $B");
          out.push_back(std::nullopt);
        } else {
          const auto it = ids_of.find(piece.sequence_or_token);
          if (it == ids_of.end())
            reader.error(pp, "special token '" + piece.sequence_or_token + "' is not in " + sp);
          out.push_back(it->second);
        }
      }
      return out;
    };
    auto single = read_template("single", true);
    if (j.contains("pair")) read_template("pair", false);
    return std::make_unique<TemplateProcessor>(std::move(single));
  }
  if (type == "ByteLevel") {
    reader.allow_only(j, path, {"type", "add_prefix_space", "trim_offsets", "use_regex"});
    return std::make_unique<NoOpProcessor>();
  }
  if (type == "Sequence") {
    reader.allow_only(j, path, {"type", "processors"});
    const Json& list = reader.get_array(j, path, "processors");
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string p = JsonReader::index(JsonReader::child(path, "processors"), i);
      auto step = parse_post_processor(reader, list[i], p, id_exists);
      if (!step) reader.error(p, "a Sequence step cannot be null");
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  reader.error(JsonReader::child(path, "type"),
               "post-processor type '" + type +
                   "' is not supported (expo supports TemplateProcessing, ByteLevel, Sequence)");
}

}  // namespace expo::text
