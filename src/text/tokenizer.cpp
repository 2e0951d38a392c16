#include "text/tokenizer.h"

#include <simdjson.h>

#include <fstream>
#include <sstream>
#include <unordered_set>

#include "core/error.h"
#include "core/json_reader.h"
#include "text/added_vocabulary.h"
#include "text/bpe_model.h"
#include "text/decoder.h"
#include "text/normalizer.h"
#include "text/post_processor.h"
#include "text/pre_tokenizer.h"
#include "text/unicode_text.h"

namespace expo {

namespace fs = std::filesystem;
using expo::Json;
using expo::JsonReader;

struct Tokenizer::Impl {
  fs::path folder;
  Json config = Json::object();
  std::unique_ptr<text::Normalizer> normalizer;
  std::unique_ptr<text::PreTokenizer> pre_tokenizer;
  std::unique_ptr<text::BpeModel> model;
  std::unique_ptr<text::PostProcessor> post_processor;
  std::unique_ptr<text::Decoder> decoder;
  text::AddedVocabulary added;
  bool clean_up_spaces = false;
  std::optional<std::string> bos, eos;
  size_t vocab_size = 0;
};

namespace {

// Small parts of tokenizer.json become nlohmann::json (convenient, strict checks); the vocab
// and merges, most of the file, are read straight from simdjson's DOM, which parses ten times
// faster.
Json to_json(simdjson::dom::element e) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::ARRAY: {
      Json a = Json::array();
      for (auto v : e.get_array()) a.push_back(to_json(v));
      return a;
    }
    case element_type::OBJECT: {
      Json o = Json::object();
      for (auto [k, v] : e.get_object()) o[std::string(k)] = to_json(v);
      return o;
    }
    case element_type::INT64:
      return Json(int64_t(e));
    case element_type::UINT64:
      return Json(uint64_t(e));
    case element_type::DOUBLE:
      return Json(double(e));
    case element_type::STRING:
      return Json(std::string(std::string_view(e)));
    case element_type::BOOL:
      return Json(bool(e));
    case element_type::NULL_VALUE:
      return Json(nullptr);
  }
  return Json(nullptr);
}

std::string element_brief(simdjson::dom::element e) { return json_brief(to_json(e)); }

Json read_optional_json(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Json();
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open for reading");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    Json j = Json::parse(ss.str());
    if (!j.is_object()) fail(path.string(), ": expected a JSON object at the top level");
    return j;
  } catch (const Json::parse_error& e) {
    fail(path.string(), ": not valid JSON: ", e.what());
  }
}

// A special token entry in tokenizer_config.json / special_tokens_map.json: "<s>" or
// {"content": "<s>", ...}; null stays empty.
std::optional<std::string> token_string(const Json& v, const std::string& where) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  fail(where, ": expected a token string or {\"content\": ...}, found ", json_brief(v));
}

