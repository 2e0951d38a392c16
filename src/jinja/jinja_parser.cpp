#include "jinja/jinja_parser.h"

#include <algorithm>
#include <set>

#include "jinja/jinja_builtins.h"

namespace expo::jinja {

namespace {

const std::set<std::string> kCompareOperators = {"==", "!=", "<", "<=", ">", ">="};

std::string compare_op_name(const std::string& op) {
  if (op == "==") return "eq";
  if (op == "!=") return "ne";
  if (op == "<") return "lt";
  if (op == "<=") return "lteq";
  if (op == ">") return "gt";
  return "gteq";
}

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::kName:
    case TokenType::kOperator:
      return t.value;
    case TokenType::kData:
      return "template data / text";
    case TokenType::kVariableBegin:
      return "begin of print statement";
    case TokenType::kVariableEnd:
      return "end of print statement";
    case TokenType::kBlockBegin:
      return "begin of statement block";
    case TokenType::kBlockEnd:
      return "end of statement block";
    case TokenType::kString:
      return "string";
    case TokenType::kInteger:
      return "integer";
    case TokenType::kFloat:
      return "float";
    case TokenType::kEof:
      return "end of template";
  }
  return "token";
}

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : tokens_(tokens) {}

  Body parse_template() {
    Body body = subparse({});
    return body;
  }

 private:
  const std::vector<Token>& tokens_;
  size_t pos_ = 0;
  int depth_ = 0;  // nesting of expressions, bounded so that a hostile template cannot
                   // overflow the stack (jinja2 would hit Python's recursion limit)
  std::vector<std::string> tag_stack_;

  struct Nesting {
    explicit Nesting(Parser& p) : parser(p) {
      if (++parser.depth_ > 600) parser.fail("expression nested too deeply");
    }
    ~Nesting() { --parser.depth_; }
    Parser& parser;
  };
  std::vector<std::vector<std::string>> end_token_stack_;

  const Token& current() const { return tokens_[pos_]; }
  const Token& look() const { return tokens_[std::min(pos_ + 1, tokens_.size() - 1)]; }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (t.type != TokenType::kEof) ++pos_;
    return t;
  }
  bool is_name(const Token& t, const char* value) const {
    return t.type == TokenType::kName && t.value == value;
  }
  bool is_op(const Token& t, const char* value) const {
    return t.type == TokenType::kOperator && t.value == value;
  }
  bool skip_name(const char* value) {
    if (!is_name(current(), value)) return false;
    next();
    return true;
  }
  bool skip_op(const char* value) {
    if (!is_op(current(), value)) return false;
    next();
    return true;
  }

  [[noreturn]] void fail(const std::string& message, const Token& at) const {
    throw TemplateError(message, at.line, at.column);
  }
  [[noreturn]] void fail(const std::string& message) const { fail(message, current()); }

  void expected(const std::string& what) const {
    if (current().type == TokenType::kEof)
      fail("unexpected end of template, expected '" + what + "'.");
    fail("expected token '" + what + "', got '" + describe(current()) + "'");
  }
  const Token& expect_type(TokenType type, const std::string& what) {
    if (current().type != type) expected(what);
    return next();
  }
  const Token& expect_op(const char* op) {
    if (!is_op(current(), op)) expected(op);
    return next();
  }
  const Token& expect_name(const char* value) {
    if (!is_name(current(), value)) expected(value);
    return next();
  }
  const Token& expect_any_name() { return expect_type(TokenType::kName, "name"); }

  ExprPtr make(Expr::Kind kind, const Token& at) const {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }
  StmtPtr make_stmt(Stmt::Kind kind, const Token& at) const {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->column = at.column;
    return s;
  }

  // -------------------------------------------------------------------------------------------
  // Statements

  [[noreturn]] void fail_unknown_tag_or_eof(const std::string* name,
                                            const std::vector<std::vector<std::string>>& stack,
                                            const Token& at) const {
    std::set<std::string> expected_names;
    for (const auto& tokens : stack) expected_names.insert(tokens.begin(), tokens.end());
    std::string looking;
    if (!stack.empty()) {
      for (size_t i = 0; i < stack.back().size(); ++i)
        looking += (i ? " or '" : "'") + stack.back()[i] + "'";
    }
    std::string message =
        name ? "Encountered unknown tag '" + *name + "'." : "Unexpected end of template.";
    if (!looking.empty()) {
      if (name && expected_names.count(*name))
        message +=
            " You probably made a nesting mistake. Jinja is expecting this tag, but "
            "currently looking for " +
            looking + ".";
      else
        message += " Jinja was looking for the following tags: " + looking + ".";
    }
    if (!tag_stack_.empty())
      message += " The innermost block that needs to be closed is '" + tag_stack_.back() + "'.";
    fail(message, at);
  }

  Body subparse(const std::vector<std::string>& end_tokens) {
    Body body;
    const bool has_end = !end_tokens.empty();
    if (has_end) end_token_stack_.push_back(end_tokens);
    while (current().type != TokenType::kEof) {
      const Token& token = current();
      if (token.type == TokenType::kData) {
        auto s = make_stmt(Stmt::Kind::kText, token);
        s->text = token.value;
        body.push_back(std::move(s));
        next();
      } else if (token.type == TokenType::kVariableBegin) {
        next();
        auto s = make_stmt(Stmt::Kind::kPrint, current());
        s->expr = parse_tuple(false, true, {}, false);
        expect_type(TokenType::kVariableEnd, "end of print statement");
        body.push_back(std::move(s));
      } else if (token.type == TokenType::kBlockBegin) {
        next();
        if (has_end && current().type == TokenType::kName &&
            std::find(end_tokens.begin(), end_tokens.end(), current().value) != end_tokens.end()) {
          end_token_stack_.pop_back();
          return body;
        }
        parse_statement(body);
        expect_type(TokenType::kBlockEnd, "end of statement block");
      } else {
        fail("internal parsing error");
      }
    }
    if (has_end) end_token_stack_.pop_back();
    return body;
  }

  Body parse_statements(const std::vector<std::string>& end_tokens, bool drop_needle) {
    skip_op(":");
    expect_type(TokenType::kBlockEnd, "end of statement block");
    Body result = subparse(end_tokens);
    if (current().type == TokenType::kEof) {
      auto stack = end_token_stack_;
      stack.push_back(end_tokens);
      fail_unknown_tag_or_eof(nullptr, stack, current());
    }
    if (drop_needle) next();
    return result;
  }

  void parse_statement(Body& body) {
    const Token& token = current();
    if (token.type != TokenType::kName) fail("tag name expected", token);
    const std::string tag = token.value;
    static const std::set<std::string> kUnsupported = {"block",  "extends", "include",
                                                       "import", "from",    "autoescape"};
    if (kUnsupported.count(tag))
      fail("the '" + tag +
               "' tag is not supported by expo's Jinja engine (chat templates are "
               "rendered without a loader)",
           token);
    static const std::set<std::string> kKnown = {"for",   "if",       "set",       "with",
                                                 "print", "macro",    "call",      "filter",
                                                 "break", "continue", "generation"};
    if (!kKnown.count(tag)) fail_unknown_tag_or_eof(&tag, end_token_stack_, token);
    tag_stack_.push_back(tag);
    if (tag == "for")
      body.push_back(parse_for());
    else if (tag == "if")
      body.push_back(parse_if());
    else if (tag == "set")
      body.push_back(parse_set());
    else if (tag == "with")
      body.push_back(parse_with());
    else if (tag == "macro")
      body.push_back(parse_macro());
    else if (tag == "call")
      body.push_back(parse_call_block());
    else if (tag == "filter")
      body.push_back(parse_filter_block());
    else if (tag == "print")
      parse_print(body);
    else if (tag == "generation")
      body.push_back(parse_generation());
    else
      body.push_back(
          make_stmt(tag == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue, next()));
    tag_stack_.pop_back();
  }

  StmtPtr parse_set() {
    auto s = make_stmt(Stmt::Kind::kSet, next());
    s->target = parse_assign_target(true, false, {}, true);
    if (skip_op("=")) {
      s->expr = parse_tuple(false, true, {}, false);
      return s;
    }
    s->kind = Stmt::Kind::kSetBlock;
    s->expr = parse_filter(nullptr, false);
    s->body = parse_statements({"endset"}, true);
    return s;
  }

  StmtPtr parse_for() {
    auto s = make_stmt(Stmt::Kind::kFor, expect_name("for"));
    s->target = parse_assign_target(true, false, {"in"}, false);
    expect_name("in");
    s->expr = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) s->test = parse_expression(true);
    s->recursive = skip_name("recursive");
    s->body = parse_statements({"endfor", "else"}, false);
    if (next().value != "endfor") s->else_body = parse_statements({"endfor"}, true);
    return s;
  }

  StmtPtr parse_if() {
    auto s = make_stmt(Stmt::Kind::kIf, expect_name("if"));
    while (true) {
      ExprPtr test = parse_tuple(false, false, {}, false);
      Body body = parse_statements({"elif", "else", "endif"}, false);
      s->branches.emplace_back(std::move(test), std::move(body));
      const Token& token = next();
      if (token.value == "elif") continue;
      if (token.value == "else") s->else_body = parse_statements({"endif"}, true);
      break;
    }
    return s;
  }

  StmtPtr parse_with() {
    auto s = make_stmt(Stmt::Kind::kWith, next());
    while (current().type != TokenType::kBlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(parse_assign_target(true, false, {}, false));
      expect_op("=");
      s->values.push_back(parse_expression(true));
    }
    s->body = parse_statements({"endwith"}, true);
    return s;
  }

  void parse_signature(Stmt& s) {
    expect_op("(");
    while (!is_op(current(), ")")) {
      if (!s.params.empty()) expect_op(",");
      ExprPtr arg = parse_assign_target(false, true, {}, false);
      if (skip_op("=")) {
        s.defaults.push_back(parse_expression(true));
      } else if (!s.defaults.empty()) {
        fail("non-default argument follows default argument");
      }
      s.params.push_back(arg->name);
    }
    expect_op(")");
  }

  static void scan_names(const Expr* e, Stmt& s) {
    if (!e) return;
    if (e->kind == Expr::Kind::kName) {
      if (e->name == "varargs") s.catch_varargs = true;
      if (e->name == "kwargs") s.catch_kwargs = true;
      if (e->name == "caller") s.uses_caller = true;
    }
    scan_names(e->a.get(), s);
    scan_names(e->b.get(), s);
    scan_names(e->c.get(), s);
    scan_names(e->dyn_args.get(), s);
    scan_names(e->dyn_kwargs.get(), s);
    for (const auto& item : e->items) scan_names(item.get(), s);
    for (const auto& kw : e->kwargs) scan_names(kw.second.get(), s);
  }

  static void scan_body(const Body& body, Stmt& s) {
    for (const auto& st : body) {
      scan_names(st->expr.get(), s);
      scan_names(st->test.get(), s);
      for (const auto& d : st->defaults) scan_names(d.get(), s);
      for (const auto& v : st->values) scan_names(v.get(), s);
      for (const auto& [test, b] : st->branches) {
        scan_names(test.get(), s);
        scan_body(b, s);
      }
      scan_body(st->body, s);
      scan_body(st->else_body, s);
    }
  }

  StmtPtr parse_macro() {
    auto s = make_stmt(Stmt::Kind::kMacro, next());
    s->name = parse_assign_target(false, true, {}, false)->name;
    parse_signature(*s);
    s->body = parse_statements({"endmacro"}, true);
    scan_body(s->body, *s);
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = make_stmt(Stmt::Kind::kCallBlock, next());
    if (is_op(current(), "(")) parse_signature(*s);
    const Token& at = current();
    s->expr = parse_expression(true);
    if (s->expr->kind != Expr::Kind::kCall) fail("expected call", at);
    s->body = parse_statements({"endcall"}, true);
    scan_body(s->body, *s);
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = make_stmt(Stmt::Kind::kFilterBlock, next());
    s->expr = parse_filter(nullptr, true);
    s->body = parse_statements({"endfilter"}, true);
    return s;
  }

  void parse_print(Body& body) {
    const Token& at = next();
    bool first = true;
    while (current().type != TokenType::kBlockEnd) {
      if (!first) expect_op(",");
      first = false;
      auto s = make_stmt(Stmt::Kind::kPrint, at);
      s->expr = parse_expression(true);
      body.push_back(std::move(s));
    }
  }

  StmtPtr parse_generation() {
    auto s = make_stmt(Stmt::Kind::kGeneration, next());
    s->body = parse_statements({"endgeneration"}, true);
    return s;
  }

  // -------------------------------------------------------------------------------------------
  // Expressions

  ExprPtr parse_assign_target(bool with_tuple, bool name_only,
                              const std::vector<std::string>& extra_end_rules,
                              bool with_namespace) {
    ExprPtr target;
    if (with_namespace && is_op(look(), ".")) {
      const Token& token = expect_any_name();
      next();  // the dot
      const Token& attr = expect_any_name();
      target = make(Expr::Kind::kNsRef, token);
      target->name = token.value;
      target->attr = attr.value;
      return target;
    }
    if (name_only) {
      const Token& token = expect_any_name();
      target = make(Expr::Kind::kName, token);
      target->name = token.value;
    } else if (with_tuple) {
      target = parse_tuple(true, true, extra_end_rules, false);
    } else {
      target = parse_primary();
    }
    check_assignable(*target);
    return target;
  }

  void check_assignable(const Expr& target) const {
    if (target.kind == Expr::Kind::kName) {
      static const std::set<std::string> kReserved = {"true", "false", "none",
                                                      "True", "False", "None"};
      if (!kReserved.count(target.name)) return;
    }
    if (target.kind == Expr::Kind::kTuple) {
      for (const auto& item : target.items) check_assignable(*item);
      return;
    }
    std::string kind = target.kind == Expr::Kind::kConst ? "const" : "expression";
    throw TemplateError("can't assign to '" + kind + "'", target.line, target.column);
  }

  ExprPtr parse_expression(bool with_condexpr) {
    Nesting nesting(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    ExprPtr expr1 = parse_or();
    while (is_name(current(), "if")) {
      const Token& at = next();
      auto node = make(Expr::Kind::kCondExpr, at);
      node->b = parse_or();
      if (skip_name("else")) node->c = parse_condexpr();
      node->a = std::move(expr1);
      expr1 = std::move(node);
    }
    return expr1;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name(current(), "or")) {
      auto node = make(Expr::Kind::kOr, next());
      node->a = std::move(left);
      node->b = parse_and();
      left = std::move(node);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name(current(), "and")) {
      auto node = make(Expr::Kind::kAnd, next());
      node->a = std::move(left);
      node->b = parse_not();
      left = std::move(node);
    }
    return left;
  }

  ExprPtr parse_not() {
    Nesting nesting(*this);
    if (is_name(current(), "not")) {
      auto node = make(Expr::Kind::kNot, next());
      node->a = parse_not();
      return node;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token& start = current();
    ExprPtr expr = parse_math1();
    ExprPtr node;
    while (true) {
      const Token& token = current();
      std::string op;
      if (token.type == TokenType::kOperator && kCompareOperators.count(token.value)) {
        op = compare_op_name(token.value);
        next();
      } else if (is_name(token, "in")) {
        op = "in";
        next();
      } else if (is_name(token, "not") && is_name(look(), "in")) {
        op = "notin";
        next();
        next();
      } else {
        break;
      }
      if (!node) {
        node = make(Expr::Kind::kCompare, start);
        node->a = std::move(expr);
      }
      node->ops.push_back(op);
      node->items.push_back(parse_math1());
    }
    return node ? std::move(node) : std::move(expr);
  }

  ExprPtr binary(const Token& at, const std::string& op, ExprPtr left, ExprPtr right) {
    auto node = make(Expr::Kind::kBinary, at);
    node->name = op;
    node->a = std::move(left);
    node->b = std::move(right);
    return node;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op(current(), "+") || is_op(current(), "-")) {
      const Token& at = next();
      left = binary(at, at.value, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    const Token& start = current();
    ExprPtr first = parse_math2();
    if (!is_op(current(), "~")) return first;
    auto node = make(Expr::Kind::kConcat, start);
    node->items.push_back(std::move(first));
    while (skip_op("~")) node->items.push_back(parse_math2());
    return node;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op(current(), "*") || is_op(current(), "/") || is_op(current(), "//") ||
           is_op(current(), "%")) {
      const Token& at = next();
      left = binary(at, at.value, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op(current(), "**")) {
      const Token& at = next();
      left = binary(at, "**", std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    Nesting nesting(*this);
    ExprPtr node;
    if (is_op(current(), "-") || is_op(current(), "+")) {
      const Token& at = next();
      node = make(at.value == "-" ? Expr::Kind::kNeg : Expr::Kind::kPos, at);
      node->a = parse_unary(false);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& token = current();
    ExprPtr node;
    if (token.type == TokenType::kName) {
      const std::string& v = token.value;
      if (v == "true" || v == "True" || v == "false" || v == "False") {
        node = make(Expr::Kind::kConst, token);
        node->value = Value(v == "true" || v == "True");
      } else if (v == "none" || v == "None") {
        node = make(Expr::Kind::kConst, token);
        node->value = Value::none();
      } else {
        node = make(Expr::Kind::kName, token);
        node->name = v;
      }
      next();
    } else if (token.type == TokenType::kString) {
      node = make(Expr::Kind::kConst, token);
      std::string s;
      while (current().type == TokenType::kString) s += next().value;
      node->value = Value(std::move(s));
    } else if (token.type == TokenType::kInteger) {
      node = make(Expr::Kind::kConst, token);
      node->value = Value(token.integer);
      next();
    } else if (token.type == TokenType::kFloat) {
      node = make(Expr::Kind::kConst, token);
      node->value = Value(token.number);
      next();
    } else if (is_op(token, "(")) {
      next();
      node = parse_tuple(false, true, {}, true);
      expect_op(")");
    } else if (is_op(token, "[")) {
      node = parse_list();
    } else if (is_op(token, "{")) {
      node = parse_dict();
    } else {
      fail("unexpected '" + describe(token) + "'", token);
    }
    return node;
  }

  bool is_tuple_end(const std::vector<std::string>& extra_end_rules) const {
    const Token& t = current();
    if (t.type == TokenType::kVariableEnd || t.type == TokenType::kBlockEnd || is_op(t, ")"))
      return true;
    if (t.type == TokenType::kName)
      return std::find(extra_end_rules.begin(), extra_end_rules.end(), t.value) !=
             extra_end_rules.end();
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr,
                      const std::vector<std::string>& extra_end_rules, bool explicit_parentheses) {
    const Token& start = current();
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end_rules)) break;
      if (simplified)
        args.push_back(parse_primary());
      else
        args.push_back(parse_expression(with_condexpr));
      if (is_op(current(), ","))
        is_tuple = true;
      else
        break;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parentheses) fail("Expected an expression, got '" + describe(current()) + "'");
    }
    auto node = make(Expr::Kind::kTuple, start);
    node->items = std::move(args);
    return node;
  }

  ExprPtr parse_list() {
    auto node = make(Expr::Kind::kList, expect_op("["));
    while (!is_op(current(), "]")) {
      if (!node->items.empty()) expect_op(",");
      if (is_op(current(), "]")) break;
      node->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return node;
  }

  ExprPtr parse_dict() {
    auto node = make(Expr::Kind::kDict, expect_op("{"));
    while (!is_op(current(), "}")) {
      if (!node->items.empty()) expect_op(",");
      if (is_op(current(), "}")) break;
      node->items.push_back(parse_expression(true));
      expect_op(":");
      node->items.push_back(parse_expression(true));
    }
    expect_op("}");
    return node;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(current(), ".") || is_op(current(), "["))
        node = parse_subscript(std::move(node));
      else if (is_op(current(), "("))
        node = parse_call(std::move(node));
      else
        break;
    }
    return node;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op(current(), "|"))
        node = parse_filter(std::move(node), false);
      else if (is_name(current(), "is"))
        node = parse_test(std::move(node));
      else if (is_op(current(), "("))
        node = parse_call(std::move(node));
      else
        break;
    }
    return node;
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& token = next();
    if (token.value == ".") {
      const Token& attr = next();
      if (attr.type == TokenType::kName) {
        auto n = make(Expr::Kind::kGetattr, token);
        n->a = std::move(node);
        n->name = attr.value;
        return n;
      }
      if (attr.type != TokenType::kInteger) fail("expected name or number", attr);
      auto n = make(Expr::Kind::kGetitem, token);
      n->a = std::move(node);
      n->b = make(Expr::Kind::kConst, attr);
      n->b->value = Value(attr.integer);
      return n;
    }
    std::vector<ExprPtr> args;
    while (!is_op(current(), "]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto n = make(Expr::Kind::kGetitem, token);
    n->a = std::move(node);
    if (args.size() == 1) {
      n->b = std::move(args[0]);
    } else {
      n->b = make(Expr::Kind::kTuple, token);
      n->b->items = std::move(args);
    }
    return n;
  }

  ExprPtr parse_subscribed() {
    const Token& start = current();
    std::vector<ExprPtr> args;
    if (is_op(current(), ":")) {
      next();
      args.push_back(nullptr);
    } else {
      ExprPtr node = parse_expression(true);
      if (!is_op(current(), ":")) return node;
      next();
      args.push_back(std::move(node));
    }
    if (is_op(current(), ":")) {
      args.push_back(nullptr);
    } else if (!is_op(current(), "]") && !is_op(current(), ",")) {
      args.push_back(parse_expression(true));
    } else {
      args.push_back(nullptr);
    }
    if (is_op(current(), ":")) {
      next();
      if (!is_op(current(), "]") && !is_op(current(), ","))
        args.push_back(parse_expression(true));
      else
        args.push_back(nullptr);
    } else {
      args.push_back(nullptr);
    }
    auto node = make(Expr::Kind::kSlice, start);
    node->items = std::move(args);
    return node;
  }

  void parse_call_args(Expr& node) {
    const Token& token = expect_op("(");
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) fail("invalid syntax for function call expression", token);
    };
    while (!is_op(current(), ")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(current(), ")")) break;
      }
      if (is_op(current(), "*")) {
        ensure(!node.dyn_args && !node.dyn_kwargs);
        next();
        node.dyn_args = parse_expression(true);
      } else if (is_op(current(), "**")) {
        ensure(!node.dyn_kwargs);
        next();
        node.dyn_kwargs = parse_expression(true);
      } else if (current().type == TokenType::kName && is_op(look(), "=")) {
        ensure(!node.dyn_kwargs);
        const std::string key = next().value;
        next();
        node.kwargs.emplace_back(key, parse_expression(true));
      } else {
        ensure(!node.dyn_args && !node.dyn_kwargs && node.kwargs.empty());
        node.items.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    auto call = make(Expr::Kind::kCall, current());
    call->a = std::move(node);
    parse_call_args(*call);
    return call;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op(current(), "|") || start_inline) {
      // Errors of a filter point at its "|", as errors of an operator point at the operator.
      const Token pipe = current();
      if (!start_inline) next();
      const Token& token = expect_any_name();
      auto filter = make(Expr::Kind::kFilter, start_inline ? token : pipe);
      filter->name = token.value;
      while (is_op(current(), ".")) {
        next();
        filter->name += "." + expect_any_name().value;
      }
      if (is_op(current(), "(")) parse_call_args(*filter);
      filter->a = std::move(node);
      node = std::move(filter);
      start_inline = false;
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const Token& token = next();  // `is`
    const bool negated = skip_name("not");
    const Token& name_token = expect_any_name();
    auto test = make(Expr::Kind::kTest, name_token);
    test->name = name_token.value;
    while (is_op(current(), ".")) {
      next();
      test->name += "." + expect_any_name().value;
    }
    const Token& t = current();
    if (is_op(t, "(")) {
      parse_call_args(*test);
    } else if ((t.type == TokenType::kName || t.type == TokenType::kString ||
                t.type == TokenType::kInteger || t.type == TokenType::kFloat || is_op(t, "(") ||
                is_op(t, "[") || is_op(t, "{")) &&
               !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and")) {
      if (is_name(t, "is")) fail("You cannot chain multiple tests with is");
      test->items.push_back(parse_postfix(parse_primary()));
    }
    test->a = std::move(node);
    if (!negated) return test;
    auto not_node = make(Expr::Kind::kNot, token);
    not_node->a = std::move(test);
    return not_node;
  }
};

