#pragma once
// Strict reading of tokenizer.json pieces: every error names the file and the JSON path
// ("tokenizer.json: pre_tokenizer.pretokenizers[1].behavior: ..."), and fields a component
// does not know are refused rather than ignored.
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace expo::text {

using Json = nlohmann::json;

class JsonReader {
 public:
  explicit JsonReader(std::string file) : file_(std::move(file)) {}
  const std::string& file() const { return file_; }

  [[noreturn]] void error(const std::string& path, const std::string& message) const;
  // "file: path" for messages built elsewhere.
  std::string where(const std::string& path) const { return file_ + ": " + path; }

  static std::string child(const std::string& path, std::string_view key);
  static std::string index(const std::string& path, size_t i);

  void expect_object(const Json& j, const std::string& path) const;
  void expect_array(const Json& j, const std::string& path) const;
  // Refuses any key of `obj` outside `allowed`.
  void allow_only(const Json& obj, const std::string& path,
                  std::initializer_list<std::string_view> allowed) const;
  // The component's "type" string (required).
  std::string type(const Json& obj, const std::string& path) const;

  // A required field of any type.
  const Json& get(const Json& obj, const std::string& path, std::string_view key) const;
  std::string get_string(const Json& obj, const std::string& path, std::string_view key) const;
  std::optional<std::string> opt_string(const Json& obj, const std::string& path,
                                        std::string_view key) const;  // absent or null: nullopt
  bool get_bool(const Json& obj, const std::string& path, std::string_view key,
                std::optional<bool> fallback = std::nullopt) const;
  int64_t get_int(const Json& obj, const std::string& path, std::string_view key, int64_t min,
                  int64_t max, std::optional<int64_t> fallback = std::nullopt) const;
  const Json& get_array(const Json& obj, const std::string& path, std::string_view key) const;

 private:
  std::string file_;
};

// A JSON value in the messages: strings quoted, long values cut.
std::string json_brief(const Json& j);

}  // namespace expo::text
