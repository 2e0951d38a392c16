#pragma once
// The Jinja lexer: template text to tokens, following jinja2/lexer.py rule for rule (newline
// normalisation, the trailing newline, `{%-`/`-%}` whitespace control, trim_blocks and
// lstrip_blocks, raw blocks, comments, and which characters make a name, number or string).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace expo::jinja {

struct LexOptions {
  bool trim_blocks = true;  // transformers sets both
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

enum class TokenType {
  kData,
  kVariableBegin,
  kVariableEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInteger,
  kFloat,
  kOperator,
  kEof,
};

struct Token {
  TokenType type;
  std::string value;  // data text, name, operator, or the unescaped string
  int64_t integer = 0;
  double number = 0;
  int line = 1;    // of the token's first character, 1-based
  int column = 1;  // in characters, 1-based
};

// Throws TemplateError (with line and column) on text jinja2 would refuse: unbalanced brackets,
// an unexpected character, a comment or raw block without its end, a bad string escape.
std::vector<Token> tokenize(std::string_view source, const LexOptions& options);

// The normalised source (newlines as "\n", the trailing newline dropped unless kept) that token
// positions refer to.
std::string normalize_source(std::string_view source, const LexOptions& options);

}  // namespace expo::jinja
