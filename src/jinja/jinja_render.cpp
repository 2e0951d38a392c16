#include "jinja/jinja_render.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <unordered_map>

#include "jinja/jinja.h"
#include "jinja/jinja_builtins.h"

namespace expo::jinja {

namespace {

struct Scope {
  explicit Scope(std::shared_ptr<Scope> p) : parent(std::move(p)) {}
  std::shared_ptr<Scope> parent;
  std::unordered_map<std::string, Value> vars;
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow { kNormal, kBreak, kContinue };

// Nested macro calls and recursive loops; deeper templates fail instead of overflowing the
// stack (jinja2 would hit Python's recursion limit at a similar depth).
constexpr int kMaxDepth = 400;

template <typename Node, typename F>
auto located(const Node& node, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (TemplateError& e) {
    if (e.line == 0) {
      e.line = node.line;
      e.column = node.column;
    }
    throw;
  }
}

class Interpreter {
 public:
  explicit Interpreter(const RenderOptions& options) : options_(options) {}

  // Macros live in the scope that defines them and hold it, and a namespace can be given itself
  // as an attribute ({% set ns.x = ns %}): break those cycles at the end.
  ~Interpreter() {
    for (const auto& weak : cycle_roots_)
      if (auto scope = weak.lock()) scope->vars.clear();
    for (const auto& [address, weak] : assigned_namespaces_)
      if (auto attributes = weak.lock()) {
        attributes->entries.clear();
        attributes->index.clear();
      }
  }

  std::string run(const Body& body, const Value& variables) {
    auto globals = std::make_shared<Scope>(nullptr);
    Dict g;
    add_globals(g, options_.strftime_now);
    for (const auto& [k, v] : g.entries) globals->vars[k.str()] = v;
    auto context = std::make_shared<Scope>(globals);
    if (variables.is_dict())
      for (const auto& [k, v] : variables.dict_data().entries)
        if (k.is_string()) context->vars[k.str()] = v;
    auto root = std::make_shared<Scope>(context);
    std::string out;
    exec(body, root, out);
    return out;
  }

 private:
  const RenderOptions& options_;
  uint64_t ops_ = 0;
  int depth_ = 0;
  std::vector<std::weak_ptr<Scope>> cycle_roots_;
  std::unordered_map<const Dict*, std::weak_ptr<Dict>> assigned_namespaces_;

  struct DepthGuard {
    explicit DepthGuard(Interpreter& i) : interp(i) {
      if (++interp.depth_ > kMaxDepth)
        throw TemplateError("maximum recursion depth exceeded (" + std::to_string(kMaxDepth) +
                            " nested macro calls or recursive loops)");
    }
    ~DepthGuard() { --interp.depth_; }
    Interpreter& interp;
  };

  // -------------------------------------------------------------------------------------------
  // Limits (RenderOptions; jinja::Limits documents them)

  void tick() {
    if (++ops_ > options_.max_ops)
      throw TemplateError("the template ran more than " + std::to_string(options_.max_ops) +
                          " operations (statements, expressions and loop iterations) and was "
                          "stopped: it may never end; raise the limit with " +
                          std::string(kMaxOpsEnv) + "=N if it is a real template");
  }

  void check_string(size_t bytes, const char* what) const {
    if (bytes > options_.max_output_bytes)
      throw TemplateError(std::string(what) + " grew past " +
                          std::to_string(options_.max_output_bytes) +
                          " bytes and the template was stopped; raise the limit with " +
                          std::string(kMaxOutputEnv) +
                          "=SIZE (e.g. 256MiB) if it is a real "
                          "template");
  }

  void check_items(size_t items) const {
    if (items > options_.max_items)
      throw TemplateError("a list, tuple or dict grew past " + std::to_string(options_.max_items) +
                          " items and the template was stopped; raise the limit with " +
                          std::string(kMaxItemsEnv) + "=N if it is a real template");
  }

  void check_value(const Value& v) const {
    if (v.is_string())
      check_string(v.str().size(), "a string");
    else if (v.is_sequence_like())
      check_items(v.items().size());
    else if (v.is_dict())
      check_items(v.dict_data().size());
    else if (v.is_iterator())
      check_items(v.iterator_data().items.size());
  }

  static Value lookup(const Scope* scope, const std::string& name) {
    for (; scope; scope = scope->parent.get()) {
      const auto it = scope->vars.find(name);
      if (it != scope->vars.end()) return it->second;
    }
    return Value::undefined_name(name);
  }

  // -------------------------------------------------------------------------------------------
  // Statements

