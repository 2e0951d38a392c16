#pragma once
// What a run's results depend on, written beside them so that a rerun with --resume can refuse
// to mix rows made with other settings: named settings ("--max-new-tokens" -> "64"), compared
// one by one, and the differences said as "--max-new-tokens: was 64, now 32". Settings that do
// not change results (threads, progress, where the best model goes) are never recorded.
//
// File form (fingerprint.json, written atomically):
//   {"expo_fingerprint": 1, "settings": {"<name>": "<value>", ...}}
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace expo {

class Fingerprint {
 public:
  // A later add() of the same name replaces the earlier value.
  void add(const std::string& name, const std::string& value);
  const std::vector<std::pair<std::string, std::string>>& settings() const { return settings_; }
  const std::string* find(const std::string& name) const;

  // {"<name>": "<value>", ...} in the order the settings were added.
  nlohmann::ordered_json to_json() const;
  // Strict: errors name `where` (the file).
  static Fingerprint from_json(const nlohmann::ordered_json& settings, const std::string& where);
  std::string to_json_text() const;  // the file form
  static Fingerprint parse(const std::string& text, const std::string& where);

  // One line per setting that differs from `earlier`, in this fingerprint's order, then the
  // settings only `earlier` has: "--max-new-tokens: was 64, now 32" ("(not recorded)" for a
  // setting one side lacks).
  std::vector<std::string> differences_from(const Fingerprint& earlier) const;

 private:
  std::vector<std::pair<std::string, std::string>> settings_;
};

// Refuses, when `recorded` differs from `now`, with the differences one per line. `what`
// names the earlier run ("--resume: the search in runs/s"); `how` says how to proceed.
void check_same_settings(const Fingerprint& recorded, const Fingerprint& now,
                         const std::string& what, const std::string& how);

// Reads `path` (nullopt when it does not exist); a malformed file is an error naming it.
std::optional<Fingerprint> read_fingerprint(const std::filesystem::path& path);
void write_fingerprint(const std::filesystem::path& path, const Fingerprint& fingerprint);

// A cheap identity of bytes, for fingerprints (not for security): 64-bit FNV-1a, as 16 hex
// digits.
class ContentHash {
 public:
  ContentHash& add(const void* data, size_t size);
  ContentHash& add(std::string_view text) { return add(text.data(), text.size()); }
  // A number as its 8 little-endian bytes, so that fields cannot run into each other.
  ContentHash& add_number(uint64_t value);
  // A length-prefixed string: ("ab", "c") and ("a", "bc") hash differently.
  ContentHash& add_field(std::string_view text);
  uint64_t value() const { return state_; }
  std::string hex() const;

 private:
  uint64_t state_ = 14695981039346656037ull;  // FNV-1a's 64-bit offset basis
};

}  // namespace expo
