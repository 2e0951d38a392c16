#pragma once
// What jinja2's ImmutableSandboxedEnvironment gives a template besides syntax: attribute and
// item lookup (obj.x tries the attribute first, obj['x'] the item first; methods that would
// modify a list or dict are refused), the methods of str, list and dict, Jinja's filters and
// tests, and the globals (range, dict, namespace, joiner, plus transformers' raise_exception and
// strftime_now).
#include <functional>
#include <string>

#include "jinja/jinja_value.h"

namespace expo::jinja {

Value get_attr(const Value& obj, const std::string& name);  // obj.name
Value get_item(const Value& obj, const Value& key);         // obj[key]
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
Value call(const Value& callee, CallArgs& args);

// Throws TemplateError "No filter named 'x'." / "No test named 'x'." for unknown names.
Value apply_filter(const std::string& name, const Value& input, CallArgs& args);
bool apply_test(const std::string& name, const Value& input, CallArgs& args);
bool has_filter(const std::string& name);
bool has_test(const std::string& name);

// The template globals: range, dict, namespace, joiner, raise_exception (raises a TemplateError
// with the template's message) and strftime_now (formats the time with `strftime_now`).
void add_globals(Dict& globals, std::function<std::string(const std::string&)> strftime_now);

}  // namespace expo::jinja
