#include "jinja/jinja_value.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include <unicode/uchar.h>

#include "core/error.h"
#include "core/utf8.h"
#include "jinja/python_unicode.h"

namespace expo::jinja {

void check_built_size(int64_t size, const char* what) {
  if (size > kMaxBuiltSize)
    throw TemplateError(std::string(what) + " too large (" + std::to_string(size) +
                        "; expo's Jinja engine builds at most " + std::to_string(kMaxBuiltSize) +
                        " at once)");
}

namespace {

[[noreturn]] void type_error(const std::string& message) { throw TemplateError(message); }

// repr(), json.dumps and comparisons recurse into nested lists and dicts; a template can nest
// them without bound (namespace attributes in a loop), so they stop where CPython would raise
// RecursionError instead of overflowing the stack.
thread_local int recursion_depth = 0;
struct RecursionGuard {
  RecursionGuard() {
    if (++recursion_depth > 1000) {
      --recursion_depth;
      throw TemplateError("maximum recursion depth exceeded");
    }
  }
  ~RecursionGuard() { --recursion_depth; }
};

std::string quoted_type(const Value& v) {
  std::string out(1, '\'');
  out += v.type_name();
  out += '\'';
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Construction and accessors

Value::Value() : kind_(Kind::kUndefined), str_(std::make_shared<const std::string>()) {}
Value::Value(bool b) : kind_(Kind::kBool), bool_(b) {}
Value::Value(int64_t i) : kind_(Kind::kInt), int_(i) {}
Value::Value(double f) : kind_(Kind::kFloat), float_(f) {}
Value::Value(std::string s)
    : kind_(Kind::kString), str_(std::make_shared<const std::string>(std::move(s))) {}

Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  v.str_.reset();
  return v;
}

Value Value::undefined(std::string message) {
  Value v;
  v.str_ = std::make_shared<const std::string>(std::move(message));
  return v;
}

Value Value::unsafe_undefined(std::string message) {
  Value v = undefined(std::move(message));
  v.bool_ = true;
  return v;
}

Value Value::undefined_name(const std::string& name) {
  return undefined(string_repr(name) + " is undefined");
}

Value Value::undefined_member(const Value& obj, const Value& key) {
  if (key.is_string())
    return undefined(string_repr(obj.object_type_repr()) + " has no attribute " + key.repr());
  return undefined(obj.object_type_repr() + " has no element " + key.repr());
}

Value Value::list(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::kList;
  v.str_.reset();
  v.list_ = std::make_shared<std::vector<Value>>(std::move(items));
  return v;
}

Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  v.kind_ = Kind::kTuple;
  return v;
}

Value Value::dict() { return dict(std::make_shared<Dict>()); }

Value Value::dict(std::shared_ptr<Dict> d) {
  Value v;
  v.kind_ = Kind::kDict;
  v.str_.reset();
  v.dict_ = std::move(d);
  return v;
}

Value Value::namespace_object() {
  Value v = dict();
  v.kind_ = Kind::kNamespace;
  return v;
}

Value Value::iterator(std::vector<Value> items, std::string type_name) {
  Value v;
  v.kind_ = Kind::kIterator;
  v.str_.reset();
  auto state = std::make_shared<IteratorState>();
  state->items = std::move(items);
  state->type_name = std::move(type_name);
  v.object_ = std::move(state);
  return v;
}

Value Value::function(std::string name, std::function<Value(CallArgs&)> fn, std::string type_name) {
  Value v;
  v.kind_ = Kind::kFunction;
  v.str_.reset();
  auto f = std::make_shared<Function>();
  f->name = std::move(name);
  f->type_name = std::move(type_name);
  f->call = std::move(fn);
  v.object_ = std::move(f);
  return v;
}

Value Value::loop(std::shared_ptr<LoopState> state) {
  Value v;
  v.kind_ = Kind::kLoop;
  v.str_.reset();
  v.object_ = std::move(state);
  return v;
}

Function& Value::function_data() const { return *static_cast<Function*>(object_.get()); }
LoopState& Value::loop_data() const { return *static_cast<LoopState*>(object_.get()); }
IteratorState& Value::iterator_data() const { return *static_cast<IteratorState*>(object_.get()); }

void Value::fail_undefined() const { throw TemplateError(*str_); }

// ---------------------------------------------------------------------------------------------
// Python protocol

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return bool_;
    case Kind::kInt:
      return int_ != 0;
    case Kind::kFloat:
      return float_ != 0;
    case Kind::kString:
      return !str_->empty();
    case Kind::kList:
    case Kind::kTuple:
      return !list_->empty();
    case Kind::kDict:
      return dict_->size() != 0;
    case Kind::kLoop:
      return !loop_data().items->empty();
    case Kind::kNamespace:
    case Kind::kIterator:
    case Kind::kFunction:
      return true;
  }
  return true;
}

std::string Value::to_str() const {
  if (kind_ == Kind::kString) return *str_;
  if (kind_ == Kind::kUndefined) return "";
  return repr();
}

