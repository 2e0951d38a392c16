#include "gguf/gguf_tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "core/error.h"
#include "core/utf8.h"
#include "gguf/gguf_vocab.h"

namespace expo {

namespace {

using nlohmann::json;

// How a byte-level vocabulary is pre-tokenized, by llama.cpp's name for it.
struct BytePre {
  enum class Split { kNone, kLlama3, kQwen2, kDigits } split;
  bool byte_level_regex;  // ByteLevel applies GPT-2's own regex
  bool ignore_merges;     // a word that is a token is that token (Llama 3)
  bool nfc;               // the Hugging Face tokenizer normalizes to NFC (Qwen2)
  bool add_bos;           // llama.cpp's default for add_bos_token
  bool clean_up_spaces;   // clean_up_tokenization_spaces of the family's tokenizer_config.json
};

// Only names whose llama.cpp regex is the one the family's tokenizer.json splits with; every
// other name is refused rather than guessed (llama.cpp falls back to a "default" regex that no
// Hugging Face tokenizer uses).
std::optional<BytePre> byte_pre(const std::string& name) {
  using S = BytePre::Split;
  // GPT-2's regex, ByteLevel's own (phi-2 is CodeGen's GPT-2 vocabulary; mpt and olmo GPT-NeoX's).
  if (name == "gpt-2" || name == "phi-2" || name == "mpt" || name == "olmo")
    return BytePre{S::kNone, true, false, false, false, false};
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3")
    return BytePre{S::kLlama3, false, true, false, true, true};
  if (name == "dbrx" || name == "smaug-bpe")
    return BytePre{S::kLlama3, false, false, false, false, false};
  if (name == "qwen2") return BytePre{S::kQwen2, false, false, true, false, false};
  // llama.cpp splits digits one by one, then applies GPT-2's regex: the Digits(individual) +
  // ByteLevel(use_regex) pre-tokenizer of StarCoder's and SmolLM's tokenizer.json.
  if (name == "smollm" || name == "starcoder")
    return BytePre{S::kDigits, true, false, false, false, false};
  return std::nullopt;
}

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", true},
          {"use_regex", use_regex}};
}

json split_isolated(const char* regex) {
  return {{"type", "Split"},
          {"pattern", {{"Regex", regex}}},
          {"behavior", "Isolated"},
          {"invert", false}};
}

json template_processing(const std::optional<std::string>& bos,
                         const std::optional<std::string>& eos,
                         const std::vector<std::string>& tokens) {
  json single = json::array(), pair = json::array(), special = json::object();
  auto token = [&](const std::string& t, int type_id) {
    return json{{"SpecialToken", {{"id", t}, {"type_id", type_id}}}};
  };
  auto sequence = [](const char* id, int type_id) {
    return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
  };
  for (int part = 0; part < 2; ++part) {
    json& list = part == 0 ? single : pair;
    for (int s = 0; s < (part == 0 ? 1 : 2); ++s) {
      if (bos) list.push_back(token(*bos, s));
      list.push_back(sequence(s == 0 ? "A" : "B", s));
      if (eos) list.push_back(token(*eos, s));
    }
  }
  for (const auto* t : {&bos, &eos})
    if (*t) {
      const auto id = std::find(tokens.begin(), tokens.end(), **t) - tokens.begin();
      special[**t] = {{"id", **t}, {"ids", {id}}, {"tokens", {**t}}};
    }
  return {{"type", "TemplateProcessing"},
          {"single", single},
          {"pair", pair},
          {"special_tokens", special}};
}

// Typed lookups whose errors name the file and the key.
struct Keys {
  const GgufMetadata& metadata;
  const std::string& label;
  std::string where(std::string_view key) const { return str(label, ": metadata key ", key); }
  template <typename T>
  const T* find(std::string_view key, const char* want) const {
    const GgufValue* v = metadata.find(key);
    if (!v) return nullptr;
    if (!v->holds<T>()) fail(where(key), " is ", v->type_name(), ", expected ", want);
    return &v->as<T>();
  }
  std::optional<uint64_t> count(std::string_view key) const {
    try {
      return metadata.find_count(key);
    } catch (const std::exception& e) {
      fail(where(key), ": ", e.what());
    }
  }
};

}  // namespace

