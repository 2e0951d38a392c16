#include "core/json_reader.h"

#include "core/error.h"

namespace expo {

std::string json_brief(const Json& j) {
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

void JsonReader::error(const std::string& path, const std::string& message) const {
  fail(file_, ": ", path.empty() ? "(top level)" : path, ": ", message);
}

std::string JsonReader::child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string JsonReader::index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

void JsonReader::expect_object(const Json& j, const std::string& path) const {
  if (!j.is_object()) error(path, "expected an object, found " + json_brief(j));
}

void JsonReader::expect_array(const Json& j, const std::string& path) const {
  if (!j.is_array()) error(path, "expected an array, found " + json_brief(j));
}

void JsonReader::allow_only(const Json& obj, const std::string& path,
                            std::initializer_list<std::string_view> allowed) const {
  expect_object(obj, path);
  for (const auto& [key, value] : obj.items()) {
    bool known = false;
    for (auto a : allowed) known |= key == a;
    if (!known) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      error(child(path, key), "unknown field (expo knows: " + list +
                                  "); expo refuses what it does not implement rather than "
                                  "ignore it");
    }
  }
}

std::string JsonReader::type(const Json& obj, const std::string& path) const {
  expect_object(obj, path);
  return get_string(obj, path, "type");
}

const Json& JsonReader::get(const Json& obj, const std::string& path, std::string_view key) const {
  const auto it = obj.find(key);
  if (it == obj.end()) error(child(path, key), "missing");
  return *it;
}

std::string JsonReader::get_string(const Json& obj, const std::string& path,
                                   std::string_view key) const {
  const auto it = obj.find(key);
  if (it == obj.end()) error(child(path, key), "missing (a string is required)");
  if (!it->is_string()) error(child(path, key), "expected a string, found " + json_brief(*it));
  return it->get<std::string>();
}

std::optional<std::string> JsonReader::opt_string(const Json& obj, const std::string& path,
                                                  std::string_view key) const {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) error(child(path, key), "expected a string, found " + json_brief(*it));
  return it->get<std::string>();
}

bool JsonReader::get_bool(const Json& obj, const std::string& path, std::string_view key,
                          std::optional<bool> fallback) const {
  const auto it = obj.find(key);
  if (it == obj.end() || (it->is_null() && fallback)) {
    if (fallback) return *fallback;
    error(child(path, key), "missing (true or false is required)");
  }
  if (!it->is_boolean())
    error(child(path, key), "expected true or false, found " + json_brief(*it));
  return it->get<bool>();
}

int64_t JsonReader::get_int(const Json& obj, const std::string& path, std::string_view key,
                            int64_t min, int64_t max, std::optional<int64_t> fallback) const {
  const auto it = obj.find(key);
  if (it == obj.end()) {
    if (fallback) return *fallback;
    error(child(path, key), "missing (an integer is required)");
  }
  if (!it->is_number_integer())
    error(child(path, key), "expected an integer, found " + json_brief(*it));
  const int64_t v =
      it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX ? INT64_MAX : it->get<int64_t>();
  if (v < min || v > max)
    error(child(path, key),
          max == INT64_MAX
              ? "must be at least " + std::to_string(min) + ", found " + std::to_string(v)
              : "value " + std::to_string(v) + " is outside [" + std::to_string(min) + ", " +
                    std::to_string(max) + "]");
  return v;
}

double JsonReader::get_number(const Json& obj, const std::string& path, std::string_view key,
                              std::optional<double> fallback) const {
  const auto it = obj.find(key);
  if (it == obj.end() || (it->is_null() && fallback)) {
    if (fallback) return *fallback;
    error(child(path, key), "missing (a number is required)");
  }
  if (!it->is_number()) error(child(path, key), "expected a number, found " + json_brief(*it));
  return it->get<double>();
}

const Json& JsonReader::get_array(const Json& obj, const std::string& path,
                                  std::string_view key) const {
  const auto it = obj.find(key);
  if (it == obj.end()) error(child(path, key), "missing (an array is required)");
  expect_array(*it, child(path, key));
  return *it;
}

}  // namespace expo
