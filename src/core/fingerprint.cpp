#include "core/fingerprint.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_write.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/json_reader.h"

namespace expo {

void Fingerprint::add(const std::string& name, const std::string& value) {
  for (auto& [n, v] : settings_)
    if (n == name) {
      v = value;
      return;
    }
  settings_.emplace_back(name, value);
}

const std::string* Fingerprint::find(const std::string& name) const {
  for (const auto& [n, v] : settings_)
    if (n == name) return &v;
  return nullptr;
}

nlohmann::ordered_json Fingerprint::to_json() const {
  // An ordered object keeps the settings in the order they were added, for a person reading it.
  nlohmann::ordered_json settings = nlohmann::ordered_json::object();
  for (const auto& [name, value] : settings_) settings[name] = value;
  return settings;
}

Fingerprint Fingerprint::from_json(const nlohmann::ordered_json& settings,
                                   const std::string& where) {
  if (!settings.is_object()) fail(where, ": \"settings\" must be an object");
  Fingerprint f;
  for (const auto& [name, value] : settings.items()) {
    if (!value.is_string()) fail(where, ": settings.", name, " must be a string");
    f.add(name, value.get<std::string>());
  }
  return f;
}

std::string Fingerprint::to_json_text() const {
  nlohmann::ordered_json j;
  j["expo_fingerprint"] = 1;
  j["settings"] = to_json();
  return dump_json(j, 2) + "\n";
}

Fingerprint Fingerprint::parse(const std::string& text, const std::string& where) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(where, ": malformed JSON: ", json_error_text(e));
  }
  if (!j.is_object() || !j.contains("expo_fingerprint") || !j.contains("settings"))
    fail(where,
         ": not an expo fingerprint (expected {\"expo_fingerprint\": 1, \"settings\": ...})");
  if (j["expo_fingerprint"] != 1)
    fail(where, ": fingerprint version ", j["expo_fingerprint"].dump(),
         " is not one this expo reads (1); it was written by another expo version");
  return from_json(j["settings"], where);
}

std::vector<std::string> Fingerprint::differences_from(const Fingerprint& earlier) const {
  std::vector<std::string> lines;
  for (const auto& [name, value] : settings_) {
    const std::string* was = earlier.find(name);
    if (was && *was == value) continue;
    lines.push_back(str(name, ": was ", was ? *was : "(not recorded)", ", now ", value));
  }
  for (const auto& [name, value] : earlier.settings_)
    if (!find(name)) lines.push_back(str(name, ": was ", value, ", now (not recorded)"));
  return lines;
}

void check_same_settings(const Fingerprint& recorded, const Fingerprint& now,
                         const std::string& what, const std::string& how) {
  const auto differences = now.differences_from(recorded);
  if (differences.empty()) return;
  std::string message = str(what, " was made with other settings than this run:");
  for (const auto& d : differences) message += "\n  " + d;
  message += "\n" + how;
  throw Error(message);
}

std::optional<Fingerprint> read_fingerprint(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  return Fingerprint::parse(read_text_file(path), path.string());
}

void write_fingerprint(const std::filesystem::path& path, const Fingerprint& fingerprint) {
  write_file_atomically(path, fingerprint.to_json_text());
}

ContentHash& ContentHash::add(const void* data, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    state_ ^= bytes[i];
    state_ *= 1099511628211ull;  // FNV's 64-bit prime
  }
  return *this;
}

ContentHash& ContentHash::add_number(uint64_t value) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  return add(bytes, sizeof bytes);
}

ContentHash& ContentHash::add_field(std::string_view text) {
  add_number(text.size());
  return add(text);
}

std::string ContentHash::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(state_));
  return buf;
}

}  // namespace expo
