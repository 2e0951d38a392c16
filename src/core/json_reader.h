#pragma once
// The one strict JSON reader (config.json, tokenizer.json, tokenizer_config.json) and the JSON
// helpers of the prompt, answer and results files. Every error names the file and the JSON
// path ("tokenizer.json: pre_tokenizer.pretokenizers[1].behavior: ..."), and fields a component
// does not know are refused rather than ignored.
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/input_limits.h"

namespace expo {

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
  double get_number(const Json& obj, const std::string& path, std::string_view key,
                    std::optional<double> fallback = std::nullopt) const;
  const Json& get_array(const Json& obj, const std::string& path, std::string_view key) const;

 private:
  std::string file_;
};

// A JSON value in the messages: strings quoted, long values cut.
std::string json_brief(const Json& j);

// "a string", "an integer", ...: for messages like `"id" must be a string, got a list`.
inline std::string json_type_name(const nlohmann::json& value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number_float()) return "a number";
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::array:
      return "a list";
    case nlohmann::json::value_t::object:
      return "an object";
    default:
      return "a binary value";
  }
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
inline std::string json_error_text(const nlohmann::json::exception& e) {
  std::string text = e.what();
  if (!text.empty() && text[0] == '[') {
    const size_t end = text.find("] ");
    if (end != std::string::npos) text.erase(0, end + 2);
  }
  return text;
}

// Compact UTF-8 JSON. Model output can hold invalid UTF-8 (a multi-byte character cut by the
// token limit): such bytes become U+FFFD instead of failing the whole file.
template <typename Json>
std::string dump_json(const Json& value, int indent = -1) {
  return value.dump(indent, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

// Calls fn(value, where) with the JSON value of each non-blank line of JSONL `text` (LF or
// CRLF), where = "NAME:LINE" (1-based, blank lines counted) for error messages. A line that is
// not one complete JSON value, or longer than limits.max_line_bytes, is an error naming it.
template <typename Fn>
void for_each_jsonl_line(std::string_view text, const std::string& name, const InputLimits& limits,
                         Fn&& fn) {
  size_t line_number = 0;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    ++line_number;
    if (line.size() > limits.max_line_bytes)
      fail(name, ":", line_number, ": the line is longer than expo reads (", line.size(),
           " bytes) ", limit_hint(limits.max_line_bytes, kInputMaxLineEnv));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = str(name, ":", line_number);
    nlohmann::json value;
    try {
      value = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail(where,
           ": malformed JSON (each line must hold one complete JSON object): ", json_error_text(e));
    }
    fn(value, where);
  }
}
// The same with the default limits (InputLimits{}).
template <typename Fn>
void for_each_jsonl_line(std::string_view text, const std::string& name, Fn&& fn) {
  for_each_jsonl_line(text, name, InputLimits{}, std::forward<Fn>(fn));
}

}  // namespace expo