void load_model(const JsonReader& reader, simdjson::dom::element model, text::BpeModel*& out,
                std::unique_ptr<text::BpeModel>& holder) {
  const std::string path = "model";
  if (model.type() != simdjson::dom::element_type::OBJECT)
    reader.error(path, "expected an object, found " + element_brief(model));
  // Everything but vocab and merges as nlohmann::json for the strict field checks.
  Json small = Json::object();
  simdjson::dom::element vocab, merges;
  bool has_vocab = false, has_merges = false;
  for (auto [key, value] : model.get_object()) {
    if (key == "vocab") {
      vocab = value;
      has_vocab = true;
    } else if (key == "merges") {
      merges = value;
      has_merges = true;
    } else {
      small[std::string(key)] = to_json(value);
    }
  }
  if (!small.contains("type")) reader.error("model.type", "missing (expo supports the BPE model)");
  const std::string type = reader.type(small, path);
  if (type != "BPE")
    reader.error("model.type", "model type '" + type +
                                   "' is not supported (expo supports BPE; WordPiece, Unigram "
                                   "and WordLevel are not implemented)");
  reader.allow_only(small, path,
                    {"type", "dropout", "unk_token", "continuing_subword_prefix",
                     "end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges"});
  if (small.contains("dropout") && !small["dropout"].is_null() &&
      !(small["dropout"].is_number() && small["dropout"].get<double>() == 0.0))
    reader.error("model.dropout", "BPE dropout " + json_brief(small["dropout"]) +
                                      " is random at encode time; expo supports null or 0");
  text::BpeOptions options;
  options.unk_token = reader.opt_string(small, path, "unk_token");
  options.continuing_subword_prefix =
      reader.opt_string(small, path, "continuing_subword_prefix").value_or("");
  options.end_of_word_suffix = reader.opt_string(small, path, "end_of_word_suffix").value_or("");
  options.fuse_unk = reader.get_bool(small, path, "fuse_unk", false);
  options.byte_fallback = reader.get_bool(small, path, "byte_fallback", false);
  options.ignore_merges = reader.get_bool(small, path, "ignore_merges", false);
  holder = std::make_unique<text::BpeModel>(options);
  out = holder.get();

  if (!has_vocab) reader.error("model.vocab", "missing");
  if (!has_merges) reader.error("model.merges", "missing");
  if (vocab.type() == simdjson::dom::element_type::OBJECT &&
      merges.type() == simdjson::dom::element_type::ARRAY)
    out->reserve(vocab.get_object().size(), merges.get_array().size());
  if (vocab.type() != simdjson::dom::element_type::OBJECT)
    reader.error("model.vocab", "expected an object {token: id}, found " + element_brief(vocab));
  for (auto [token, id] : vocab.get_object()) {
    int64_t value;
    if (id.get_int64().get(value) != simdjson::SUCCESS)
      reader.error(JsonReader::child("model.vocab", token),
                   "expected an integer id, found " + element_brief(id));
    const std::string problem = out->add_token(token, value);
    if (!problem.empty()) reader.error(JsonReader::child("model.vocab", token), problem);
  }

  if (merges.type() != simdjson::dom::element_type::ARRAY)
    reader.error("model.merges", "expected an array, found " + element_brief(merges));
  uint32_t rank = 0;
  size_t index = 0;
  for (auto m : merges.get_array()) {
    std::string_view a, b;
    if (m.type() == simdjson::dom::element_type::STRING) {
      // "a b": the legacy form; "#version" lines are skipped as in merges.txt.
      const std::string_view line = m.get_string().value();
      if (line.starts_with("#version")) {
        ++index;
        continue;
      }
      const size_t space = line.find(' ');
      if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos)
        reader.error(JsonReader::index("model.merges", index),
                     "expected two tokens separated by one space, found " + element_brief(m));
      a = line.substr(0, space);
      b = line.substr(space + 1);
    } else if (m.type() == simdjson::dom::element_type::ARRAY && m.get_array().size() == 2 &&
               m.at(0).type() == simdjson::dom::element_type::STRING &&
               m.at(1).type() == simdjson::dom::element_type::STRING) {
      a = m.at(0).get_string().value();
      b = m.at(1).get_string().value();
    } else {
      reader.error(JsonReader::index("model.merges", index),
                   "expected \"a b\" or [\"a\", \"b\"], found " + element_brief(m));
    }
    const std::string problem = out->add_merge(a, b, rank++);
    if (!problem.empty()) reader.error(JsonReader::index("model.merges", index), problem);
    ++index;
  }
  out->finish_loading();
}