std::vector<std::pair<int32_t, int32_t>> spm_merges_from_scores(
    const std::vector<std::string>& tokens, const std::vector<float>& scores,
    const std::vector<bool>& mergeable) {
  std::unordered_map<std::string_view, int32_t> ids;
  ids.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) ids.emplace(tokens[i], static_cast<int32_t>(i));
  struct Merge {
    int32_t piece, left, right;
  };
  std::vector<Merge> merges;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!mergeable[i]) continue;
    const std::string_view piece = tokens[i];
    if (piece.empty()) continue;
    for (size_t cut = utf8_length(static_cast<unsigned char>(piece[0])); cut < piece.size();
         cut += utf8_length(static_cast<unsigned char>(piece[cut]))) {
      const auto l = ids.find(piece.substr(0, cut)), r = ids.find(piece.substr(cut));
      if (l != ids.end() && r != ids.end())
        merges.push_back({static_cast<int32_t>(i), l->second, r->second});
    }
  }
  std::sort(merges.begin(), merges.end(), [&](const Merge& a, const Merge& b) {
    if (scores[a.piece] != scores[b.piece]) return scores[a.piece] > scores[b.piece];
    if (a.piece != b.piece) return a.piece < b.piece;
    if (a.left != b.left) return a.left < b.left;
    return a.right < b.right;
  });
  std::vector<std::pair<int32_t, int32_t>> out;
  out.reserve(merges.size());
  for (const auto& m : merges) out.emplace_back(m.left, m.right);
  return out;
}