std::string Value::repr() const {
  RecursionGuard guard;
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return bool_ ? "True" : "False";
    case Kind::kInt:
      return std::to_string(int_);
    case Kind::kFloat:
      return float_repr(float_);
    case Kind::kString:
      return string_repr(*str_);
    case Kind::kList:
    case Kind::kTuple: {
      std::string out = kind_ == Kind::kList ? "[" : "(";
      for (size_t i = 0; i < list_->size(); ++i) {
        if (i) out += ", ";
        out += (*list_)[i].repr();
      }
      if (kind_ == Kind::kTuple && list_->size() == 1) out += ",";
      return out + (kind_ == Kind::kList ? "]" : ")");
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      std::string out = "{";
      for (size_t i = 0; i < dict_->entries.size(); ++i) {
        if (i) out += ", ";
        out += dict_->entries[i].first.repr() + ": " + dict_->entries[i].second.repr();
      }
      out += "}";
      return kind_ == Kind::kDict ? out : "<Namespace " + out + ">";
    }
    case Kind::kIterator:
      return "<" + iterator_data().type_name + " object>";
    case Kind::kFunction: {
      const Function& f = function_data();
      if (f.type_name == "Macro") return "<Macro " + string_repr(f.name) + ">";
      return "<built-in method " + f.name + ">";
    }
    case Kind::kLoop: {
      const LoopState& l = loop_data();
      return "<LoopContext " + std::to_string(l.index0 + 1) + "/" +
             std::to_string(l.items->size()) + ">";
    }
  }
  return "";
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return "list";
    case Kind::kTuple:
      return "tuple";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return "Namespace";
    case Kind::kIterator:
      return iterator_data().type_name;
    case Kind::kFunction:
      return function_data().type_name;
    case Kind::kLoop:
      return "LoopContext";
  }
  return "object";
}

std::string Value::object_type_repr() const {
  switch (kind_) {
    case Kind::kNone:
      return "None";
    case Kind::kNamespace:
      return "jinja2.utils.Namespace object";
    case Kind::kLoop:
      return "jinja2.runtime.LoopContext object";
    case Kind::kUndefined:
      return "jinja2.runtime.Undefined object";
    case Kind::kFunction:
      if (function_data().type_name == "Macro") return "jinja2.runtime.Macro object";
      return type_name() + " object";
    default:
      return type_name() + " object";
  }
}

bool Value::same_as(const Value& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kNone:
      return true;
    case Kind::kBool:
      return bool_ == other.bool_;
    case Kind::kInt:  // CPython caches the small ints
      return int_ == other.int_ && int_ >= -5 && int_ <= 256;
    case Kind::kFloat:
      return false;
    case Kind::kString:
      return str_ == other.str_ || *str_ == *other.str_;
    case Kind::kUndefined:
      return str_ == other.str_;
    case Kind::kList:
    case Kind::kTuple:
      return list_ == other.list_;
    case Kind::kDict:
    case Kind::kNamespace:
      return dict_ == other.dict_;
    default:
      return object_ == other.object_;
  }
}

// ---------------------------------------------------------------------------------------------
// Dict

std::string hash_key(const Value& key) {
  RecursionGuard guard;
  switch (key.kind()) {
    case Value::Kind::kNone:
      return "N";
    case Value::Kind::kBool:
    case Value::Kind::kInt:
      return "i" + std::to_string(key.as_int());
    case Value::Kind::kFloat: {
      const double f = key.as_float();
      if (std::floor(f) == f && std::fabs(f) < 9.2e18)
        return "i" + std::to_string(static_cast<int64_t>(f));
      return "f" + float_repr(f);
    }
    case Value::Kind::kString:
      return "s" + key.str();
    case Value::Kind::kTuple: {
      std::string out = "t(";
      for (const Value& item : key.items()) {
        const std::string k = hash_key(item);
        out += std::to_string(k.size()) + ":" + k;
      }
      return out + ")";
    }
    case Value::Kind::kUndefined:
      return "U";
    case Value::Kind::kList:
    case Value::Kind::kDict:
      type_error("unhashable type: " + quoted_type(key));
    default:
      return "o" + key.repr();
  }
}

const Value* Dict::find(const Value& key) const {
  const auto it = index.find(hash_key(key));
  return it == index.end() ? nullptr : &entries[it->second].second;
}

void Dict::set(const Value& key, Value value) {
  const std::string k = hash_key(key);
  const auto it = index.find(k);
  if (it != index.end()) {
    entries[it->second].second = std::move(value);
    return;
  }
  index.emplace(k, entries.size());
  entries.emplace_back(key, std::move(value));
}

// ---------------------------------------------------------------------------------------------
// Comparison

namespace {

int compare_numbers(const Value& a, const Value& b) {
  if (a.is_integral() && b.is_integral()) {
    const int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  const long double x = a.is_float() ? a.as_float() : static_cast<long double>(a.as_int());
  const long double y = b.is_float() ? b.as_float() : static_cast<long double>(b.as_int());
  return x < y ? -1 : (x > y ? 1 : 0);
}

bool is_nan(const Value& v) { return v.is_float() && std::isnan(v.as_float()); }

// Python's rich comparison for ordering operators; `symbol` names the operator in the error.
bool ordered(const Value& a, const Value& b, const std::string& symbol) {
  RecursionGuard guard;
  if (a.is_undefined()) a.fail_undefined();
  if (b.is_undefined()) b.fail_undefined();
  int c;
  if (a.is_number() && b.is_number()) {
    if (is_nan(a) || is_nan(b)) return false;
    c = compare_numbers(a, b);
  } else if (a.is_string() && b.is_string()) {
    c = a.str().compare(b.str());  // UTF-8 byte order is code point order
  } else if ((a.is_list() && b.is_list()) || (a.is_tuple() && b.is_tuple())) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!equals(x[i], y[i])) return ordered(x[i], y[i], symbol);
    c = x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  } else {
    type_error("'" + symbol + "' not supported between instances of " + quoted_type(a) + " and " +
               quoted_type(b));
  }
  if (symbol == "<") return c < 0;
  if (symbol == "<=") return c <= 0;
  if (symbol == ">") return c > 0;
  return c >= 0;
}

}  // namespace

