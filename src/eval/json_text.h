#pragma once
// Small JSON helpers shared by the eval readers and writers.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.h"

namespace expo {

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
// not one complete JSON value is an error naming it.
template <typename Fn>
void for_each_jsonl_line(std::string_view text, const std::string& name, Fn&& fn) {
  size_t line_number = 0;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const std::string where = str(name, ":", line_number);
    nlohmann::json value;
    try {
      value = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail(where, ": malformed JSON (each line must hold one complete JSON object): ",
           json_error_text(e));
    }
    fn(value, where);
  }
}

}  // namespace expo