GgufTokenizerFiles gguf_tokenizer_files(const GgufMetadata& metadata, const std::string& label) {
  const Keys keys{metadata, label};
  auto where = [&](std::string_view key) { return keys.where(key); };
  auto bool_key = [&](std::string_view key) -> std::optional<bool> {
    const bool* b = keys.find<bool>(key, "bool");
    return b ? std::optional<bool>(*b) : std::nullopt;
  };
  auto count_key = [&](std::string_view key) { return keys.count(key); };

  const std::string* model_name = keys.find<std::string>("tokenizer.ggml.model", "string");
  if (!model_name)
    fail(where("tokenizer.ggml.model"), " is missing: the file has no tokenizer to rebuild");
  const bool spm = *model_name == "llama";
  if (!spm && *model_name != "gpt2")
    fail(where("tokenizer.ggml.model"), " is \"", *model_name,
         "\": expo rebuilds \"gpt2\" (byte-level BPE) and \"llama\" (SentencePiece BPE) "
         "tokenizers only");

  // Tokens.
  const auto* tokens_in =
      keys.find<std::vector<std::string>>("tokenizer.ggml.tokens", "array[string]");
  if (!tokens_in) fail(where("tokenizer.ggml.tokens"), " is missing");
  if (tokens_in->empty()) fail(where("tokenizer.ggml.tokens"), " is empty");
  if (tokens_in->size() > static_cast<size_t>(INT32_MAX))
    fail(where("tokenizer.ggml.tokens"), " has ", tokens_in->size(), " tokens, more than ids hold");
  const size_t n = tokens_in->size();
  GgufTokenizerFiles out;
  std::vector<std::string> tokens = *tokens_in;
  std::unordered_map<std::string_view, int32_t> ids;
  ids.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (tokens[i].empty()) {  // llama.cpp's name for an empty token
      tokens[i] = "[EMPTY_" + std::to_string(i) + "]";
      out.notes.push_back(str("token ", i, " is empty; named ", tokens[i], " as llama.cpp does"));
    }
    if (const size_t bad = find_invalid_utf8(tokens[i]); bad != std::string::npos)
      fail(where("tokenizer.ggml.tokens"), ": token ", i, " is not valid UTF-8 (byte ", bad,
           "); tokenizer.json holds UTF-8 tokens only");
  }
  for (size_t i = 0; i < n; ++i)
    if (!ids.emplace(tokens[i], static_cast<int32_t>(i)).second)
      fail(where("tokenizer.ggml.tokens"), ": token ", i, " ", json(tokens[i]).dump(),
           " is also token ", ids[tokens[i]], "; a vocabulary maps each string to one id");

  // Token types (all normal when absent, as llama.cpp reads them).
  std::vector<GgufTokenType> types(n, GgufTokenType::kNormal);
  if (const auto* t =
          keys.find<std::vector<int32_t>>("tokenizer.ggml.token_type", "array[int32]")) {
    if (t->size() != n)
      fail(where("tokenizer.ggml.token_type"), " has ", t->size(), " entries for ", n, " tokens");
    for (size_t i = 0; i < n; ++i) {
      if ((*t)[i] < 1 || (*t)[i] > 6)
        fail(where("tokenizer.ggml.token_type"), ": token ", i, " has type ", (*t)[i],
             " (llama.cpp's types are 1 to 6)");
      types[i] = static_cast<GgufTokenType>((*t)[i]);
    }
  }

  // Special ids.
  auto special_id = [&](const char* key) -> std::optional<int32_t> {
    const auto id = count_key(key);
    if (!id) return std::nullopt;
    if (*id >= n) fail(where(key), " is ", *id, ", outside the ", n, " tokens");
    return static_cast<int32_t>(*id);
  };
  const auto bos = special_id("tokenizer.ggml.bos_token_id");
  const auto eos = special_id("tokenizer.ggml.eos_token_id");
  auto unk = special_id("tokenizer.ggml.unknown_token_id");
  const auto pad = special_id("tokenizer.ggml.padding_token_id");
  if (!unk && spm)
    for (size_t i = 0; i < n; ++i)
      if (types[i] == GgufTokenType::kUnknown) unk = static_cast<int32_t>(i);

  json tokenizer = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}};
  json model = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false}};
  json merges = json::array();
  bool add_bos = false, add_eos = false, clean_up_spaces = false;

  if (!spm) {
    const auto pre_name = keys.find<std::string>("tokenizer.ggml.pre", "string");
    if (!pre_name)
      fail(where("tokenizer.ggml.pre"),
           " is missing: a byte-level vocabulary needs its pre-tokenizer named (llama.cpp "
           "guesses a default no Hugging Face tokenizer uses)");
    const auto pre = byte_pre(*pre_name);
    if (!pre)
      fail(where("tokenizer.ggml.pre"), " is \"", *pre_name,
           "\", a pre-tokenizer expo does not rebuild (it knows gpt-2, phi-2, mpt, olmo, "
           "llama-bpe, dbrx, smaug-bpe, qwen2, smollm, starcoder)");
    json steps = json::array();
    if (pre->split == BytePre::Split::kLlama3) steps.push_back(split_isolated(kLlama3Regex));
    if (pre->split == BytePre::Split::kQwen2) steps.push_back(split_isolated(kQwen2Regex));
    if (pre->split == BytePre::Split::kDigits) steps.push_back(split_isolated("\\p{N}"));
    steps.push_back(byte_level(pre->byte_level_regex));
    tokenizer["normalizer"] = pre->nfc ? json{{"type", "NFC"}} : json(nullptr);
    tokenizer["pre_tokenizer"] =
        steps.size() == 1 ? steps[0] : json{{"type", "Sequence"}, {"pretokenizers", steps}};
    tokenizer["decoder"] = {{"type", "ByteLevel"},
                            {"add_prefix_space", true},
                            {"trim_offsets", true},
                            {"use_regex", true}};
    if (pre->nfc)
      out.notes.push_back(
          "normalizes to NFC as Qwen2's tokenizer.json does; llama.cpp does not, so text not in "
          "NFC may be tokenized differently by llama.cpp");
    if (*pre_name == "mpt" || *pre_name == "olmo")
      out.notes.push_back(
          "GPT-NeoX's tokenizer.json normalizes to NFC; like llama.cpp, the "
          "rebuilt tokenizer does not");
    model["ignore_merges"] = pre->ignore_merges;
    add_bos = pre->add_bos;
    clean_up_spaces = pre->clean_up_spaces;

    const auto* m = keys.find<std::vector<std::string>>("tokenizer.ggml.merges", "array[string]");
    if (!m) fail(where("tokenizer.ggml.merges"), " is missing (a BPE vocabulary needs merges)");
    for (size_t i = 0; i < m->size(); ++i) {
      const std::string& line = (*m)[i];
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
        fail(where("tokenizer.ggml.merges"), ": merge ", i, " ", json(line).dump(),
             " is not two tokens separated by one space");
      const std::string a = line.substr(0, space), b = line.substr(space + 1);
      for (const std::string& s : {a, b, a + b})
        if (!ids.count(s))
          fail(where("tokenizer.ggml.merges"), ": merge ", i, " ", json(line).dump(), " needs ",
               json(s).dump(), ", which is not in tokenizer.ggml.tokens");
      merges.push_back({a, b});
    }
  } else {
    const auto* scores = keys.find<std::vector<float>>("tokenizer.ggml.scores", "array[float32]");
    if (!scores)
      fail(where("tokenizer.ggml.scores"),
           " is missing: a SentencePiece vocabulary's merges follow its scores");
    if (scores->size() != n)
      fail(where("tokenizer.ggml.scores"), " has ", scores->size(), " entries for ", n, " tokens");
    for (size_t i = 0; i < n; ++i)
      if (!std::isfinite((*scores)[i]))
        fail(where("tokenizer.ggml.scores"), ": token ", i, " has score ", (*scores)[i]);
    size_t byte_tokens = 0;
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      byte_tokens += ids.count(name);
    }
    if (byte_tokens != 256)
      fail(where("tokenizer.ggml.tokens"), " has ", byte_tokens,
           " of the 256 byte tokens <0x00>..<0xFF>; expo rebuilds SentencePiece vocabularies "
           "with byte fallback only");
    if (!unk)
      fail(where("tokenizer.ggml.unknown_token_id"),
           " is missing and no token has type unknown: a SentencePiece vocabulary needs one");
    const bool prefix = bool_key("tokenizer.ggml.add_space_prefix").value_or(true);
    const json replace = {
        {"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}};
    tokenizer["normalizer"] =
        prefix ? json{{"type", "Sequence"},
                      {"normalizers", {{{"type", "Prepend"}, {"prepend", "\u2581"}}, replace}}}
               : replace;
    tokenizer["pre_tokenizer"] = nullptr;
    json decoders = {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                     {{"type", "ByteFallback"}},
                     {{"type", "Fuse"}}};
    if (prefix)
      decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    tokenizer["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
    model["unk_token"] = tokens[*unk];
    model["fuse_unk"] = true;
    model["byte_fallback"] = true;
    add_bos = true;
    // Pieces that merges may build: the normal ones and the user-defined ones (SentencePiece
    // keeps user-defined pieces in the model; control, byte and unused pieces are never built).
    std::vector<bool> mergeable(n);
    for (size_t i = 0; i < n; ++i)
      mergeable[i] = types[i] == GgufTokenType::kNormal || types[i] == GgufTokenType::kUserDefined;
    for (const auto& [l, r] : spm_merges_from_scores(tokens, *scores, mergeable))
      merges.push_back({tokens[l], tokens[r]});
  }
  if (const auto b = bool_key("tokenizer.ggml.add_bos_token")) add_bos = *b;
  if (const auto e = bool_key("tokenizer.ggml.add_eos_token")) add_eos = *e;
  if (add_bos && !bos)
    fail(where("tokenizer.ggml.bos_token_id"), " is missing but add_bos_token is true");
  if (add_eos && !eos)
    fail(where("tokenizer.ggml.eos_token_id"), " is missing but add_eos_token is true");

  json vocab = json::object();
  for (size_t i = 0; i < n; ++i) vocab[tokens[i]] = i;
  model["vocab"] = std::move(vocab);
  model["merges"] = std::move(merges);

  // Added tokens: what the text is split on before the model sees it. GGUF has no lstrip or
  // rstrip; llama.cpp sets one rule by the model's name, which we follow on the same file: a
  // model named Phi-3 strips the whitespace after every special token but <unk>, <s> and
  // <|endoftext|> (llama-vocab.cpp, "phi-3"/"phi3" in general.name, case-insensitively).
  std::string model_title;
  if (const auto* title = keys.find<std::string>("general.name", "string"))
    for (char c : *title)
      model_title += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool phi3_rstrip = model_title.find("phi-3") != std::string::npos ||
                           model_title.find("phi3") != std::string::npos;
  json added = json::array();
  for (size_t i = 0; i < n; ++i) {
    const GgufTokenType t = types[i];
    if (t != GgufTokenType::kControl && t != GgufTokenType::kUserDefined &&
        t != GgufTokenType::kUnknown)
      continue;
    const bool rstrip =
        phi3_rstrip && tokens[i] != "<unk>" && tokens[i] != "<s>" && tokens[i] != "<|endoftext|>";
    added.push_back({{"id", i},
                     {"content", tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", rstrip},
                     {"normalized", false},
                     {"special", t != GgufTokenType::kUserDefined}});
  }
  tokenizer["added_tokens"] = std::move(added);
  auto name = [&](std::optional<int32_t> id) {
    return id ? std::optional<std::string>(tokens[*id]) : std::nullopt;
  };
  tokenizer["post_processor"] =
      add_bos || add_eos ? template_processing(add_bos ? name(bos) : std::nullopt,
                                               add_eos ? name(eos) : std::nullopt, tokens)
                         : json(nullptr);
  tokenizer["model"] = std::move(model);

  json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                 {"add_bos_token", add_bos},
                 {"add_eos_token", add_eos},
                 {"clean_up_tokenization_spaces", clean_up_spaces}};
  auto token_entry = [&](std::optional<int32_t> id) { return id ? json(tokens[*id]) : json(); };
  config["bos_token"] = token_entry(bos);
  config["eos_token"] = token_entry(eos);
  config["unk_token"] = token_entry(unk);
  config["pad_token"] = token_entry(pad);
  if (const auto* t = keys.find<std::string>("tokenizer.chat_template", "string"))
    config["chat_template"] = *t;
  if (const auto* arch = keys.find<std::string>("general.architecture", "string"))
    if (const auto ctx = count_key(*arch + ".context_length"); ctx && *ctx > 0)
      config["model_max_length"] = *ctx;

  out.tokenizer_json = tokenizer.dump();
  out.tokenizer_config_json = config.dump(2);
  return out;
}

}  // namespace expo