bool equals(const Value& a, const Value& b) {
  RecursionGuard guard;
  using K = Value::Kind;
  if (a.is_undefined() || b.is_undefined()) return a.is_undefined() && b.is_undefined();
  if (a.is_number() && b.is_number()) {
    if (is_nan(a) || is_nan(b)) return false;
    return compare_numbers(a, b) == 0;
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::kNone:
      return true;
    case K::kString:
      return a.str() == b.str();
    case K::kList:
    case K::kTuple: {
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!equals(x[i], y[i])) return false;
      return true;
    }
    case K::kDict: {
      const Dict& x = a.dict_data();
      const Dict& y = b.dict_data();
      if (x.size() != y.size()) return false;
      for (const auto& [key, value] : x.entries) {
        const Value* other = y.find(key);
        if (!other || !equals(value, *other)) return false;
      }
      return true;
    }
    default:
      return a.same_as(b);
  }
}

bool less_than(const Value& a, const Value& b) { return ordered(a, b, "<"); }

Value compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "eq") return Value(equals(a, b));
  if (op == "ne") return Value(!equals(a, b));
  if (op == "lt") return Value(ordered(a, b, "<"));
  if (op == "lteq") return Value(ordered(a, b, "<="));
  if (op == "gt") return Value(ordered(a, b, ">"));
  if (op == "gteq") return Value(ordered(a, b, ">="));
  if (op == "in") return Value(contains(b, a));
  if (op == "notin") return Value(!contains(b, a));
  throw TemplateError("unknown comparison " + op);
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kString:
      if (!item.is_string())
        type_error("'in <string>' requires string as left operand, not " + item.type_name());
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      for (const Value& v : container.items())
        if (equals(v, item)) return true;
      return false;
    case Value::Kind::kDict:
      return container.dict_data().find(item) != nullptr;
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kIterator: {
      IteratorState& it = container.iterator_data();
      while (it.position < it.items.size())
        if (equals(it.items[it.position++], item)) return true;
      return false;
    }
    default:
      type_error("argument of type " + quoted_type(container) + " is not iterable");
  }
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

namespace {

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b) {
  type_error("unsupported operand type(s) for " + op + ": " + quoted_type(a) + " and " +
             quoted_type(b));
}

[[noreturn]] void overflow() {
  throw TemplateError(
      "integer result too large (expo's Jinja engine computes with 64-bit integers)");
}

Value repeat(const Value& seq, int64_t n) {
  if (n <= 0) return seq.is_string() ? Value(std::string()) : Value::list();
  if (seq.is_string()) {
    if (static_cast<int64_t>(seq.str().size()) > kMaxBuiltSize / n)
      throw TemplateError("string repetition result too large");
    std::string out;
    out.reserve(seq.str().size() * n);
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value(std::move(out));
  }
  if (static_cast<int64_t>(seq.items().size()) > kMaxBuiltSize / n)
    throw TemplateError("list repetition result too large");
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

// CPython's float_divmod.
std::pair<double, double> float_divmod(double vx, double wx) {
  double mod = std::fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod != 0) {
    if ((wx < 0) != (mod < 0)) {
      mod += wx;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, wx);
  }
  double floordiv;
  if (div != 0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, vx / wx);
  }
  return {floordiv, mod};
}

