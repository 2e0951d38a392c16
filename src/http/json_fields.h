#pragma once
// Reading the fields of an OpenAI-style request body strictly, with errors that name the field:
// what the server reads of chat and completion requests (serve_request) and the generation
// fields both sides share (openai_protocol). A field that is absent or null reads as absent.
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace expo {

// A JSON value as an error message shows it: short, one line.
std::string show_json(const nlohmann::json& value);

// The field, or nullptr when it is absent or null.
const nlohmann::json* find_field(const nlohmann::json& object, const char* key);

// expo::Error "field `KEY` must be ..." when present with the wrong type or out of range.
bool bool_field(const nlohmann::json& body, const char* key, bool fallback);
// Integers written as doubles (256.0) read as integers too.
std::optional<int64_t> integer_field(const nlohmann::json& body, const char* key);
// A finite number in [min, max].
double number_field(const nlohmann::json& body, const char* key, double fallback, double min,
                    double max);

}  // namespace expo
