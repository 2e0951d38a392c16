#pragma once
// The Jinja parser: tokens to a syntax tree, following jinja2/parser.py (operator precedence,
// tuples without parentheses, tests with a bare argument, `{% set %}` blocks and namespaces,
// macros and call blocks) plus the tags of the extensions transformers loads: loop controls
// (break, continue) and AssistantTracker's {% generation %}.
#include <vector>

#include "jinja/jinja_ast.h"
#include "jinja/jinja_lexer.h"

namespace expo::jinja {

// Throws TemplateError with the line and column of the offending token. Also refuses what
// jinja2's compiler refuses before rendering: an unknown filter or test outside an if branch or
// conditional expression, and break/continue outside a loop.
Body parse(const std::vector<Token>& tokens);

}  // namespace expo::jinja