Value power(const Value& a, const Value& b) {
  if (a.is_integral() && b.is_integral() && b.as_int() >= 0) {
    int64_t base = a.as_int(), exp = b.as_int(), result = 1;
    while (exp > 0) {
      if (exp & 1)
        if (__builtin_mul_overflow(result, base, &result)) overflow();
      exp >>= 1;
      if (exp > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
    }
    return Value(result);
  }
  const double x = a.as_float(), y = b.as_float();
  if (x == 0 && y < 0) throw TemplateError("0.0 cannot be raised to a negative power");
  if (x < 0 && std::floor(y) != y)
    throw TemplateError("complex numbers are not supported (negative number ** fraction)");
  return Value(std::pow(x, y));
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) a.fail_undefined();
  if (b.is_undefined()) b.fail_undefined();
  const bool numbers = a.is_number() && b.is_number();
  const bool ints = a.is_integral() && b.is_integral();
  if (op == "+") {
    if (ints) {
      int64_t r;
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) overflow();
      return Value(r);
    }
    if (numbers) return Value(a.as_float() + b.as_float());
    if (a.is_string() && b.is_string()) return Value(a.str() + b.str());
    if ((a.is_list() && b.is_list()) || (a.is_tuple() && b.is_tuple())) {
      std::vector<Value> out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return a.is_list() ? Value::list(std::move(out)) : Value::tuple(std::move(out));
    }
    if (a.is_string() || a.is_list() || a.is_tuple())
      type_error("can only concatenate " + a.type_name() + " (not \"" + b.type_name() + "\") to " +
                 a.type_name());
    unsupported("+", a, b);
  }
  if (op == "-") {
    if (ints) {
      int64_t r;
      if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) overflow();
      return Value(r);
    }
    if (numbers) return Value(a.as_float() - b.as_float());
    unsupported("-", a, b);
  }
  if (op == "*") {
    if (ints) {
      int64_t r;
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) overflow();
      return Value(r);
    }
    if (numbers) return Value(a.as_float() * b.as_float());
    const bool a_seq = a.is_string() || a.is_sequence_like();
    const bool b_seq = b.is_string() || b.is_sequence_like();
    if (a_seq && b.is_integral()) return repeat(a, b.as_int());
    if (b_seq && a.is_integral()) return repeat(b, a.as_int());
    if (a_seq && !b_seq) type_error("can't multiply sequence by non-int of type " + quoted_type(b));
    if (b_seq && !a_seq) type_error("can't multiply sequence by non-int of type " + quoted_type(a));
    unsupported("*", a, b);
  }
  if (op == "/") {
    if (!numbers) unsupported("/", a, b);
    if (b.as_float() == 0) throw TemplateError("division by zero");
    return Value(a.as_float() / b.as_float());
  }
  if (op == "//") {
    if (ints) {
      const int64_t x = a.as_int(), y = b.as_int();
      if (y == 0) throw TemplateError("integer division or modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) overflow();
      int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      return Value(q);
    }
    if (!numbers) unsupported("//", a, b);
    if (b.as_float() == 0) throw TemplateError("float floor division by zero");
    return Value(float_divmod(a.as_float(), b.as_float()).first);
  }
  if (op == "%") {
    if (a.is_string()) return Value(percent_format(a.str(), b));
    if (ints) {
      const int64_t x = a.as_int(), y = b.as_int();
      if (y == 0) throw TemplateError("integer modulo by zero");
      if (y == -1) return Value(int64_t{0});
      int64_t r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return Value(r);
    }
    if (!numbers) unsupported("%", a, b);
    if (b.as_float() == 0) throw TemplateError("float modulo");
    return Value(float_divmod(a.as_float(), b.as_float()).second);
  }
  if (op == "**") {
    if (!numbers) unsupported("** or pow()", a, b);
    return power(a, b);
  }
  throw TemplateError("unknown operator " + op);
}

Value negate(const Value& a) {
  if (a.is_undefined()) a.fail_undefined();
  if (a.is_integral()) {
    if (a.as_int() == std::numeric_limits<int64_t>::min()) overflow();
    return Value(-a.as_int());
  }
  if (a.is_float()) return Value(-a.as_float());
  type_error("bad operand type for unary -: " + quoted_type(a));
}

Value unary_plus(const Value& a) {
  if (a.is_undefined()) a.fail_undefined();
  if (a.is_integral()) return Value(a.as_int());
  if (a.is_float()) return a;
  type_error("bad operand type for unary +: " + quoted_type(a));
}

// ---------------------------------------------------------------------------------------------
// len() and iteration

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kString:
      return static_cast<int64_t>(utf8_length(v.str()));
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      return static_cast<int64_t>(v.items().size());
    case Value::Kind::kDict:
      return static_cast<int64_t>(v.dict_data().size());
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kLoop:
      return static_cast<int64_t>(v.loop_data().items->size());
    default:
      type_error("object of type " + quoted_type(v) + " has no len()");
  }
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      return v.items();
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.dict_data().size());
      for (const auto& entry : v.dict_data().entries) keys.push_back(entry.first);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      const std::string& s = v.str();
      for (size_t i = 0; i < s.size();) {
        const size_t n =
            std::min(expo::utf8_length(static_cast<unsigned char>(s[i])), s.size() - i);
        chars.emplace_back(s.substr(i, n));
        i += n;
      }
      return chars;
    }
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kIterator: {
      IteratorState& it = v.iterator_data();
      std::vector<Value> rest(it.items.begin() + static_cast<std::ptrdiff_t>(it.position),
                              it.items.end());
      it.position = it.items.size();
      return rest;
    }
    case Value::Kind::kLoop:
      return *v.loop_data().items;
    default:
      type_error(quoted_type(v) + " object is not iterable");
  }
}

// ---------------------------------------------------------------------------------------------
// repr

std::string float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string sci(buf, result.ptr);  // shortest round-trip: "-1.2345e+17"
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exponent = std::stoi(sci.substr(e + 1));
  const int decpt = exponent + 1;  // value = 0.digits * 10^decpt
  const int n = static_cast<int>(digits.size());
  std::string out;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out = "0." + std::string(-decpt, '0') + digits;
    } else if (decpt >= n) {
      out = digits + std::string(decpt - n, '0') + ".0";
    } else {
      out = digits.substr(0, decpt) + "." + digits.substr(decpt);
    }
  } else {
    out = digits.substr(0, 1);
    if (n > 1) out += "." + digits.substr(1);
    const int ae = std::abs(exponent);
    out += exponent < 0 ? "e-" : "e+";
    if (ae < 10) out += "0";
    out += std::to_string(ae);
  }
  return sign + out;
}

