#pragma once
// Small JSON helpers shared by the eval readers and writers.
#include <nlohmann/json.hpp>
#include <string>

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

}  // namespace expo