// What jinja2's compiler checks before rendering. An if statement and a conditional
// expression are "soft" frames where unknown filters and tests fail only when evaluated;
// loops, macros, call/filter/set blocks and with start hard frames again.
class Checker {
 public:
  void body(const Body& b, bool soft, bool in_loop) {
    for (const auto& s : b) stmt(*s, soft, in_loop);
  }

 private:
  void stmt(const Stmt& s, bool soft, bool in_loop) {
    switch (s.kind) {
      case Stmt::Kind::kText:
        return;
      case Stmt::Kind::kPrint:
      case Stmt::Kind::kSet:
        expr(s.expr.get(), soft);
        return;
      case Stmt::Kind::kIf:
        for (const auto& [test, b] : s.branches) {
          expr(test.get(), true);
          body(b, true, in_loop);
        }
        body(s.else_body, true, in_loop);
        return;
      case Stmt::Kind::kFor:
        expr(s.expr.get(), soft);
        expr(s.test.get(), false);
        body(s.body, false, true);
        body(s.else_body, soft, in_loop);
        return;
      case Stmt::Kind::kSetBlock:
      case Stmt::Kind::kFilterBlock:
        expr(s.expr.get(), false);
        body(s.body, false, in_loop);
        return;
      case Stmt::Kind::kMacro:
        for (const auto& d : s.defaults) expr(d.get(), false);
        body(s.body, false, false);
        return;
      case Stmt::Kind::kCallBlock:
        for (const auto& d : s.defaults) expr(d.get(), false);
        expr(s.expr.get(), soft);
        body(s.body, false, false);
        return;
      case Stmt::Kind::kWith:
        for (const auto& v : s.values) expr(v.get(), soft);
        body(s.body, false, in_loop);
        return;
      case Stmt::Kind::kBreak:
      case Stmt::Kind::kContinue:
        if (!in_loop)
          throw TemplateError(std::string("'") +
                                  (s.kind == Stmt::Kind::kBreak ? "break" : "continue") +
                                  "' outside loop",
                              s.line, s.column);
        return;
      case Stmt::Kind::kGeneration:
        body(s.body, false, false);
        return;
    }
  }

  void expr(const Expr* e, bool soft) {
    if (!e) return;
    if (e->kind == Expr::Kind::kCondExpr) soft = true;
    if (!soft && e->kind == Expr::Kind::kFilter && !has_filter(e->name))
      throw TemplateError("No filter named '" + e->name + "'.", e->line, e->column);
    if (!soft && e->kind == Expr::Kind::kTest && !has_test(e->name))
      throw TemplateError("No test named '" + e->name + "'.", e->line, e->column);
    expr(e->a.get(), soft);
    expr(e->b.get(), soft);
    expr(e->c.get(), soft);
    expr(e->dyn_args.get(), soft);
    expr(e->dyn_kwargs.get(), soft);
    for (const auto& item : e->items) expr(item.get(), soft);
    for (const auto& kw : e->kwargs) expr(kw.second.get(), soft);
  }
};

}  // namespace

Body parse(const std::vector<Token>& tokens) {
  Body body = Parser(tokens).parse_template();
  Checker().body(body, false, false);
  return body;
}

}  // namespace expo::jinja