// The crate's AddedVocabulary::add_tokens: a token already in the model's vocabulary takes
// that id; others take ids from the vocabulary size up. A file whose declared id differs from
// that is refused rather than silently renumbered.
std::vector<text::AddedToken> load_added_tokens(const JsonReader& reader, const Json& list,
                                                const text::BpeModel& model,
                                                const text::Normalizer* normalizer) {
  const std::string path = "added_tokens";
  reader.expect_array(list, path);
  std::vector<text::AddedToken> tokens;
  std::unordered_map<std::string, size_t> seen;
  int64_t next_id = static_cast<int64_t>(model.vocab().size());
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string p = JsonReader::index(path, i);
    const Json& t = list[i];
    reader.allow_only(
        t, p, {"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"});
    text::AddedToken token;
    token.content = reader.get_string(t, p, "content");
    const int64_t declared = reader.get_int(t, p, "id", 0, INT32_MAX - 1);
    token.special = reader.get_bool(t, p, "special", false);
    token.single_word = reader.get_bool(t, p, "single_word", false);
    token.lstrip = reader.get_bool(t, p, "lstrip", false);
    token.rstrip = reader.get_bool(t, p, "rstrip", false);
    token.normalized = reader.get_bool(t, p, "normalized", !token.special);
    if (token.content.empty()) continue;  // the crate ignores empty tokens
    int64_t id;
    if (const auto it = seen.find(token.content); it != seen.end()) {
      id = tokens[it->second].id;
    } else if (const auto vid = model.vocab().find(token.content)) {
      id = *vid;
    } else {
      id = next_id++;
    }
    if (id != declared)
      reader.error(
          JsonReader::child(p, "id"),
          str("'", token.content, "' is declared with id ", declared,
              " but the tokenizers library gives it id ", id, " (the model's vocabulary has ",
              model.vocab().size(), " tokens); the file is inconsistent"));
    token.id = static_cast<int32_t>(id);
    token.match_text = token.content;
    if (token.normalized && normalizer) normalizer->normalize(token.match_text);
    if (const auto it = seen.find(token.content); it != seen.end()) {
      tokens[it->second] = token;  // a repeated token keeps its last flags
    } else {
      seen[token.content] = tokens.size();
      tokens.push_back(std::move(token));
    }
  }
  return tokens;
}

std::string clean_up_tokenization(std::string s) {
  // transformers' PreTrainedTokenizerBase.clean_up_tokenization, in its order.
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    std::string out;
    size_t pos = 0, hit;
    while ((hit = s.find(from, pos)) != std::string::npos) {
      out.append(s, pos, hit - pos);
      out += to;
      pos = hit + from.size();
    }
    if (pos == 0) continue;
    out.append(s, pos, std::string::npos);
    s = std::move(out);
  }
  return s;
}

}  // namespace

