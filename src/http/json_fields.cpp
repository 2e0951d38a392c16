#include "http/json_fields.h"

#include <cmath>

#include "core/error.h"

namespace expo {

using nlohmann::json;

std::string show_json(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

const json* find_field(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

bool bool_field(const json& body, const char* key, bool fallback) {
  const json* value = find_field(body, key);
  if (!value) return fallback;
  if (!value->is_boolean())
    fail("field `", key, "` must be true or false, not ", show_json(*value));
  return value->get<bool>();
}

std::optional<int64_t> integer_field(const json& body, const char* key) {
  const json* value = find_field(body, key);
  if (!value) return std::nullopt;
  if (value->is_number_integer()) return value->get<int64_t>();
  // 256.0 is an integer too (some clients write every number as a double).
  if (value->is_number_float()) {
    const double v = value->get<double>();
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e18)
      return static_cast<int64_t>(v);
  }
  fail("field `", key, "` must be an integer, not ", show_json(*value));
}

double number_field(const json& body, const char* key, double fallback, double min, double max) {
  const json* value = find_field(body, key);
  if (!value) return fallback;
  if (!value->is_number()) fail("field `", key, "` must be a number, not ", show_json(*value));
  const double v = value->get<double>();
  if (!std::isfinite(v) || v < min || v > max)
    fail("field `", key, "` is ", show_json(*value), "; it must lie in [", min, ", ", max, "]");
  return v;
}

}  // namespace expo