namespace {

// Characters repr() escapes beyond ASCII: Unicode's non-printable ones (separators, format and
// control characters, surrogates, private use, noncharacters).
bool is_printable(char32_t c) {
  if (c < 0x20 || c == 0x7F) return false;
  if (c < 0x7F) return true;
  if (c <= 0xA0 || c == 0xAD) return false;
  if (c == 0x1680 || c == 0x180E) return false;
  if (c >= 0x2000 && c <= 0x200F) return false;
  if (c >= 0x2028 && c <= 0x202F) return false;
  if (c >= 0x205F && c <= 0x206F) return false;
  if (c == 0x3000 || c == 0xFEFF) return false;
  if (c >= 0xD800 && c <= 0xF8FF) return false;
  if (c >= 0xFFF0 && c <= 0xFFFB) return false;
  if (c == 0xFFFE || c == 0xFFFF) return false;
  if (c >= 0xE0000) return false;
  return true;
}

void hex_escape(std::string& out, const char* prefix, uint32_t c, int width) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%s%0*x", prefix, width, c);
  out += buf;
}

}  // namespace

std::string string_repr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : utf8_decode(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (is_printable(c)) {
      utf8_append(out, c);
    } else if (c < 0x100) {
      hex_escape(out, "\\x", c, 2);
    } else if (c < 0x10000) {
      hex_escape(out, "\\u", c, 4);
    } else {
      hex_escape(out, "\\U", c, 8);
    }
  }
  out += quote;
  return out;
}

// ---------------------------------------------------------------------------------------------
// printf-style formatting (str % args)

namespace {

std::string pad(std::string s, int64_t width, bool left, char fill = ' ') {
  const int64_t n = static_cast<int64_t>(utf8_length(s));
  if (width <= n) return s;
  check_built_size(width, "format width");
  const std::string padding(static_cast<size_t>(width - n), fill);
  return left ? s + padding : padding + s;
}

std::string c_format_double(double x, const std::string& flags, int precision, char conv) {
  std::string spec = "%" + flags + "." + std::to_string(precision) + conv;
  char buf[512];
  std::snprintf(buf, sizeof buf, spec.c_str(), x);
  return buf;
}

}  // namespace

std::string percent_format(const std::string& format, const Value& args) {
  std::vector<Value> positional;
  const Value* mapping = nullptr;
  if (args.is_tuple()) {
    positional = args.items();
  } else {
    positional.push_back(args);
    if (args.is_dict()) mapping = &args;
  }
  size_t next = 0;
  bool used_mapping = false;
  auto next_arg = [&]() -> Value {
    if (next >= positional.size()) type_error("not enough arguments for format string");
    return positional[next++];
  };
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) throw TemplateError("incomplete format");
    std::optional<Value> arg;
    if (format[i] == '(') {
      const size_t close = format.find(')', i);
      if (close == std::string::npos) throw TemplateError("incomplete format key");
      if (!mapping) type_error("format requires a mapping");
      const std::string key = format.substr(i + 1, close - i - 1);
      const Value* found = mapping->dict_data().find(key);
      if (!found) throw TemplateError(string_repr(key));  // KeyError
      arg = *found;
      used_mapping = true;
      i = close + 1;
    }
    std::string flags;
    while (i < format.size() && std::string("-+ #0").find(format[i]) != std::string::npos)
      flags += format[i++];
    int64_t width = -1;
    if (i < format.size() && format[i] == '*') {
      width = next_arg().as_int();
      ++i;
    } else {
      while (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i]))) {
        width = std::max<int64_t>(width, 0) * 10 + (format[i++] - '0');
        check_built_size(width, "format width");
      }
    }
    int precision = -1;
    if (i < format.size() && format[i] == '.') {
      ++i;
      precision = 0;
      if (i < format.size() && format[i] == '*') {
        precision = static_cast<int>(next_arg().as_int());
        ++i;
      } else {
        while (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i]))) {
          precision = precision * 10 + (format[i++] - '0');
          check_built_size(precision, "format precision");
        }
      }
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L')) ++i;
    if (i >= format.size()) throw TemplateError("incomplete format");
    const char conv = format[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    const Value v = arg ? *arg : next_arg();
    const bool left = flags.find('-') != std::string::npos;
    const bool zero = flags.find('0') != std::string::npos && !left;
    std::string piece;
    switch (conv) {
      case 's':
      case 'r':
      case 'a': {
        piece = conv == 's' ? v.to_str() : v.repr();
        if (precision >= 0) {
          std::u32string chars = utf8_decode(piece);
          if (static_cast<int64_t>(chars.size()) > precision) chars.resize(precision);
          piece = utf8_encode(chars);
        }
        out += pad(piece, width, left);
        continue;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o':
      case 'c': {
        if (conv == 'c') {
          if (v.is_string() && utf8_length(v.str()) == 1)
            piece = v.str();
          else if (v.is_integral())
            utf8_append(piece, static_cast<char32_t>(v.as_int()));
          else
            type_error("%c requires int or char");
          out += pad(piece, width, left);
          continue;
        }
        int64_t n;
        if (v.is_integral()) {
          n = v.as_int();
        } else if (v.is_float() && (conv == 'd' || conv == 'i' || conv == 'u')) {
          n = static_cast<int64_t>(std::trunc(v.as_float()));
        } else if (conv == 'd' || conv == 'i' || conv == 'u') {
          type_error(std::string("%") + conv + " format: a real number is required, not " +
                     v.type_name());
        } else {
          type_error(std::string("%") + conv + " format: an integer is required, not " +
                     v.type_name());
        }
        std::string spec = "%" + flags;
        if (width >= 0) spec += std::to_string(width);
        if (precision >= 0) spec += "." + std::to_string(precision);
        spec += conv == 'u' ? std::string("lld") : std::string("ll") + conv;
        char buf[128];
        std::snprintf(buf, sizeof buf, spec.c_str(), static_cast<long long>(n));
        out += buf;
        continue;
      }
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G': {
        if (!v.is_number()) type_error("must be real number, not " + v.type_name());
        std::string f = flags;
        if (width >= 0) f += std::to_string(width);
        out += c_format_double(v.as_float(), f, precision < 0 ? 6 : precision, conv);
        (void)zero;
        continue;
      }
      default:
        throw TemplateError(std::string("unsupported format character '") + conv + "'");
    }
  }
  if (!used_mapping && !mapping && next < positional.size())
    type_error("not all arguments converted during string formatting");
  return out;
}

