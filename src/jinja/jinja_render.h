#pragma once
// Executes a parsed template with jinja2's scoping: a for loop gives each iteration a fresh
// scope (assignments in the body do not outlive the iteration, namespace() attributes do), if
// blocks share their enclosing scope, macros see the scope they were defined in as it is when
// they are called, and `caller` renders a call block's body.
#include <functional>
#include <string>

#include "jinja/jinja_ast.h"

namespace expo::jinja {

struct RenderOptions {
  std::function<std::string(const std::string& format)> strftime_now;
};

// `variables` is a dict; its entries shadow the globals. Throws TemplateError.
std::string render(const Body& body, const Value& variables, const RenderOptions& options);

}  // namespace expo::jinja
