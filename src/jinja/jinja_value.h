#pragma once
// The values of the Jinja engine (src/jinja/jinja.h) and the Python semantics templates rely on:
// truthiness, str() and repr(), ==, <, arithmetic, `in`, len() and iteration, exactly as CPython
// and Jinja2 define them for the types chat templates meet (None, bool, int, float, str, list,
// tuple, dict, jinja2's Undefined and Namespace, generators from filters, loop objects, callables).
// Lists and dicts are shared by reference, as Python objects are.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace expo::jinja {

// An error while lexing, parsing or rendering. Internal to the engine: jinja::Template turns it
// into expo::Error with the template's name, line and column.
class TemplateError : public std::runtime_error {
 public:
  explicit TemplateError(const std::string& message, int line = 0, int column = 0)
      : std::runtime_error(message), line(line), column(column) {}
  int line;    // 1-based; 0 while not yet known (the innermost node being evaluated fills it)
  int column;  // 1-based, in characters
};

// Strings and lists built by one operation are bounded so that `'a' * 10**12` or
// `'x'.center(10**12)` fails at once instead of exhausting memory (CPython would try; a chat
// template never needs this much). The configurable, lower limits of jinja::Limits are checked
// on every value the interpreter produces; this one guards the allocation inside an operation.
inline constexpr int64_t kMaxBuiltSize = int64_t{1} << 28;
// Throws TemplateError "WHAT too large" when size > kMaxBuiltSize.
void check_built_size(int64_t size, const char* what);

class Value;
struct Dict;
struct Function;
struct LoopState;
struct IteratorState;

// Positional and keyword arguments of a call, in the order written.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

class Value {
 public:
  enum class Kind {
    kUndefined,  // jinja2.Undefined: prints as "", falsy, iterates as empty; anything else fails
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kTuple,
    kDict,
    kNamespace,  // jinja2.utils.Namespace: attributes settable with {% set ns.x = ... %}
    kIterator,   // a generator (map, select, reverse...): single pass, always truthy, no len()
    kFunction,   // a builtin, a bound method or a macro
    kLoop,       // the `loop` object of a for loop
  };

  Value();  // Undefined, as an unknown variable name would be
  Value(bool b);
  Value(int64_t i);
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(size_t i) : Value(static_cast<int64_t>(i)) {}
  Value(double f);
  Value(std::string s);
  Value(std::string_view s) : Value(std::string(s)) {}
  Value(const char* s) : Value(std::string(s)) {}

  static Value none();
  // An Undefined whose use fails with `message`, as jinja2's Undefined(hint=...) does.
  static Value undefined(std::string message);
  // The sandbox's Undefined for an unsafe attribute: calling it raises `message`.
  static Value unsafe_undefined(std::string message);
  static Value undefined_name(const std::string& name);               // "'x' is undefined"
  static Value undefined_member(const Value& obj, const Value& key);  // "'dict object' has no..."
  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items);
  static Value dict();
  static Value dict(std::shared_ptr<Dict> d);
  static Value namespace_object();
  static Value iterator(std::vector<Value> items, std::string type_name = "generator");
  static Value function(std::string name, std::function<Value(CallArgs&)> fn,
                        std::string type_name = "builtin_function_or_method");
  static Value loop(std::shared_ptr<LoopState> state);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_integral() const { return kind_ == Kind::kInt || kind_ == Kind::kBool; }  // Python int
  bool is_number() const { return is_integral() || kind_ == Kind::kFloat; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kTuple; }
  bool is_sequence_like() const { return kind_ == Kind::kList || kind_ == Kind::kTuple; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_iterator() const { return kind_ == Kind::kIterator; }
  bool is_function() const { return kind_ == Kind::kFunction; }
  bool is_loop() const { return kind_ == Kind::kLoop; }

  bool as_bool() const { return bool_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (bool_ ? 1 : 0) : int_; }
  double as_float() const { return kind_ == Kind::kFloat ? float_ : static_cast<double>(as_int()); }
  const std::string& str() const { return *str_; }
  std::vector<Value>& items() const { return *list_; }  // list or tuple elements
  Dict& dict_data() const { return *dict_; }            // dict or namespace attributes
  const std::shared_ptr<Dict>& dict_ptr() const { return dict_; }
  Function& function_data() const;
  LoopState& loop_data() const;
  IteratorState& iterator_data() const;
  const std::string& undefined_message() const { return *str_; }
  bool undefined_is_unsafe() const { return bool_; }

  // Raises what using this Undefined raises (UndefinedError or the sandbox's SecurityError).
  [[noreturn]] void fail_undefined() const;

  // Python's bool(), str(), repr(), type(x).__name__ and jinja2's object_type_repr().
  bool truthy() const;
  std::string to_str() const;
  std::string repr() const;
  std::string type_name() const;
  std::string object_type_repr() const;
  // Same object (Python's `is`) for reference types; equal value for the others.
  bool same_as(const Value& other) const;

 private:
  Kind kind_;
  bool bool_ = false;  // kBool; kUndefined: unsafe (SecurityError)
  int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<const std::string> str_;  // kString; kUndefined: the message
  std::shared_ptr<std::vector<Value>> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<void> object_;  // Function, LoopState or IteratorState
};