// ---------------------------------------------------------------------------------------------
// str.format

namespace {

// Applies a format spec ([[fill]align][sign][#][0][width][,][.precision][type]) to a value.
std::string format_spec(const Value& v, const std::string& spec) {
  if (spec.empty()) return v.to_str();
  size_t i = 0;
  std::string fill = " ";
  char align = 0;
  auto is_align = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  const std::u32string chars = utf8_decode(spec);
  if (chars.size() >= 2 && is_align(static_cast<char>(chars[1])) && chars[1] < 0x80) {
    fill.clear();
    utf8_append(fill, chars[0]);
    align = static_cast<char>(chars[1]);
    i = fill.size() + 1;
  } else if (is_align(spec[0])) {
    align = spec[0];
    i = 1;
  }
  char sign = 0;
  if (i < spec.size() && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) sign = spec[i++];
  bool alternate = false;
  if (i < spec.size() && spec[i] == '#') alternate = true, ++i;
  if (i < spec.size() && spec[i] == '0') {
    if (!align) fill = "0", align = '=';
    ++i;
  }
  int64_t width = 0;
  while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) {
    width = width * 10 + (spec[i++] - '0');
    check_built_size(width, "format width");
  }
  char grouping = 0;
  if (i < spec.size() && (spec[i] == ',' || spec[i] == '_')) grouping = spec[i++];
  int precision = -1;
  if (i < spec.size() && spec[i] == '.') {
    ++i;
    precision = 0;
    while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) {
      precision = precision * 10 + (spec[i++] - '0');
      check_built_size(precision, "format precision");
    }
  }
  char type = 0;
  if (i < spec.size()) type = spec[i++];
  if (i != spec.size()) throw TemplateError("Invalid format specifier");

  std::string body;
  std::string prefix;  // sign
  if (v.is_string() || (!v.is_number())) {
    if (!v.is_string())
      type_error("unsupported format string passed to " + v.type_name() + ".__format__");
    if (type && type != 's')
      throw TemplateError(std::string("Unknown format code '") + type +
                          "' for object of type 'str'");
    body = v.str();
    if (precision >= 0) {
      std::u32string c = utf8_decode(body);
      if (static_cast<int64_t>(c.size()) > precision) c.resize(precision);
      body = utf8_encode(c);
    }
    if (!align) align = '<';
  } else {
    if (!align) align = '>';
    const bool integer_type = type == 0 || type == 'd' || type == 'n' || type == 'x' ||
                              type == 'X' || type == 'o' || type == 'b' || type == 'c';
    if (v.is_integral() && integer_type && precision < 0) {
      if (type == 0 && v.is_bool()) {
        body = v.to_str();
      } else {
        int64_t n = v.as_int();
        const bool negative = n < 0;
        uint64_t mag = negative ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
        if (type == 'c') {
          utf8_append(body, static_cast<char32_t>(n));
        } else {
          const int base = type == 'x' || type == 'X' ? 16 : type == 'o' ? 8 : type == 'b' ? 2 : 10;
          const char* digits = type == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
          do {
            body.insert(body.begin(), digits[mag % base]);
            mag /= base;
          } while (mag);
          if (grouping) {
            const int group = base == 10 ? 3 : 4;
            std::string grouped;
            for (size_t k = 0; k < body.size(); ++k) {
              if (k && (body.size() - k) % group == 0) grouped += grouping;
              grouped += body[k];
            }
            body = grouped;
          }
          if (alternate && base != 10) body = std::string("0") + (type == 'X' ? 'X' : type) + body;
        }
        prefix = negative ? "-" : (sign == '+' ? "+" : (sign == ' ' ? " " : ""));
      }
    } else {
      if (v.is_integral() &&
          (type == 'x' || type == 'X' || type == 'o' || type == 'b' || type == 'c' || type == 'd'))
        throw TemplateError("Precision not allowed in integer format specifier");
      if (!v.is_integral() &&
          (type == 'd' || type == 'x' || type == 'X' || type == 'o' || type == 'b' || type == 'c'))
        throw TemplateError(std::string("Unknown format code '") + type +
                            "' for object of type 'float'");
      double x = v.as_float();
      const bool negative = std::signbit(x) && !std::isnan(x);
      x = std::fabs(x);
      if (type == 0 && precision < 0) {
        body = v.is_integral() ? std::to_string(static_cast<int64_t>(x)) : float_repr(x);
      } else if (type == '%') {
        body = c_format_double(x * 100, alternate ? "#" : "", precision < 0 ? 6 : precision, 'f') +
               "%";
      } else {
        char conv = type == 0 ? 'g' : (type == 'n' ? 'g' : type);
        body = c_format_double(x, alternate ? "#" : "", precision < 0 ? 6 : precision, conv);
        if (type == 0 && body.find_first_of(".einf") == std::string::npos) body += ".0";
      }
      if (grouping) {
        const size_t end = std::min(body.find_first_not_of("0123456789"), body.size());
        std::string grouped;
        for (size_t k = 0; k < end; ++k) {
          if (k && (end - k) % 3 == 0) grouped += grouping;
          grouped += body[k];
        }
        body = grouped + body.substr(end);
      }
      prefix = negative ? "-" : (sign == '+' ? "+" : (sign == ' ' ? " " : ""));
    }
  }
  const int64_t len = static_cast<int64_t>(utf8_length(prefix + body));
  if (width <= len) return prefix + body;
  const int64_t missing = width - len;
  auto fill_n = [&](int64_t n) {
    std::string s;
    for (int64_t k = 0; k < n; ++k) s += fill;
    return s;
  };
  switch (align) {
    case '<':
      return prefix + body + fill_n(missing);
    case '^':
      return fill_n(missing / 2) + prefix + body + fill_n(missing - missing / 2);
    case '=':
      return prefix + fill_n(missing) + body;
    default:
      return fill_n(missing) + prefix + body;
  }
}

}  // namespace

