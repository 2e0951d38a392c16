#include "gguf/gguf_vocab.h"

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <unordered_map>

#include "core/error.h"
#include "core/fs.h"
#include "jinja/chat_template.h"

namespace expo {

namespace {

using nlohmann::json;

json read_json(const std::filesystem::path& path) {
  const std::string text = read_text_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail(path.string(), ": not valid JSON: ", e.what());
  }
}

// The pre-tokenizers of tokenizer.json, flattened.
std::vector<json> pre_tokenizers(const json& tokenizer) {
  std::vector<json> out;
  if (!tokenizer.contains("pre_tokenizer") || tokenizer["pre_tokenizer"].is_null()) return out;
  const json& p = tokenizer["pre_tokenizer"];
  if (p.value("type", "") == "Sequence" && p.contains("pretokenizers")) {
    for (const auto& x : p["pretokenizers"]) out.push_back(x);
  } else {
    out.push_back(p);
  }
  return out;
}

std::vector<json> normalizers(const json& tokenizer) {
  std::vector<json> out;
  if (!tokenizer.contains("normalizer") || tokenizer["normalizer"].is_null()) return out;
  const json& n = tokenizer["normalizer"];
  if (n.value("type", "") == "Sequence" && n.contains("normalizers")) {
    for (const auto& x : n["normalizers"]) out.push_back(x);
  } else {
    out.push_back(n);
  }
  return out;
}

// The special token of a template step ({"SpecialToken": {"id": "<s>"}}), or nullopt.
std::optional<std::string> special_step(const json& step) {
  if (step.is_object() && step.contains("SpecialToken") && step["SpecialToken"].contains("id") &&
      step["SpecialToken"]["id"].is_string())
    return step["SpecialToken"]["id"].get<std::string>();
  return std::nullopt;
}

}  // namespace