// A Python dict: insertion-ordered, keyed by hashable values (str, int, float, bool, None, tuple).
struct Dict {
  std::vector<std::pair<Value, Value>> entries;
  std::unordered_map<std::string, size_t> index;  // hash_key(key) -> position in entries

  const Value* find(const Value& key) const;
  const Value* find(const std::string& key) const { return find(Value(key)); }
  void set(const Value& key, Value value);
  size_t size() const { return entries.size(); }
};

struct Function {
  std::string name;
  std::string type_name;  // "builtin_function_or_method", "Macro"
  std::function<Value(CallArgs&)> call;
};

struct IteratorState {
  std::vector<Value> items;
  size_t position = 0;  // items before it were consumed
  std::string type_name;
};

struct LoopState {
  std::shared_ptr<const std::vector<Value>> items;
  size_t index0 = 0;
  int64_t depth0 = 0;
  std::optional<std::vector<Value>> last_changed;
  std::function<Value(const Value& iterable)> recurse;  // set for `recursive` loops
};

// The key under which a value is found in a Dict (1, 1.0 and True are one key, as in Python).
// Throws TemplateError "unhashable type: 'list'" for lists and dicts.
std::string hash_key(const Value& key);

// Python operators. Errors carry CPython's messages ("unsupported operand type(s) for +: ...").
bool equals(const Value& a, const Value& b);
bool less_than(const Value& a, const Value& b);  // `<`; TypeError between unordered types
Value compare(const std::string& op, const Value& a, const Value& b);    // eq ne lt lteq gt gteq
bool contains(const Value& container, const Value& item);                // `item in container`
Value binary_op(const std::string& op, const Value& a, const Value& b);  // + - * / // % **
Value negate(const Value& a);
Value unary_plus(const Value& a);
// `format % args`, printf-style, as str.__mod__.
std::string percent_format(const std::string& format, const Value& args);
// str.format(*args, **kwargs). `lookup(obj, key, attribute)` resolves "{0.name}" (attribute)
// and "{0[key]}" fields (the sandbox's getattr and getitem).
using FieldLookup = std::function<Value(const Value& obj, const Value& key, bool attribute)>;
std::string str_format(const std::string& format, const CallArgs& args, const FieldLookup& lookup);

// len() (TypeError for values without one) and iter(): a dict iterates its keys, a string its
// characters, an Undefined nothing; an iterator is consumed.
int64_t length(const Value& v);
std::vector<Value> iterate(const Value& v);

// Numbers as Python prints them: repr(float) is the shortest round-trip form ("0.1", "1e-05").
std::string float_repr(double x);
std::string string_repr(const std::string& s);  // repr(str): quotes and escapes

// Conversions with JSON: objects keep their key order (use nlohmann::ordered_json).
Value from_json(const nlohmann::ordered_json& j);

struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // json.dumps(indent=...), already turned into a string
  std::optional<std::pair<std::string, std::string>> separators;
  bool sort_keys = false;
};
// json.dumps(v, ...): TypeError "Object of type X is not JSON serializable" for others.
std::string to_json(const Value& v, const JsonDumpOptions& options);

// UTF-8 and Python's Unicode character classes, for str methods and slicing by characters.
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);
void utf8_append(std::string& out, char32_t c);
size_t utf8_length(std::string_view s);
bool is_space(char32_t c);      // str.isspace()
char32_t to_upper(char32_t c);  // simple (one code point) mappings
char32_t to_lower(char32_t c);
bool is_cased(char32_t c);
bool is_alpha(char32_t c);
bool is_digit(char32_t c);
std::string upper(std::string_view s);  // str.upper() and str.lower(): python_unicode.h
std::string lower(std::string_view s);
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                  bool right);

}  // namespace expo::jinja