std::string str_format(const std::string& format, const CallArgs& args, const FieldLookup& lookup) {
  std::string out;
  size_t auto_index = 0;
  bool used_auto = false, used_manual = false;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      throw TemplateError("Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    // Find the matching '}' (format specs may nest one level of {}).
    size_t depth = 1, j = i + 1;
    for (; j < format.size() && depth; ++j) {
      if (format[j] == '{') ++depth;
      if (format[j] == '}') --depth;
    }
    if (depth) throw TemplateError("expected '}' before end of string");
    const std::string field = format.substr(i + 1, j - i - 2);
    i = j - 1;
    size_t colon = field.find(':');
    size_t bang = field.find('!');
    if (bang != std::string::npos && colon != std::string::npos && bang > colon)
      bang = std::string::npos;
    const size_t name_end = std::min(bang, colon);
    const std::string field_name = field.substr(0, name_end);
    // "0.attr[key]": the argument, then attribute and item lookups.
    const size_t first_lookup = std::min(field_name.find('.'), field_name.find('['));
    const std::string name = field_name.substr(0, first_lookup);
    char conversion = 0;
    if (bang != std::string::npos && bang + 1 < field.size()) conversion = field[bang + 1];
    const std::string spec = colon == std::string::npos ? "" : field.substr(colon + 1);
    Value v;
    if (name.empty()) {
      if (used_manual)
        throw TemplateError(
            "cannot switch from manual field specification to automatic field "
            "numbering");
      used_auto = true;
      if (auto_index >= args.positional.size())
        throw TemplateError("Replacement index " + std::to_string(auto_index) +
                            " out of range for positional args tuple");
      v = args.positional[auto_index++];
    } else if (std::all_of(name.begin(), name.end(),
                           [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
      if (used_auto)
        throw TemplateError(
            "cannot switch from automatic field numbering to manual field "
            "specification");
      used_manual = true;
      const size_t index = std::stoul(name);
      if (index >= args.positional.size())
        throw TemplateError("Replacement index " + name +
                            " out of range for positional args tuple");
      v = args.positional[index];
    } else {
      bool found = false;
      for (const auto& [key, value] : args.keyword)
        if (key == name) v = value, found = true;
      if (!found) throw TemplateError(string_repr(name));  // KeyError
    }
    for (size_t p = first_lookup; p < field_name.size();) {
      const bool attribute = field_name[p] == '.';
      const size_t end = attribute
                             ? std::min(field_name.find_first_of(".[", p + 1), field_name.size())
                             : field_name.find(']', p);
      if (end == std::string::npos) throw TemplateError("Missing ']' in format string");
      const std::string key = field_name.substr(p + 1, end - p - 1);
      if (key.empty()) throw TemplateError("Empty attribute in format string");
      const bool digits = std::all_of(key.begin(), key.end(), [](char d) {
        return std::isdigit(static_cast<unsigned char>(d));
      });
      v = lookup(v,
                 !attribute && digits ? Value(static_cast<int64_t>(std::stoll(key))) : Value(key),
                 attribute);
      p = attribute ? end : end + 1;
    }
    if (conversion == 'r' || conversion == 'a')
      v = Value(v.repr());
    else if (conversion == 's')
      v = Value(v.to_str());
    out += format_spec(v, spec);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// JSON

namespace {

// Values nested deeper than this are refused rather than recursed into (stack safety).
constexpr int kMaxJsonDepth = 512;

Value from_json_at(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxJsonDepth)
    throw TemplateError("template variables nested deeper than " + std::to_string(kMaxJsonDepth) +
                        " levels");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(from_json_at(item, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value d = Value::dict();
      for (const auto& [key, value] : j.items())
        d.dict_data().set(Value(key), from_json_at(value, depth + 1));
      return d;
    }
    default:
      throw TemplateError("unsupported JSON value (binary data)");
  }
}

}  // namespace

Value from_json(const nlohmann::ordered_json& j) { return from_json_at(j, 0); }

namespace {

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (char32_t c : utf8_decode(s)) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
          if (c >= 0x10000) {
            const uint32_t v = c - 0x10000;
            hex_escape(out, "\\u", 0xD800 + (v >> 10), 4);
            hex_escape(out, "\\u", 0xDC00 + (v & 0x3FF), 4);
          } else {
            hex_escape(out, "\\u", c, 4);
          }
        } else {
          utf8_append(out, c);
        }
    }
  }
  out += '"';
}

