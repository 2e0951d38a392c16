#pragma once
// The syntax tree of a Jinja template, as jinja2/nodes.py shapes it (only the nodes chat
// templates can produce: no extends/include/import/block).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/jinja_value.h"

namespace expo::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kConst,     // value
    kName,      // name
    kNsRef,     // name.attr as an assignment target: name, attr
    kGetattr,   // a.attr: a, name = attr
    kGetitem,   // a[b]: a, b (b may be a kSlice)
    kSlice,     // start:stop:step: items = {start, stop, step}, each may be null
    kCall,      // a(args): a, items = positional, kwargs, dyn_args, dyn_kwargs
    kFilter,    // a|name(args): a (null inside {% filter %} and {% set x | f %}), name, args
    kTest,      // a is name(args): a, name, args
    kNot,       // not a
    kNeg,       // -a
    kPos,       // +a
    kBinary,    // a op b: op in + - * / // % **
    kAnd,       // a and b
    kOr,        // a or b
    kConcat,    // items joined with ~
    kCompare,   // a op1 items[0] op2 items[1] ...: ops
    kCondExpr,  // a if b else c (c may be null)
    kList,      // items
    kTuple,     // items
    kDict,      // items = key0, value0, key1, value1, ...
  };
  Kind kind;
  int line = 0;
  int column = 0;
  Value value;
  std::string name;  // kName, kGetattr, kFilter, kTest, kNsRef; kBinary: the operator
  std::string attr;  // kNsRef
  ExprPtr a, b, c;
  std::vector<ExprPtr> items;
  std::vector<std::string> ops;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  ExprPtr dyn_args, dyn_kwargs;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    kText,         // text
    kPrint,        // {{ expr }}
    kIf,           // branches (test, body)..., else_body
    kFor,          // for target in expr [if test] [recursive]: body [else else_body]
    kSet,          // set target = expr
    kSetBlock,     // set target [| filter]: body endset
    kMacro,        // macro name(params=defaults): body
    kCallBlock,    // call(params) expr: body   (the body becomes `caller`)
    kFilterBlock,  // filter expr: body   (expr is a kFilter chain with a null innermost operand)
    kWith,         // with targets = values: body
    kBreak,
    kContinue,
    kGeneration,  // transformers' AssistantTracker: {% generation %}body{% endgeneration %}
  };
  Kind kind;
  int line = 0;
  int column = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr target;
  ExprPtr test;
  bool recursive = false;
  Body body;
  Body else_body;
  std::vector<std::pair<ExprPtr, Body>> branches;
  // Macros and call blocks.
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  bool catch_varargs = false;     // the body reads `varargs`
  bool catch_kwargs = false;      // the body reads `kwargs`
  bool uses_caller = false;       // the body reads `caller`
  // With.
  std::vector<ExprPtr> targets;
  std::vector<ExprPtr> values;
};

}  // namespace expo::jinja