GgufVocab gguf_vocab(const std::filesystem::path& folder, uint64_t vocab_size,
                     std::optional<int32_t> config_bos, std::vector<int32_t> config_eos) {
  const auto tok_path = folder / "tokenizer.json";
  if (!std::filesystem::is_regular_file(tok_path))
    fail(folder.string(),
         ": no tokenizer.json; GGUF needs the tokenizer (a SentencePiece tokenizer.model alone "
         "is not read)");
  const std::string where = tok_path.string();
  const json tokenizer = read_json(tok_path);
  if (!tokenizer.is_object() || !tokenizer.contains("model") || !tokenizer["model"].is_object())
    fail(where, ": no \"model\" object");
  const json& model = tokenizer["model"];
  const std::string type = model.value("type", "");
  if (type != "BPE")
    fail(where, ": a ", type.empty() ? "model without a type" : type,
         " tokenizer; GGUF output reads BPE tokenizers (byte-level or SentencePiece-style)");
  if (!model.contains("vocab") || !model["vocab"].is_object())
    fail(where, ": model.vocab is not an object");

  // Tokens by id.
  std::vector<std::string> tokens(vocab_size);
  std::vector<bool> filled(vocab_size, false);
  std::vector<GgufTokenType> types(vocab_size, GgufTokenType::kUnused);
  auto place = [&](const std::string& text, const json& id_value, GgufTokenType t) {
    if (!id_value.is_number_integer() || id_value.get<int64_t>() < 0)
      fail(where, ": token ", json(text).dump(), " has id ", id_value.dump());
    const uint64_t id = id_value.get<uint64_t>();
    if (id >= vocab_size)
      fail(where, ": token ", json(text).dump(), " has id ", id,
           ", outside the model's vocab_size of ", vocab_size);
    tokens[id] = text;
    filled[id] = true;
    types[id] = t;
  };
  for (const auto& [text, id] : model["vocab"].items()) place(text, id, GgufTokenType::kNormal);
  if (tokenizer.contains("added_tokens") && tokenizer["added_tokens"].is_array())
    for (const auto& t : tokenizer["added_tokens"]) {
      if (!t.is_object() || !t.contains("content") || !t["content"].is_string() ||
          !t.contains("id"))
        fail(where, ": an added_tokens entry without content and id: ", t.dump());
      place(t["content"].get<std::string>(), t["id"],
            t.value("special", false) ? GgufTokenType::kControl : GgufTokenType::kUserDefined);
    }
  for (uint64_t i = 0; i < vocab_size; ++i)
    if (!filled[i]) tokens[i] = "[PAD" + std::to_string(i) + "]";
  auto id_of = [&](const std::string& text) -> std::optional<int32_t> {
    for (uint64_t i = 0; i < vocab_size; ++i)
      if (filled[i] && tokens[i] == text) return static_cast<int32_t>(i);
    return std::nullopt;
  };

  GgufVocab out;
  GgufMetadata& m = out.metadata;
  const auto pres = pre_tokenizers(tokenizer);
  const auto norms = normalizers(tokenizer);
  bool byte_level = false;
  std::optional<std::string> split_regex;
  bool byte_level_regex = false;
  for (const auto& p : pres) {
    const std::string t = p.value("type", "");
    if (t == "ByteLevel") {
      byte_level = true;
      byte_level_regex = p.value("use_regex", true);
    } else if (t == "Split" && p.contains("pattern") && p["pattern"].contains("Regex")) {
      split_regex = p["pattern"]["Regex"].get<std::string>();
    }
  }
  const bool byte_fallback = model.value("byte_fallback", false);
  if (byte_level) {
    std::string pre;
    if (split_regex && !byte_level_regex && *split_regex == kLlama3Regex) {
      pre = model.value("ignore_merges", false) ? "llama-bpe" : "dbrx";
    } else if (split_regex && !byte_level_regex && *split_regex == kQwen2Regex) {
      pre = "qwen2";
    } else if (!split_regex && byte_level_regex) {
      pre = "gpt-2";
    } else {
      fail(where, ": a byte-level pre-tokenizer ",
           split_regex ? "splitting on " + json(*split_regex).dump() : std::string(""),
           " that no llama.cpp pre-tokenizer reproduces (GGUF output knows GPT-2's, Llama 3's "
           "and Qwen2's)");
    }
    for (const auto& n : norms) {
      const std::string t = n.value("type", "");
      if (t == "NFC")
        out.notes.push_back(
            "the tokenizer normalizes to NFC and llama.cpp does not: text that is not in NFC "
            "may be tokenized differently");
      else
        fail(where, ": normalizer ", t, " has no GGUF equivalent");
    }
    m.add("tokenizer.ggml.model", GgufValue("gpt2"));
    m.add("tokenizer.ggml.pre", GgufValue(pre));
  } else if (byte_fallback) {
    // SentencePiece-style: spaces become "▁" (a Replace normalizer or a Metaspace
    // pre-tokenizer), a "▁" may be prepended, unknown bytes fall back to <0xNN>.
    bool prepend = false, spaces = false;
    for (const auto& n : norms) {
      const std::string t = n.value("type", "");
      if (t == "Prepend" && n.value("prepend", "") == "\u2581") {
        prepend = true;
      } else if (t == "Replace" && n.contains("pattern") &&
                 n["pattern"].value("String", "") == " " && n.value("content", "") == "\u2581") {
        spaces = true;
      } else {
        fail(where, ": normalizer ", json(n).dump(), " has no GGUF equivalent");
      }
    }
    for (const auto& p : pres) {
      const std::string t = p.value("type", "");
      if (t == "Metaspace") {
        spaces = true;
        const std::string scheme = p.value("prepend_scheme", "");
        prepend = prepend || scheme == "always" || scheme == "first" ||
                  p.value("add_prefix_space", false);
      } else if (t == "Split" && p.contains("pattern") && p["pattern"].value("String", "") == " ") {
        // Gemma's: splits on spaces the normalizer has already replaced; it changes nothing.
      } else {
        fail(where, ": pre-tokenizer ", t,
             " has no GGUF equivalent for a SentencePiece vocabulary");
      }
    }
    if (!spaces)
      fail(where,
           ": a byte-fallback BPE that does not write spaces as \"\u2581\"; GGUF output "
           "knows SentencePiece-style and byte-level vocabularies");
    for (uint64_t i = 0; i < vocab_size; ++i)
      if (types[i] == GgufTokenType::kNormal && tokens[i].size() == 6 &&
          std::regex_match(tokens[i], std::regex("<0x[0-9A-Fa-f]{2}>")))
        types[i] = GgufTokenType::kByte;
    if (model.contains("unk_token") && model["unk_token"].is_string())
      if (auto unk = id_of(model["unk_token"].get<std::string>()))
        types[*unk] = GgufTokenType::kUnknown;
    m.add("tokenizer.ggml.model", GgufValue("llama"));
    m.add("tokenizer.ggml.pre", GgufValue("default"));
    m.add("tokenizer.ggml.add_space_prefix", GgufValue(prepend));
  } else {
    fail(where,
         ": a BPE tokenizer that is neither byte-level nor SentencePiece-style (byte_fallback); "
         "llama.cpp's vocabularies cannot reproduce it");
  }
  // The merges, as pairs.
  std::vector<std::pair<std::string, std::string>> merges;
  if (model.contains("merges") && model["merges"].is_array())
    for (const auto& x : model["merges"]) {
      const size_t space = x.is_string() ? x.get<std::string>().find(' ') : std::string::npos;
      if (space != std::string::npos) {
        const std::string line = x.get<std::string>();
        merges.emplace_back(line.substr(0, space), line.substr(space + 1));
      } else if (x.is_array() && x.size() == 2 && x[0].is_string() && x[1].is_string()) {
        merges.emplace_back(x[0].get<std::string>(), x[1].get<std::string>());
      } else {
        fail(where, ": a merge that is not \"a b\" or [a, b]: ", x.dump());
      }
    }
  m.add("tokenizer.ggml.tokens", GgufValue(tokens));
  if (!byte_level) {
    // llama.cpp's SPM tokenizer merges first the adjacent pair whose merged piece scores
    // highest, and a tokenizer rebuilt from the GGUF (gguf_tokenizer.h) ranks merges the same
    // way; so a piece scores minus the rank of the first merge that builds it, and both merge in
    // tokenizer.json's order. (The ids are not that order: SentencePiece gives Llama 2's "▁▁"
    // runs, ids 259 and up, a score of -1e9, and its tokenizer.json ranks their merges last.)
    // Pieces no merge builds come after, by id.
    std::unordered_map<std::string_view, uint64_t> ids;
    for (uint64_t i = 0; i < vocab_size; ++i)
      if (filled[i]) ids.emplace(tokens[i], i);
    std::vector<float> scores(vocab_size);
    std::vector<bool> ranked(vocab_size, false);
    for (uint64_t i = 0; i < vocab_size; ++i) scores[i] = -static_cast<float>(merges.size() + i);
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto it = ids.find(merges[rank].first + merges[rank].second);
      if (it == ids.end() || ranked[it->second]) continue;
      ranked[it->second] = true;
      scores[it->second] = -static_cast<float>(rank);
    }
    m.add("tokenizer.ggml.scores", GgufValue(scores));
  }
  std::vector<int32_t> type_ids;
  for (auto t : types) type_ids.push_back(static_cast<int32_t>(t));
  m.add("tokenizer.ggml.token_type", GgufValue(type_ids));
  if (byte_level) {
    std::vector<std::string> lines;
    for (const auto& [a, b] : merges) lines.push_back(a + " " + b);
    m.add("tokenizer.ggml.merges", GgufValue(lines));
  }

  // Special tokens: the tokenizer files' names, else config.json's ids.
  const json special = load_special_tokens(folder);
  auto special_id = [&](const char* key) -> std::optional<int32_t> {
    if (special.contains(key) && special[key].is_string()) {
      const auto id = id_of(special[key].get<std::string>());
      if (!id)
        fail(folder.string(), ": ", key, " ", special[key].dump(), " is not in tokenizer.json");
      return id;
    }
    return std::nullopt;
  };
  std::optional<int32_t> bos = special_id("bos_token"), eos = special_id("eos_token");
  if (!bos) bos = config_bos;
  if (!eos && !config_eos.empty()) eos = config_eos[0];
  const auto unk = special_id("unk_token"), pad = special_id("pad_token");
  auto add_id = [&](const char* key, std::optional<int32_t> id) {
    if (id) m.add(key, GgufValue(static_cast<uint32_t>(*id)));
  };
  add_id("tokenizer.ggml.bos_token_id", bos);
  add_id("tokenizer.ggml.eos_token_id", eos);
  add_id("tokenizer.ggml.unknown_token_id", unk);
  add_id("tokenizer.ggml.padding_token_id", pad);

  // add_bos_token / add_eos_token: tokenizer_config.json's, else the post-processor's template.
  json config = json::object();
  if (std::filesystem::is_regular_file(folder / "tokenizer_config.json"))
    config = read_json(folder / "tokenizer_config.json");
  bool add_bos = false, add_eos = false;
  if (tokenizer.contains("post_processor") && tokenizer["post_processor"].is_object()) {
    const json& pp = tokenizer["post_processor"];
    const json* single = nullptr;
    if (pp.value("type", "") == "TemplateProcessing" && pp.contains("single"))
      single = &pp["single"];
    if (pp.value("type", "") == "Sequence" && pp.contains("processors"))
      for (const auto& p : pp["processors"])
        if (p.value("type", "") == "TemplateProcessing" && p.contains("single"))
          single = &p["single"];
    if (single && single->is_array() && !single->empty()) {
      add_bos = special_step(single->front()).has_value();
      add_eos = single->size() > 1 && special_step(single->back()).has_value();
    }
  }
  if (config.is_object() && config.contains("add_bos_token") &&
      config["add_bos_token"].is_boolean())
    add_bos = config["add_bos_token"].get<bool>();
  if (config.is_object() && config.contains("add_eos_token") &&
      config["add_eos_token"].is_boolean())
    add_eos = config["add_eos_token"].get<bool>();
  m.add("tokenizer.ggml.add_bos_token", GgufValue(add_bos));
  m.add("tokenizer.ggml.add_eos_token", GgufValue(add_eos));

  if (std::filesystem::is_regular_file(folder / "chat_template.jinja") ||
      (config.is_object() && config.contains("chat_template") &&
       !config["chat_template"].is_null()))
    m.add("tokenizer.chat_template", GgufValue(load_chat_template(folder).text));
  return out;
}

}  // namespace expo