  Flow exec(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const auto& stmt : body) {
      const Flow flow = located(*stmt, [&] {
        tick();
        const Flow f = exec_stmt(*stmt, scope, out);
        check_string(out.size(), "the rendered text");
        return f;
      });
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  Flow exec_stmt(const Stmt& s, const ScopePtr& scope, std::string& out) {
    switch (s.kind) {
      case Stmt::Kind::kText:
        out += s.text;
        return Flow::kNormal;
      case Stmt::Kind::kPrint:
        out += eval(*s.expr, scope).to_str();
        return Flow::kNormal;
      case Stmt::Kind::kIf:
        for (const auto& [test, body] : s.branches)
          if (eval(*test, scope).truthy()) return exec(body, scope, out);
        return exec(s.else_body, scope, out);
      case Stmt::Kind::kFor:
        return run_loop(s, scope, eval(*s.expr, scope), 0, out);
      case Stmt::Kind::kSet:
        assign(*s.target, eval(*s.expr, scope), scope);
        return Flow::kNormal;
      case Stmt::Kind::kSetBlock: {
        std::string captured;
        const Flow flow = exec(s.body, std::make_shared<Scope>(scope), captured);
        if (flow != Flow::kNormal) return flow;
        Value value(std::move(captured));
        if (s.expr) value = apply_chain(*s.expr, value, scope);
        assign(*s.target, value, scope);
        return Flow::kNormal;
      }
      case Stmt::Kind::kMacro:
        scope->vars[s.name] = make_macro(s, scope, s.name);
        cycle_roots_.push_back(scope);
        return Flow::kNormal;
      case Stmt::Kind::kCallBlock: {
        const Expr& call_expr = *s.expr;
        located(call_expr, [&] {
          const Value callee = eval(*call_expr.a, scope);
          CallArgs args = eval_args(call_expr, scope);
          args.keyword.emplace_back("caller", make_macro(s, scope, "caller"));
          out += call(callee, args).to_str();
          return 0;
        });
        return Flow::kNormal;
      }
      case Stmt::Kind::kFilterBlock: {
        std::string captured;
        const Flow flow = exec(s.body, std::make_shared<Scope>(scope), captured);
        if (flow != Flow::kNormal) return flow;
        out += apply_chain(*s.expr, Value(std::move(captured)), scope).to_str();
        return Flow::kNormal;
      }
      case Stmt::Kind::kWith: {
        auto inner = std::make_shared<Scope>(scope);
        for (size_t i = 0; i < s.targets.size(); ++i)
          assign(*s.targets[i], eval(*s.values[i], scope), inner);
        return exec(s.body, inner, out);
      }
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
      case Stmt::Kind::kGeneration:
        exec(s.body, std::make_shared<Scope>(scope), out);
        return Flow::kNormal;
    }
    return Flow::kNormal;
  }

  void assign(const Expr& target, const Value& value, const ScopePtr& scope) {
    located(target, [&] {
      switch (target.kind) {
        case Expr::Kind::kName:
          scope->vars[target.name] = value;
          break;
        case Expr::Kind::kTuple: {
          const std::vector<Value> items = iterate(value);
          const size_t n = target.items.size();
          if (items.size() < n)
            throw TemplateError("not enough values to unpack (expected " + std::to_string(n) +
                                ", got " + std::to_string(items.size()) + ")");
          if (items.size() > n)
            throw TemplateError("too many values to unpack (expected " + std::to_string(n) + ")");
          for (size_t i = 0; i < n; ++i) assign(*target.items[i], items[i], scope);
          break;
        }
        case Expr::Kind::kNsRef: {
          const Value ns = lookup(scope.get(), target.name);
          if (!ns.is_namespace())
            throw TemplateError("cannot assign attribute on non-namespace object");
          ns.dict_data().set(Value(target.attr), value);
          std::weak_ptr<Dict>& seen = assigned_namespaces_[ns.dict_ptr().get()];
          if (seen.expired()) seen = ns.dict_ptr();
          break;
        }
        default:
          throw TemplateError("can't assign to this expression");
      }
      return 0;
    });
  }

  Flow run_loop(const Stmt& s, const ScopePtr& scope, const Value& iterable, int64_t depth0,
                std::string& out) {
    std::vector<Value> items = located(*s.expr, [&] { return iterate(iterable); });
    if (s.test) {
      std::vector<Value> kept;
      for (const Value& item : items) {
        auto test_scope = std::make_shared<Scope>(scope);
        assign(*s.target, item, test_scope);
        if (eval(*s.test, test_scope).truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    auto state = std::make_shared<LoopState>();
    state->items = std::make_shared<const std::vector<Value>>(std::move(items));
    state->depth0 = depth0;
    if (s.recursive) {
      state->recurse = [this, &s, scope, depth0](const Value& inner) {
        DepthGuard guard(*this);
        std::string rendered;
        run_loop(s, scope, inner, depth0 + 1, rendered);
        return Value(std::move(rendered));
      };
      cycle_roots_.push_back(scope);
    }
    const Value loop_value = Value::loop(state);
    const std::vector<Value>& list = *state->items;
    for (size_t i = 0; i < list.size(); ++i) {
      located(s, [&] { return tick(), 0; });
      state->index0 = i;
      auto iteration = std::make_shared<Scope>(scope);
      assign(*s.target, list[i], iteration);
      iteration->vars["loop"] = loop_value;
      if (exec(s.body, iteration, out) == Flow::kBreak) break;
    }
    if (list.empty()) return exec(s.else_body, std::make_shared<Scope>(scope), out);
    return Flow::kNormal;
  }

  Value make_macro(const Stmt& s, const ScopePtr& defined_in, const std::string& name) {
    return Value::function(
        name,
        [this, &s, defined_in, name](CallArgs& args) {
          return call_macro(s, defined_in, name, args);
        },
        "Macro");
  }

  // jinja2.runtime.Macro.__call__.
  Value call_macro(const Stmt& s, const ScopePtr& defined_in, const std::string& name,
                   CallArgs& args) {
    DepthGuard guard(*this);
    auto scope = std::make_shared<Scope>(defined_in);
    const size_t np = s.params.size();
    std::vector<std::optional<Value>> bound(np);
    for (size_t i = 0; i < std::min(np, args.positional.size()); ++i) bound[i] = args.positional[i];
    std::vector<std::pair<std::string, Value>> kwargs = args.keyword;
    bool found_caller = false;
    if (args.positional.size() < np) {
      for (size_t i = args.positional.size(); i < np; ++i) {
        for (auto it = kwargs.begin(); it != kwargs.end(); ++it) {
          if (it->first == s.params[i]) {
            bound[i] = it->second;
            kwargs.erase(it);
            break;
          }
        }
        if (s.params[i] == "caller") found_caller = true;
      }
    } else {
      found_caller = std::find(s.params.begin(), s.params.end(), "caller") != s.params.end();
    }
    if (s.uses_caller && !found_caller) {
      Value caller = Value::undefined("No caller defined");
      for (auto it = kwargs.begin(); it != kwargs.end(); ++it) {
        if (it->first == "caller") {
          caller = it->second;
          kwargs.erase(it);
          break;
        }
      }
      scope->vars["caller"] = caller;
    }
    if (s.catch_kwargs) {
      Value d = Value::dict();
      for (const auto& [k, v] : kwargs) d.dict_data().set(Value(k), v);
      scope->vars["kwargs"] = d;
    } else if (!kwargs.empty()) {
      for (const auto& kw : kwargs)
        if (kw.first == "caller")
          throw TemplateError("macro " + string_repr(name) +
                              " was invoked with two values for the special caller argument. "
                              "This is most likely a bug.");
      throw TemplateError("macro " + string_repr(name) + " takes no keyword argument " +
                          string_repr(kwargs.front().first));
    }
    if (s.catch_varargs) {
      std::vector<Value> rest;
      for (size_t i = np; i < args.positional.size(); ++i) rest.push_back(args.positional[i]);
      scope->vars["varargs"] = Value::tuple(std::move(rest));
    } else if (args.positional.size() > np) {
      throw TemplateError("macro " + string_repr(name) + " takes not more than " +
                          std::to_string(np) + " argument(s)");
    }
    const size_t first_default = np - s.defaults.size();
    for (size_t i = 0; i < np; ++i) {
      if (bound[i]) {
        scope->vars[s.params[i]] = *bound[i];
      } else if (i >= first_default) {
        scope->vars[s.params[i]] = eval(*s.defaults[i - first_default], scope);
      } else {
        scope->vars[s.params[i]] =
            Value::undefined("parameter " + string_repr(s.params[i]) + " was not provided");
      }
    }
    std::string out;
    exec(s.body, scope, out);
    return Value(std::move(out));
  }

  // -------------------------------------------------------------------------------------------
  // Expressions

  Value eval(const Expr& e, const ScopePtr& scope) {
    return located(e, [&] {
      tick();
      Value v = eval_node(e, scope);
      check_value(v);
      return v;
    });
  }

  CallArgs eval_args(const Expr& e, const ScopePtr& scope) {
    CallArgs args;
    for (const auto& item : e.items) args.positional.push_back(eval(*item, scope));
    if (e.dyn_args)
      for (Value& v : iterate(eval(*e.dyn_args, scope))) args.positional.push_back(std::move(v));
    for (const auto& [key, value] : e.kwargs) args.keyword.emplace_back(key, eval(*value, scope));
    if (e.dyn_kwargs) {
      const Value d = eval(*e.dyn_kwargs, scope);
      if (!d.is_dict())
        throw TemplateError("argument after ** must be a mapping, not " + d.type_name());
      for (const auto& [k, v] : d.dict_data().entries) {
        if (!k.is_string()) throw TemplateError("keywords must be strings");
        args.keyword.emplace_back(k.str(), v);
      }
    }
    return args;
  }

  // {% filter f|g %} and {% set x | f %}: the captured text goes where the chain has no operand.
  Value apply_chain(const Expr& filter, const Value& input, const ScopePtr& scope) {
    return located(filter, [&] {
      const Value value = filter.a ? apply_chain(*filter.a, input, scope) : input;
      CallArgs args = eval_args(filter, scope);
      return apply_filter(filter.name, value, args);
    });
  }

  Value eval_node(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
      case Expr::Kind::kConst:
        return e.value;
      case Expr::Kind::kName:
        return lookup(scope.get(), e.name);
      case Expr::Kind::kGetattr:
        return get_attr(eval(*e.a, scope), e.name);
      case Expr::Kind::kGetitem: {
        const Value obj = eval(*e.a, scope);
        if (e.b->kind == Expr::Kind::kSlice) {
          Value bounds[3];
          for (size_t i = 0; i < 3; ++i)
            bounds[i] = e.b->items[i] ? eval(*e.b->items[i], scope) : Value::none();
          return get_slice(obj, bounds[0], bounds[1], bounds[2]);
        }
        return get_item(obj, eval(*e.b, scope));
      }
      case Expr::Kind::kCall: {
        const Value callee = eval(*e.a, scope);
        CallArgs args = eval_args(e, scope);
        return call(callee, args);
      }
      case Expr::Kind::kFilter: {
        const Value input = e.a ? eval(*e.a, scope) : Value();
        CallArgs args = eval_args(e, scope);
        return apply_filter(e.name, input, args);
      }
      case Expr::Kind::kTest: {
        const Value input = eval(*e.a, scope);
        CallArgs args = eval_args(e, scope);
        return Value(apply_test(e.name, input, args));
      }
      case Expr::Kind::kNot:
        return Value(!eval(*e.a, scope).truthy());
      case Expr::Kind::kNeg:
        return negate(eval(*e.a, scope));
      case Expr::Kind::kPos:
        return unary_plus(eval(*e.a, scope));
      case Expr::Kind::kBinary: {
        const Value left = eval(*e.a, scope);
        const Value right = eval(*e.b, scope);
        return binary_op(e.name, left, right);
      }
      case Expr::Kind::kAnd: {
        Value left = eval(*e.a, scope);
        return left.truthy() ? eval(*e.b, scope) : left;
      }
      case Expr::Kind::kOr: {
        Value left = eval(*e.a, scope);
        return left.truthy() ? left : eval(*e.b, scope);
      }
      case Expr::Kind::kConcat: {
        std::string out;
        for (const auto& item : e.items) {
          const Value v = eval(*item, scope);
          if (v.is_string())
            out += v.str();  // no copy through to_str(): doubling a long string stays cheap
          else
            out += v.to_str();
          check_string(out.size(), "a string");
        }
        return Value(std::move(out));
      }
      case Expr::Kind::kCompare: {
        Value left = eval(*e.a, scope);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.items[i], scope);
          if (!compare(e.ops[i], left, right).truthy()) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case Expr::Kind::kCondExpr:
        if (eval(*e.b, scope).truthy()) return eval(*e.a, scope);
        if (e.c) return eval(*e.c, scope);
        return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                                " evaluated to false and no else section was defined.");
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        std::vector<Value> items;
        items.reserve(e.items.size());
        for (const auto& item : e.items) items.push_back(eval(*item, scope));
        return e.kind == Expr::Kind::kList ? Value::list(std::move(items))
                                           : Value::tuple(std::move(items));
      }
      case Expr::Kind::kDict: {
        Value d = Value::dict();
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
          Value key = eval(*e.items[i], scope);
          d.dict_data().set(key, eval(*e.items[i + 1], scope));
        }
        return d;
      }
      case Expr::Kind::kSlice:
      case Expr::Kind::kNsRef:
        break;
    }
    throw TemplateError("internal error: unexpected expression");
  }
};

}  // namespace

std::string render(const Body& body, const Value& variables, const RenderOptions& options) {
  return Interpreter(options).run(body, variables);
}

}  // namespace expo::jinja
