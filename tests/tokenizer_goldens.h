#pragma once
// The real tokenizers of the golden files (tests/golden/text/tokenizer/): the folder a golden
// names, or a temporary one with the files derived from it (OLMo 2's added tokens, Llama 3's
// meta post-processor), as make_goldens.mjs (deriveTokenizer) derives them. Shared by the
// tokenizer tests and the GGUF tokenizer tests.
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/fs.h"
#include "test_util.h"
#include "text/tokenizer.h"

namespace expo {

inline const std::filesystem::path kTextGoldenDir = std::filesystem::path(EXPO_GOLDEN_DIR) / "text";

// The folder holding the golden's tokenizer.json and tokenizer_config.json: the package's, or
// a temporary one with the files derived from it.
inline std::filesystem::path golden_tokenizer_folder(const nlohmann::json& golden,
                                                     const std::filesystem::path& folder) {
  namespace fs = std::filesystem;
  using nlohmann::json;
  using testing::TempDir;
  static std::map<std::string, fs::path> derived;
  static std::vector<std::unique_ptr<TempDir>> dirs;
  const std::string name = golden["tokenizer"];
  if (auto it = derived.find(name); it != derived.end()) return it->second;
  fs::path dir = folder;
  const json post_processor = golden.value("post_processor", json());
  const json config_folder = golden.value("config_folder", json());
  if (!post_processor.is_null() || !config_folder.is_null()) {
    // The package's files changed as make_goldens.mjs (deriveTokenizer) changes them.
    dirs.push_back(std::make_unique<TempDir>());
    dir = dirs.back()->path();
    json tj = json::parse(read_text_file(folder / "tokenizer.json"));
    fs::path config = folder / "tokenizer_config.json";
    if (!config_folder.is_null()) {
      // OLMo 2: its tokenizer_config.json, whose added tokens go into the tokenizer's added
      // tokens and into the model's vocabulary.
      config = kTextGoldenDir / config_folder.get<std::string>() / "tokenizer_config.json";
      const json cfg = json::parse(read_text_file(config));
      std::vector<std::pair<int, json>> tokens;
      for (const auto& [id, t] : cfg["added_tokens_decoder"].items())
        tokens.emplace_back(std::stoi(id), t);
      std::sort(tokens.begin(), tokens.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      json added = json::array();
      for (const auto& [id, t] : tokens) {
        added.push_back({{"id", id},
                         {"content", t["content"]},
                         {"single_word", t["single_word"]},
                         {"lstrip", t["lstrip"]},
                         {"rstrip", t["rstrip"]},
                         {"normalized", t["normalized"]},
                         {"special", t["special"]}});
        tj["model"]["vocab"][t["content"].get<std::string>()] = id;
      }
      tj["added_tokens"] = added;
    }
    if (!post_processor.is_null())
      tj["post_processor"] =
          json::parse(read_text_file(kTextGoldenDir / post_processor.get<std::string>()));
    write_text_file(dir / "tokenizer.json", tj.dump());
    fs::copy_file(config, dir / "tokenizer_config.json");
  }
  return derived.emplace(name, dir).first->second;
}

inline std::string show(const std::vector<int32_t>& ids) { return nlohmann::json(ids).dump(); }

// Checks `tok` against every case of a tokenizer golden: ids with and without special tokens,
// decoding with and without them, and the round trip where the golden says it holds. Returns
// the number of cases.
inline size_t expect_golden_cases(const Tokenizer& tok, const nlohmann::json& golden) {
  using nlohmann::json;
  size_t checked = 0;
  for (const auto& c : golden["cases"]) {
    const std::string text = c["text"];
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const auto ids_plain = c["ids_no_special"].get<std::vector<int32_t>>();
    EXPECT_EQ(show(tok.encode(text)), show(ids)) << "encode " << json(text).dump();
    EXPECT_EQ(show(tok.encode(text, false)), show(ids_plain))
        << "encode without special tokens " << json(text).dump();
    EXPECT_EQ(tok.decode(ids), c["decoded"].get<std::string>()) << "decode " << show(ids);
    EXPECT_EQ(tok.decode(ids, true), c["decoded_skip_special"].get<std::string>())
        << "decode skipping special tokens " << show(ids);
    if (c["roundtrip"].get<bool>()) {
      EXPECT_EQ(tok.decode(ids_plain), text) << "round trip " << json(text).dump();
    }
    ++checked;
  }
  return checked;
}

}  // namespace expo
