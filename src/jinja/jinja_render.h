#pragma once
// Executes a parsed template with jinja2's scoping: a for loop gives each iteration a fresh
// scope (assignments in the body do not outlive the iteration, namespace() attributes do), if
// blocks share their enclosing scope, macros see the scope they were defined in as it is when
// they are called, and `caller` renders a call block's body.
#include <cstdint>
#include <functional>
#include <string>

#include "jinja/jinja_ast.h"

namespace expo::jinja {

struct RenderOptions {
  std::function<std::string(const std::string& format)> strftime_now;
  uint64_t max_ops = UINT64_MAX;           // statements, expressions and loop iterations
  uint64_t max_output_bytes = UINT64_MAX;  // the output, and any string value
  uint64_t max_items = UINT64_MAX;         // any list, tuple or dict value
};

// `variables` is a dict; its entries shadow the globals. Throws TemplateError.
std::string render(const Body& body, const Value& variables, const RenderOptions& options);

}  // namespace expo::jinja