std::string json_float(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  return float_repr(x);
}

void dump(std::string& out, const Value& v, const JsonDumpOptions& o, int level) {
  RecursionGuard guard;
  const std::string item_sep =
      o.separators ? o.separators->first : (o.indent ? std::string(",") : std::string(", "));
  const std::string key_sep = o.separators ? o.separators->second : std::string(": ");
  auto newline = [&](int lvl) {
    out += '\n';
    for (int i = 0; i < lvl; ++i) out += *o.indent;
  };
  switch (v.kind()) {
    case Value::Kind::kNone:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::kFloat:
      out += json_float(v.as_float());
      return;
    case Value::Kind::kString:
      json_string(out, v.str(), o.ensure_ascii);
      return;
    case Value::Kind::kList:
    case Value::Kind::kTuple: {
      const auto& items = v.items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      if (o.indent) newline(level + 1);
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) {
          out += item_sep;
          if (o.indent) newline(level + 1);
        }
        dump(out, items[i], o, level + 1);
      }
      if (o.indent) newline(level);
      out += ']';
      return;
    }
    case Value::Kind::kDict: {
      const Dict& d = v.dict_data();
      if (d.size() == 0) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> entries;
      for (const auto& e : d.entries) entries.push_back(&e);
      if (o.sort_keys)
        std::stable_sort(entries.begin(), entries.end(), [](const auto* a, const auto* b) {
          return less_than(a->first, b->first);
        });
      out += '{';
      if (o.indent) newline(level + 1);
      bool first = true;
      for (const auto* e : entries) {
        if (!first) {
          out += item_sep;
          if (o.indent) newline(level + 1);
        }
        first = false;
        const Value& key = e->first;
        if (key.is_string())
          json_string(out, key.str(), o.ensure_ascii);
        else if (key.is_float())
          json_string(out, json_float(key.as_float()), false);
        else if (key.is_bool())
          out += key.as_bool() ? "\"true\"" : "\"false\"";
        else if (key.is_int())
          out += "\"" + std::to_string(key.as_int()) + "\"";
        else if (key.is_none())
          out += "\"null\"";
        else
          type_error("keys must be str, int, float, bool or None, not " + key.type_name());
        out += key_sep;
        dump(out, e->second, o, level + 1);
      }
      if (o.indent) newline(level);
      out += '}';
      return;
    }
    default:
      type_error("Object of type " + v.type_name() + " is not JSON serializable");
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonDumpOptions& options) {
  std::string out;
  dump(out, v, options, 0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// UTF-8 and character classes

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    char32_t cp = 0;
    if (c < 0x80) {
      n = 1, cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      n = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 4, cp = c & 0x07;
    }
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {  // not valid UTF-8 (templates are checked on load; be safe anyway)
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += n;
  }
  return out;
}

void utf8_append(std::string& out, char32_t c) { append_utf8(out, c); }

std::string utf8_encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) utf8_append(out, c);
  return out;
}

size_t utf8_length(std::string_view s) { return code_point_count(s); }

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Single code points: ICU's simple mappings and CPython's classes (python_unicode.h).
char32_t to_upper(char32_t c) { return static_cast<char32_t>(u_toupper(static_cast<UChar32>(c))); }
char32_t to_lower(char32_t c) { return static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))); }
bool is_cased(char32_t c) { return py_char_is_cased(c); }
bool is_digit(char32_t c) { return py_char_is_digit(c); }
bool is_alpha(char32_t c) { return py_char_is_alpha(c); }

std::string upper(std::string_view s) { return py_upper(s); }
std::string lower(std::string_view s) { return py_lower(s); }

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                  bool right) {
  const std::u32string text = utf8_decode(s);
  const std::u32string set = chars ? utf8_decode(*chars) : std::u32string();
  auto strippable = [&](char32_t c) {
    return chars ? set.find(c) != std::u32string::npos : is_space(c);
  };
  size_t begin = 0, end = text.size();
  if (left)
    while (begin < end && strippable(text[begin])) ++begin;
  if (right)
    while (end > begin && strippable(text[end - 1])) --end;
  return utf8_encode(text.substr(begin, end - begin));
}

}  // namespace expo::jinja