Tokenizer Tokenizer::load(const fs::path& folder) {
  auto impl = std::make_shared<Impl>();
  impl->folder = folder;
  const fs::path json_path = folder / "tokenizer.json";
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    fail(folder.string(), ": not a folder (expected a model folder with tokenizer.json)");
  if (!fs::exists(json_path, ec))
    fail(folder.string(),
         ": no tokenizer.json (expo reads Hugging Face fast-tokenizer files; "
         "slow-only tokenizers with just tokenizer.model are not supported)");
  const JsonReader reader(json_path.string());

  simdjson::padded_string bytes;
  if (simdjson::padded_string::load(json_path.string()).get(bytes) != simdjson::SUCCESS)
    fail(json_path.string(), ": cannot read the file");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (const auto error = parser.parse(bytes).get(doc); error != simdjson::SUCCESS)
    fail(json_path.string(), ": not valid JSON (", simdjson::error_message(error), ")");
  if (doc.type() != simdjson::dom::element_type::OBJECT)
    fail(json_path.string(), ": expected a JSON object at the top level");

  Json top = Json::object();
  simdjson::dom::element model;
  bool has_model = false;
  for (auto [key, value] : doc.get_object()) {
    if (key == "model") {
      model = value;
      has_model = true;
    } else {
      top[std::string(key)] = to_json(value);
    }
  }
  // truncation and padding: transformers turns both off on every call unless asked for.
  reader.allow_only(top, "",
                    {"version", "truncation", "padding", "added_tokens", "normalizer",
                     "pre_tokenizer", "post_processor", "decoder"});
  if (top.contains("version") && top["version"] != "1.0")
    reader.error("version", "unknown tokenizer.json version " + json_brief(top["version"]) +
                                " (expo reads version 1.0)");
  if (!has_model) reader.error("model", "missing");

  text::BpeModel* bpe = nullptr;
  load_model(reader, model, bpe, impl->model);
  impl->normalizer = text::parse_normalizer(reader, top.value("normalizer", Json()), "normalizer");
  impl->pre_tokenizer =
      text::parse_pre_tokenizer(reader, top.value("pre_tokenizer", Json()), "pre_tokenizer");
  impl->decoder = text::parse_decoder(reader, top.value("decoder", Json()), "decoder");
  auto added = load_added_tokens(reader, top.value("added_tokens", Json::array()), *bpe,
                                 impl->normalizer.get());
  std::unordered_set<int32_t> added_ids;
  for (const auto& t : added) added_ids.insert(t.id);
  const auto id_exists = [&](int64_t id) {
    return (id <= INT32_MAX && bpe->vocab().token(static_cast<int32_t>(id))) ||
           added_ids.count(static_cast<int32_t>(id));
  };
  impl->post_processor = text::parse_post_processor(reader, top.value("post_processor", Json()),
                                                    "post_processor", id_exists);

  // tokenizer_config.json and special_tokens_map.json: what transformers layers on top.
  const fs::path config_path = folder / "tokenizer_config.json";
  const fs::path map_path = folder / "special_tokens_map.json";
  Json config = read_optional_json(config_path);
  if (!config.is_null()) impl->config = config;
  const Json special_map = read_optional_json(map_path);
  const std::string config_name = config_path.string();
  const auto config_bool = [&](const char* key, bool fallback) {
    if (!impl->config.contains(key) || impl->config[key].is_null()) return fallback;
    if (!impl->config[key].is_boolean())
      fail(config_name, ": ", key, ": expected true or false, found ",
           json_brief(impl->config[key]));
    return impl->config[key].get<bool>();
  };
  std::string cls = impl->config.value("tokenizer_class", Json("")).is_string()
                        ? impl->config.value("tokenizer_class", std::string())
                        : std::string();
  if (cls.ends_with("Fast")) cls.resize(cls.size() - 4);
  const bool llama_like =
      cls == "LlamaTokenizer" || cls == "CodeLlamaTokenizer" || cls == "GemmaTokenizer";
  // special_tokens_map.json wins over tokenizer_config.json, as in from_pretrained().
  const auto special = [&](const char* key, std::optional<std::string> fallback) {
    if (special_map.is_object() && special_map.contains(key))
      return token_string(special_map[key], map_path.string() + ": " + key);
    if (impl->config.contains(key))
      return token_string(impl->config[key], config_name + ": " + key);
    return fallback;
  };
  const bool gemma = cls == "GemmaTokenizer";
  impl->bos = special(
      "bos_token", llama_like ? std::optional<std::string>(gemma ? "<bos>" : "<s>") : std::nullopt);
  impl->eos = special("eos_token", llama_like ? std::optional<std::string>(gemma ? "<eos>" : "</s>")
                                              : std::nullopt);
  impl->clean_up_spaces = config_bool("clean_up_tokenization_spaces", false);
  const bool split_special = config_bool("split_special_tokens", false);

  impl->added.build(std::move(added), split_special);
  Tokenizer result(impl);
  if (llama_like) {
    if (impl->config.contains("add_prefix_space") && !impl->config["add_prefix_space"].is_null())
      fail(config_name, ": add_prefix_space: transformers rebuilds ", cls,
           "Fast from the SentencePiece model when it is set; expo reads tokenizer.json only");
    const bool add_bos = config_bool("add_bos_token", true);
    const bool add_eos = config_bool("add_eos_token", false);
    const auto resolve = [&](const std::optional<std::string>& tok, const char* what) {
      if (!tok) fail(config_name, ": ", what, "_token is null but add_", what, "_token is true");
      const auto id = result.token_to_id(*tok);
      if (!id)
        fail(config_name, ": ", what, "_token '", *tok, "' is not in the vocabulary of ",
             json_path.string());
      return id;
    };
    impl->post_processor = text::make_template(add_bos ? resolve(impl->bos, "bos") : std::nullopt,
                                               add_eos ? resolve(impl->eos, "eos") : std::nullopt);
  } else if (impl->config.contains("add_prefix_space") &&
             impl->config["add_prefix_space"].is_boolean() && impl->pre_tokenizer) {
    text::set_byte_level_prefix_space(*impl->pre_tokenizer,
                                      impl->config["add_prefix_space"].get<bool>());
  }

  size_t count = bpe->vocab().size();
  for (const auto& t : impl->added.tokens())
    if (!bpe->vocab().token(t.id)) ++count;
  impl->vocab_size = count;
  return result;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  check_utf8(text, "the text to encode");
  const Impl& m = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<text::Section> raw, normalized_sections;
  std::vector<text::Piece> pieces;
  m.added.split(text, /*normalized=*/false, raw);
  for (const text::Section& s : raw) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      continue;
    }
    if (s.end == s.begin) continue;
    std::string normalized(text.substr(s.begin, s.end - s.begin));
    if (m.normalizer) m.normalizer->normalize(normalized);
    if (normalized.empty()) continue;
    normalized_sections.clear();
    m.added.split(normalized, /*normalized=*/true, normalized_sections);
    for (const text::Section& n : normalized_sections) {
      if (n.id >= 0) {
        ids.push_back(n.id);
        continue;
      }
      if (n.end == n.begin) continue;
      pieces.clear();
      pieces.push_back({normalized.substr(n.begin, n.end - n.begin), s.begin == 0 && n.begin == 0});
      if (m.pre_tokenizer) m.pre_tokenizer->pre_tokenize(pieces);
      for (const auto& p : pieces) m.model->tokenize(p.text, ids);
    }
  }
  if (m.post_processor) m.post_processor->process(ids, add_special_tokens);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (const text::AddedToken* t = m.added.by_id(id)) {
      if (skip_special_tokens && t->special) continue;
      tokens.push_back(t->normalized && m.normalizer ? t->match_text : t->content);
      continue;
    }
    const std::string_view* token = m.model->vocab().token(id);
    if (!token)
      fail("cannot decode token id ", id, " at position ", i, ": not in the vocabulary (",
           m.vocab_size, " ids, ", m.folder.string(), ")");
    tokens.emplace_back(*token);
  }
  std::string out;
  if (m.decoder) {
    m.decoder->decode_chain(tokens);
    for (const auto& t : tokens) out += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
  }
  return m.clean_up_spaces ? clean_up_tokenization(std::move(out)) : out;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto id = impl_->added.by_content(token)) return id;
  return impl_->model->vocab().find(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const text::AddedToken* t = impl_->added.by_id(id)) return t->content;
  if (const std::string_view* token = impl_->model->vocab().token(id)) return std::string(*token);
  fail("token id ", id, " is not in the vocabulary (", impl_->vocab_size, " ids, ",
       impl_->folder.string(), ")");
}

bool Tokenizer::is_special(int32_t id) const {
  const text::AddedToken* t = impl_->added.by_id(id);
  return t && t->special;
}

std::optional<std::string> Tokenizer::bos_token() const { return impl_->bos; }
std::optional<std::string> Tokenizer::eos_token() const { return impl_->eos; }
size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
const nlohmann::json& Tokenizer::config() const { return impl_->config; }
const fs::path& Tokenizer::folder() const { return impl_->folder; }

}  // namespace expo
