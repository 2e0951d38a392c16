#include "jinja/jinja_builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <unordered_map>

#include "jinja/python_unicode.h"

namespace expo::jinja {

namespace {

[[noreturn]] void type_error(const std::string& message) { throw TemplateError(message); }

// ---------------------------------------------------------------------------------------------
// Arguments

// Binds positional and keyword arguments to parameter names, as a Python def with defaults.
class Params {
 public:
  Params(const std::string& fn, const CallArgs& args, std::vector<std::string> names,
         size_t required = 0)
      : names_(std::move(names)), values_(names_.size()) {
    if (args.positional.size() > names_.size())
      type_error(fn + "() takes at most " + std::to_string(names_.size()) + " argument(s) (" +
                 std::to_string(args.positional.size()) + " given)");
    for (size_t i = 0; i < args.positional.size(); ++i) values_[i] = args.positional[i];
    for (const auto& [key, value] : args.keyword) {
      const auto it = std::find(names_.begin(), names_.end(), key);
      if (it == names_.end())
        type_error(fn + "() got an unexpected keyword argument '" + key + "'");
      const size_t i = static_cast<size_t>(it - names_.begin());
      if (values_[i]) type_error(fn + "() got multiple values for argument '" + key + "'");
      values_[i] = value;
    }
    for (size_t i = 0; i < required; ++i)
      if (!values_[i]) type_error(fn + "() missing required argument '" + names_[i] + "'");
  }
  bool has(size_t i) const { return values_[i].has_value(); }
  // Given and not None: Python's `if x is not None`.
  bool given(size_t i) const { return values_[i].has_value() && !values_[i]->is_none(); }
  const Value& operator[](size_t i) const { return *values_[i]; }
  Value get(size_t i, Value fallback) const { return values_[i] ? *values_[i] : fallback; }

 private:
  std::vector<std::string> names_;
  std::vector<std::optional<Value>> values_;
};

void no_arguments(const std::string& fn, const CallArgs& args) { Params(fn, args, {}); }

int64_t as_index(const Value& v) {
  if (v.is_undefined()) v.fail_undefined();
  if (!v.is_integral())
    type_error("'" + v.type_name() + "' object cannot be interpreted as an integer");
  return v.as_int();
}

std::string soft_str(const Value& v) { return v.to_str(); }

const std::string& need_str(const Value& v, const std::string& what) {
  if (v.is_undefined()) v.fail_undefined();
  if (!v.is_string()) type_error(what + " must be str, not " + v.type_name());
  return v.str();
}

Value bound_method(const Value& self, const std::string& name,
                   Value (*method)(const Value&, const std::string&, CallArgs&)) {
  return Value::function(name + " of " + self.type_name() + " object",
                         [self, name, method](CallArgs& args) { return method(self, name, args); });
}

// ---------------------------------------------------------------------------------------------
// str methods

std::u32string u32(const std::string& s) { return utf8_decode(s); }

// Python's slice index clamping for find/count/startswith(start, end).
std::pair<size_t, size_t> clamp_range(size_t n, const Params& p, size_t start_i, size_t end_i) {
  int64_t start = p.given(start_i) ? as_index(p[start_i]) : 0;
  int64_t end = p.given(end_i) ? as_index(p[end_i]) : static_cast<int64_t>(n);
  const int64_t len = static_cast<int64_t>(n);
  if (start < 0) start = std::max<int64_t>(0, start + len);
  if (end < 0) end = std::max<int64_t>(0, end + len);
  start = std::min(start, len);
  end = std::min(end, len);
  return {static_cast<size_t>(start), static_cast<size_t>(std::max(start, end))};
}

bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

std::vector<std::u32string> split_lines(const std::u32string& s, bool keepends) {
  std::vector<std::u32string> lines;
  size_t i = 0, start = 0;
  while (i < s.size()) {
    if (is_line_break(s[i])) {
      size_t eol = i + 1;
      if (s[i] == '\r' && eol < s.size() && s[eol] == '\n') ++eol;
      lines.push_back(s.substr(start, (keepends ? eol : i) - start));
      start = i = eol;
    } else {
      ++i;
    }
  }
  if (start < s.size()) lines.push_back(s.substr(start));
  return lines;
}

std::vector<Value> split(const std::string& text, const Value& sep_value, int64_t maxsplit,
                         bool from_right) {
  const std::u32string s = u32(text);
  std::vector<std::u32string> parts;
  if (sep_value.is_none() || sep_value.is_undefined()) {
    // Runs of whitespace separate; leading and trailing whitespace is dropped.
    if (!from_right) {
      size_t i = 0;
      while (true) {
        while (i < s.size() && is_space(s[i])) ++i;
        if (i >= s.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
          parts.push_back(s.substr(i));
          break;
        }
        size_t j = i;
        while (j < s.size() && !is_space(s[j])) ++j;
        parts.push_back(s.substr(i, j - i));
        i = j;
      }
    } else {
      size_t i = s.size();
      while (true) {
        while (i > 0 && is_space(s[i - 1])) --i;
        if (i == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
          parts.push_back(s.substr(0, i));
          break;
        }
        size_t j = i;
        while (j > 0 && !is_space(s[j - 1])) --j;
        parts.push_back(s.substr(j, i - j));
        i = j;
      }
      std::reverse(parts.begin(), parts.end());
    }
  } else {
    const std::u32string sep = u32(need_str(sep_value, "separator"));
    if (sep.empty()) throw TemplateError("empty separator");
    if (!from_right) {
      size_t start = 0;
      while (true) {
        const size_t at = s.find(sep, start);
        if (at == std::u32string::npos ||
            (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
          parts.push_back(s.substr(start));
          break;
        }
        parts.push_back(s.substr(start, at - start));
        start = at + sep.size();
      }
    } else {
      size_t end = s.size();
      while (true) {
        const size_t at = end >= sep.size() ? s.rfind(sep, end - sep.size()) : std::u32string::npos;
        if (at == std::u32string::npos ||
            (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
          parts.push_back(s.substr(0, end));
          break;
        }
        parts.push_back(s.substr(at + sep.size(), end - at - sep.size()));
        end = at;
      }
      std::reverse(parts.begin(), parts.end());
    }
  }
  std::vector<Value> out;
  out.reserve(parts.size());
  for (const auto& part : parts) out.emplace_back(utf8_encode(part));
  return out;
}

std::string replace(const std::string& text, const std::string& old_text,
                    const std::string& new_text, int64_t count) {
  if (old_text.empty()) {  // Python inserts the replacement around every character
    const std::u32string s = u32(text);
    std::string out;
    int64_t done = 0;
    for (size_t i = 0; i <= s.size(); ++i) {
      if (count < 0 || done < count) {
        out += new_text;
        ++done;
      }
      if (i < s.size()) utf8_append(out, s[i]);
    }
    return out;
  }
  std::string out;
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t at = text.find(old_text, start);
    if (at == std::string::npos) break;
    out.append(text, start, at - start);
    out += new_text;
    start = at + old_text.size();
    ++done;
  }
  out.append(text, start, std::string::npos);
  return out;
}

std::string pad_to(const std::string& text, int64_t width, const std::string& fill, int where) {
  const int64_t n = static_cast<int64_t>(utf8_length(text));
  if (width <= n) return text;
  check_built_size(width, "width");
  const int64_t margin = width - n;
  int64_t left = where < 0 ? 0 : where > 0 ? margin : margin / 2 + (margin & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += text;
  for (int64_t i = 0; i < margin - left; ++i) out += fill;
  return out;
}

std::string fill_char(const Params& p, size_t i) {
  if (!p.has(i)) return " ";
  const std::string& f = need_str(p[i], "fill character");
  if (utf8_length(f) != 1) type_error("The fill character must be exactly one character long");
  return f;
}

bool starts_or_ends(const std::string& text, const Value& affix, const Params& p, bool ends) {
  const std::u32string s = u32(text);
  const auto [begin, end] = clamp_range(s.size(), p, 1, 2);
  const std::u32string window = s.substr(begin, end - begin);
  std::vector<Value> options = affix.is_tuple() ? affix.items() : std::vector<Value>{affix};
  for (const Value& option : options) {
    if (!option.is_string())
      type_error(std::string(ends ? "endswith" : "startswith") +
                 " first arg must be str or a tuple of str, not " + option.type_name());
    const std::u32string a = u32(option.str());
    if (a.size() > window.size()) continue;
    if (ends ? window.compare(window.size() - a.size(), a.size(), a) == 0
             : window.compare(0, a.size(), a) == 0)
      return true;
  }
  return false;
}

Value str_method(const Value& self, const std::string& name, CallArgs& args) {
  const std::string& s = self.str();
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    Params p(name, args, {"chars"});
    std::optional<std::string> chars;
    if (p.given(0)) chars = need_str(p[0], name + " arg");
    return Value(strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "startswith" || name == "endswith") {
    Params p(name, args, {"prefix", "start", "end"}, 1);
    return Value(starts_or_ends(s, p[0], p, name == "endswith"));
  }
  if (name == "split" || name == "rsplit") {
    Params p(name, args, {"sep", "maxsplit"});
    const int64_t maxsplit = p.has(1) ? as_index(p[1]) : -1;
    return Value::list(split(s, p.get(0, Value::none()), maxsplit, name == "rsplit"));
  }
  if (name == "splitlines") {
    Params p(name, args, {"keepends"});
    std::vector<Value> out;
    for (const auto& line : split_lines(u32(s), p.has(0) && p[0].truthy()))
      out.emplace_back(utf8_encode(line));
    return Value::list(std::move(out));
  }
  if (name == "replace") {
    Params p(name, args, {"old", "new", "count"}, 2);
    return Value(replace(s, need_str(p[0], "replace() argument 1"),
                         need_str(p[1], "replace() argument 2"), p.has(2) ? as_index(p[2]) : -1));
  }
  if (name == "upper") return no_arguments(name, args), Value(upper(s));
  if (name == "lower") return no_arguments(name, args), Value(lower(s));
  if (name == "casefold") return no_arguments(name, args), Value(py_casefold(s));
  if (name == "title") return no_arguments(name, args), Value(py_title(s));
  if (name == "capitalize") return no_arguments(name, args), Value(py_capitalize(s));
  if (name == "swapcase") {
    no_arguments(name, args);
    return Value(py_swapcase(s));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    Params p(name, args, {"sub", "start", "end"}, 1);
    const std::u32string text = u32(s);
    const std::u32string sub = u32(need_str(p[0], "must be str, not"));
    const auto [begin, end] = clamp_range(text.size(), p, 1, 2);
    const std::u32string window = text.substr(begin, end - begin);
    if (name == "count") {
      if (sub.empty()) return Value(static_cast<int64_t>(window.size() + 1));
      int64_t n = 0;
      for (size_t at = window.find(sub); at != std::u32string::npos;
           at = window.find(sub, at + sub.size()))
        ++n;
      return Value(n);
    }
    const size_t at = name[0] == 'r' ? window.rfind(sub) : window.find(sub);
    if (at == std::u32string::npos) {
      if (name == "index" || name == "rindex") throw TemplateError("substring not found");
      return Value(int64_t{-1});
    }
    return Value(static_cast<int64_t>(begin + at));
  }
  if (name == "join") {
    Params p(name, args, {"iterable"}, 1);
    std::string out;
    const std::vector<Value> items = iterate(p[0]);
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string())
        type_error("sequence item " + std::to_string(i) + ": expected str instance, " +
                   items[i].type_name() + " found");
      if (i) out += s;
      out += items[i].str();
    }
    return Value(out);
  }
  if (name == "center" || name == "ljust" || name == "rjust") {
    Params p(name, args, {"width", "fillchar"}, 1);
    const int where = name == "ljust" ? -1 : name == "rjust" ? 1 : 0;
    return Value(pad_to(s, as_index(p[0]), fill_char(p, 1), where));
  }
  if (name == "zfill") {
    Params p(name, args, {"width"}, 1);
    std::string body = s;
    std::string sign;
    if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
      sign = body.substr(0, 1);
      body.erase(0, 1);
    }
    const int64_t width = as_index(p[0]);
    check_built_size(width, "zfill() width");
    const int64_t missing = width - static_cast<int64_t>(utf8_length(s));
    return Value(sign + std::string(static_cast<size_t>(std::max<int64_t>(0, missing)), '0') +
                 body);
  }
  if (name == "partition" || name == "rpartition") {
    Params p(name, args, {"sep"}, 1);
    const std::string& sep = need_str(p[0], "must be str, not");
    if (sep.empty()) throw TemplateError("empty separator");
    const size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (at == std::string::npos)
      return name == "partition" ? Value::tuple({Value(s), Value(""), Value("")})
                                 : Value::tuple({Value(""), Value(""), Value(s)});
    return Value::tuple({Value(s.substr(0, at)), Value(sep), Value(s.substr(at + sep.size()))});
  }
  if (name == "removeprefix" || name == "removesuffix") {
    Params p(name, args, {"affix"}, 1);
    const std::string& a = need_str(p[0], "must be str, not");
    if (name == "removeprefix" && s.compare(0, a.size(), a) == 0) return Value(s.substr(a.size()));
    if (name == "removesuffix" && !a.empty() && s.size() >= a.size() &&
        s.compare(s.size() - a.size(), a.size(), a) == 0)
      return Value(s.substr(0, s.size() - a.size()));
    return Value(s);
  }
  if (name == "format")
    return Value(str_format(s, args, [](const Value& obj, const Value& key, bool attribute) {
      return attribute ? get_attr(obj, key.str()) : get_item(obj, key);
    }));
  if (name.rfind("is", 0) == 0) {
    no_arguments(name, args);
    const std::u32string text = u32(s);
    auto all = [&](auto pred) {
      return !text.empty() && std::all_of(text.begin(), text.end(), pred);
    };
    if (name == "isdigit") return Value(all(py_char_is_digit));
    if (name == "isdecimal") return Value(all(py_char_is_decimal));
    if (name == "isnumeric") return Value(all(py_char_is_numeric));
    if (name == "isalpha") return Value(all(py_char_is_alpha));
    if (name == "isalnum") return Value(all(py_char_is_alnum));
    if (name == "isspace") return Value(all(is_space));
    if (name == "islower") return Value(py_islower(s));
    if (name == "isupper") return Value(py_isupper(s));
    if (name == "isascii")
      return Value(std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; }));
    if (name == "isidentifier")
      return Value(!text.empty() && (is_alpha(text[0]) || text[0] == '_') &&
                   std::all_of(text.begin(), text.end(),
                               [](char32_t c) { return is_alpha(c) || is_digit(c) || c == '_'; }));
    if (name == "istitle") return Value(py_istitle(s));
    if (name == "isprintable")
      return Value(std::all_of(text.begin(), text.end(), [](char32_t c) {
        return c >= 0x20 && c != 0x7F && !(c >= 0x80 && c <= 0xA0);
      }));
  }
  throw TemplateError("str." + name + "() is not supported by expo's Jinja engine");
}

const std::set<std::string> kStrMethods = {
    "capitalize",   "casefold",    "center",    "count",      "encode",       "endswith",
    "expandtabs",   "find",        "format",    "format_map", "index",        "isalnum",
    "isalpha",      "isascii",     "isdecimal", "isdigit",    "isidentifier", "islower",
    "isnumeric",    "isprintable", "isspace",   "istitle",    "isupper",      "join",
    "ljust",        "lower",       "lstrip",    "maketrans",  "partition",    "removeprefix",
    "removesuffix", "replace",     "rfind",     "rindex",     "rjust",        "rpartition",
    "rsplit",       "rstrip",      "split",     "splitlines", "startswith",   "strip",
    "swapcase",     "title",       "translate", "upper",      "zfill"};

// ---------------------------------------------------------------------------------------------
// list, tuple and dict methods

const std::set<std::string> kListMethods = {"append", "clear",   "copy",   "count",
                                            "extend", "index",   "insert", "pop",
                                            "remove", "reverse", "sort"};
// What ImmutableSandboxedEnvironment refuses (jinja2/sandbox.py _mutable_spec): list.pop and
// list.clear are not in its list, so they work.
const std::set<std::string> kListUnsafe = {"append", "extend",  "insert",
                                           "remove", "reverse", "sort"};
const std::set<std::string> kDictMethods = {"clear",      "copy",   "fromkeys", "get",
                                            "items",      "keys",   "pop",      "popitem",
                                            "setdefault", "update", "values"};
const std::set<std::string> kDictUnsafe = {"clear", "pop", "popitem", "setdefault", "update"};

Value list_method(const Value& self, const std::string& name, CallArgs& args) {
  std::vector<Value>& items = self.items();
  if (name == "count") {
    Params p(name, args, {"value"}, 1);
    int64_t n = 0;
    for (const Value& v : items) n += equals(v, p[0]);
    return Value(n);
  }
  if (name == "index") {
    Params p(name, args, {"value"}, 1);
    for (size_t i = 0; i < items.size(); ++i)
      if (equals(items[i], p[0])) return Value(static_cast<int64_t>(i));
    throw TemplateError(p[0].repr() + " is not in " + self.type_name());
  }
  if (name == "copy") return no_arguments(name, args), Value::list(items);
  if (name == "pop") {
    Params p(name, args, {"index"});
    if (items.empty()) throw TemplateError("pop from empty list");
    int64_t i = p.has(0) ? as_index(p[0]) : -1;
    if (i < 0) i += static_cast<int64_t>(items.size());
    if (i < 0 || i >= static_cast<int64_t>(items.size()))
      throw TemplateError("pop index out of range");
    Value v = items[static_cast<size_t>(i)];
    items.erase(items.begin() + i);
    return v;
  }
  if (name == "clear") {
    no_arguments(name, args);
    items.clear();
    return Value::none();
  }
  throw TemplateError("list." + name + "() is not supported by expo's Jinja engine");
}

Value dict_items(const Value& self) {
  std::vector<Value> out;
  for (const auto& [k, v] : self.dict_data().entries) out.push_back(Value::tuple({k, v}));
  return Value::list(std::move(out));
}

Value dict_method(const Value& self, const std::string& name, CallArgs& args) {
  const Dict& d = self.dict_data();
  if (name == "get") {
    Params p(name, args, {"key", "default"}, 1);
    const Value* found = d.find(p[0]);
    return found ? *found : p.get(1, Value::none());
  }
  if (name == "items") return no_arguments(name, args), dict_items(self);
  if (name == "keys") return no_arguments(name, args), Value::list(iterate(self));
  if (name == "values") {
    no_arguments(name, args);
    std::vector<Value> out;
    for (const auto& entry : d.entries) out.push_back(entry.second);
    return Value::list(std::move(out));
  }
  if (name == "copy") {
    no_arguments(name, args);
    return Value::dict(std::make_shared<Dict>(d));
  }
  if (name == "fromkeys") {
    Params p(name, args, {"iterable", "value"}, 1);
    Value out = Value::dict();
    for (const Value& k : iterate(p[0])) out.dict_data().set(k, p.get(1, Value::none()));
    return out;
  }
  throw TemplateError("dict." + name + "() is not supported by expo's Jinja engine");
}

Value unsafe_attribute(const Value& obj, const std::string& name) {
  return Value::unsafe_undefined("access to attribute " + string_repr(name) + " of " +
                                 string_repr(obj.type_name()) + " object is unsafe.");
}

Value loop_attribute(const Value& loop, const std::string& name, bool* found) {
  const LoopState& l = loop.loop_data();
  const int64_t n = static_cast<int64_t>(l.items->size());
  const int64_t i = static_cast<int64_t>(l.index0);
  *found = true;
  if (name == "index") return Value(i + 1);
  if (name == "index0") return Value(i);
  if (name == "revindex") return Value(n - i);
  if (name == "revindex0") return Value(n - i - 1);
  if (name == "first") return Value(i == 0);
  if (name == "last") return Value(i + 1 == n);
  if (name == "length") return Value(n);
  if (name == "depth") return Value(l.depth0 + 1);
  if (name == "depth0") return Value(l.depth0);
  if (name == "previtem")
    return i == 0 ? Value::undefined("there is no previous item") : (*l.items)[i - 1];
  if (name == "nextitem")
    return i + 1 >= n ? Value::undefined("there is no next item") : (*l.items)[i + 1];
  if (name == "cycle")
    return Value::function("cycle", [loop](CallArgs& args) {
      if (!args.keyword.empty()) type_error("cycle() takes no keyword arguments");
      if (args.positional.empty()) type_error("no items for cycling given");
      return args.positional[loop.loop_data().index0 % args.positional.size()];
    });
  if (name == "changed")
    return Value::function("changed", [loop](CallArgs& args) {
      LoopState& state = loop.loop_data();
      const std::vector<Value>& now = args.positional;
      bool same = state.last_changed && state.last_changed->size() == now.size();
      for (size_t k = 0; same && k < now.size(); ++k)
        same = equals((*state.last_changed)[k], now[k]);
      if (same) return Value(false);
      state.last_changed = now;
      return Value(true);
    });
  *found = false;
  return Value();
}

bool is_dunder(const std::string& name) {
  return name.size() > 4 && name.compare(0, 2, "__") == 0 &&
         name.compare(name.size() - 2, 2, "__") == 0;
}

// getattr(obj, name) in the sandbox, when the Python object has that attribute.
std::optional<Value> python_attribute(const Value& obj, const std::string& name) {
  if (is_dunder(name)) return unsafe_attribute(obj, name);
  switch (obj.kind()) {
    case Value::Kind::kString:
      if (kStrMethods.count(name)) return bound_method(obj, name, str_method);
      break;
    case Value::Kind::kList:
      if (kListUnsafe.count(name)) return unsafe_attribute(obj, name);
      if (kListMethods.count(name)) return bound_method(obj, name, list_method);
      break;
    case Value::Kind::kTuple:
      if (name == "count" || name == "index") return bound_method(obj, name, list_method);
      break;
    case Value::Kind::kDict:
      if (kDictUnsafe.count(name)) return unsafe_attribute(obj, name);
      if (kDictMethods.count(name)) return bound_method(obj, name, dict_method);
      break;
    case Value::Kind::kNamespace:
      if (const Value* v = obj.dict_data().find(name)) return *v;
      break;
    case Value::Kind::kLoop: {
      bool found;
      Value v = loop_attribute(obj, name, &found);
      if (found) return v;
      break;
    }
    default:
      break;
  }
  return std::nullopt;
}

}  // namespace

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) obj.fail_undefined();
  if (auto attr = python_attribute(obj, name)) return *attr;
  if (obj.is_dict())
    if (const Value* v = obj.dict_data().find(name)) return *v;
  return Value::undefined_member(obj, Value(name));
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) obj.fail_undefined();
  switch (obj.kind()) {
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      if (key.is_integral()) {
        int64_t i = key.as_int();
        const int64_t n = static_cast<int64_t>(obj.items().size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return obj.items()[static_cast<size_t>(i)];
        return Value::undefined_member(obj, key);
      }
      break;
    case Value::Kind::kString:
      if (key.is_integral()) {
        const std::u32string s = utf8_decode(obj.str());
        int64_t i = key.as_int();
        const int64_t n = static_cast<int64_t>(s.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return Value(utf8_encode(s.substr(static_cast<size_t>(i), 1)));
        return Value::undefined_member(obj, key);
      }
      break;
    case Value::Kind::kDict:
      if (!key.is_list() && !key.is_dict())
        if (const Value* v = obj.dict_data().find(key)) return *v;
      break;
    default:
      break;
  }
  if (key.is_string())
    if (auto attr = python_attribute(obj, key.str())) return *attr;
  return Value::undefined_member(obj, key);
}

Value get_slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (obj.is_undefined()) obj.fail_undefined();
  // obj[slice] raising TypeError (not a sequence, or indices that are not integers) gives an
  // Undefined in jinja2's getitem; a zero step is a ValueError and propagates.
  bool integral_indices = true;
  for (const Value* v : {&start_v, &stop_v, &step_v})
    integral_indices = integral_indices && (v->is_none() || v->is_integral());
  if ((!obj.is_string() && !obj.is_sequence_like()) || !integral_indices)
    return Value::undefined(obj.object_type_repr() + " has no element slice(" + start_v.repr() +
                            ", " + stop_v.repr() + ", " + step_v.repr() + ")");
  const int64_t step = step_v.is_none() ? 1 : step_v.as_int();
  if (step == 0) throw TemplateError("slice step cannot be zero");
  const std::u32string chars = obj.is_string() ? utf8_decode(obj.str()) : std::u32string();
  const int64_t n = static_cast<int64_t>(obj.is_string() ? chars.size() : obj.items().size());
  auto adjust = [&](const Value& v, int64_t fallback) {
    if (v.is_none()) return fallback;
    int64_t i = v.as_int();
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t start = adjust(start_v, step < 0 ? n - 1 : 0);
  const int64_t stop = adjust(stop_v, step < 0 ? -1 : n);
  std::vector<int64_t> indices;
  if (step > 0)
    for (int64_t i = start; i < stop; i += step) indices.push_back(i);
  else
    for (int64_t i = start; i > stop; i += step) indices.push_back(i);
  if (obj.is_string()) {
    std::u32string out;
    for (int64_t i : indices) out += chars[static_cast<size_t>(i)];
    return Value(utf8_encode(out));
  }
  std::vector<Value> out;
  for (int64_t i : indices) out.push_back(obj.items()[static_cast<size_t>(i)]);
  return obj.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Value call(const Value& callee, CallArgs& args) {
  switch (callee.kind()) {
    case Value::Kind::kFunction:
      return callee.function_data().call(args);
    case Value::Kind::kUndefined:
      callee.fail_undefined();
    case Value::Kind::kLoop: {
      const LoopState& l = callee.loop_data();
      if (!l.recurse)
        type_error("The loop must have the 'recursive' marker to be called recursively.");
      if (args.positional.size() != 1 || !args.keyword.empty())
        type_error("loop() takes exactly one argument");
      return l.recurse(args.positional[0]);
    }
    default:
      type_error("'" + callee.type_name() + "' object is not callable");
  }
}

namespace {

// ---------------------------------------------------------------------------------------------
// Filters

using Filter = Value (*)(const Value&, CallArgs&);
using Test = bool (*)(const Value&, CallArgs&);

// jinja2's make_attrgetter: dotted paths, integer parts looked up as integers, item first.
std::vector<Value> attribute_parts(const Value& attribute) {
  if (attribute.is_none()) return {};
  if (!attribute.is_string()) return {attribute};
  std::vector<Value> parts;
  for (const Value& part : split(attribute.str(), Value("."), -1, false)) {
    const std::string& s = part.str();
    if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      parts.emplace_back(static_cast<int64_t>(std::strtoll(s.c_str(), nullptr, 10)));
    else
      parts.push_back(part);
  }
  return parts;
}

Value lower_if_string(const Value& v) { return v.is_string() ? Value(lower(v.str())) : v; }

struct AttrGetter {
  std::vector<Value> parts;
  std::optional<Value> default_value;
  bool lowercase = false;
  Value operator()(Value item) const {
    for (const Value& part : parts) {
      item = get_item(item, part);
      if (default_value && item.is_undefined()) item = *default_value;
    }
    return lowercase ? lower_if_string(item) : item;
  }
};

// make_multi_attrgetter (sort): comma-separated attributes give a list of keys.
std::function<Value(const Value&)> multi_attr_getter(const Value& attribute, bool lowercase) {
  std::vector<AttrGetter> getters;
  if (attribute.is_string() && attribute.str().find(',') != std::string::npos) {
    for (const Value& part : split(attribute.str(), Value(","), -1, false))
      getters.push_back(AttrGetter{attribute_parts(part), std::nullopt, lowercase});
    return [getters](const Value& item) {
      std::vector<Value> keys;
      for (const auto& g : getters) keys.push_back(g(item));
      return Value::list(std::move(keys));
    };
  }
  AttrGetter g{attribute_parts(attribute), std::nullopt, lowercase};
  return [g](const Value& item) { return Value::list({g(item)}); };
}

Value f_abs(const Value& v, CallArgs& args) {
  no_arguments("abs", args);
  if (v.is_integral()) {
    if (v.as_int() < 0) return negate(v);
    return Value(v.as_int());
  }
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  type_error("bad operand type for abs(): '" + v.type_name() + "'");
}

Value f_attr(const Value& v, CallArgs& args) {
  Params p("attr", args, {"name"}, 1);
  const std::string& name = need_str(p[0], "attribute name");
  if (v.is_undefined()) v.fail_undefined();
  if (auto attr = python_attribute(v, name)) return *attr;
  return Value::undefined_member(v, Value(name));
}

Value f_batch(const Value& v, CallArgs& args) {
  Params p("batch", args, {"linecount", "fill_with"}, 1);
  const int64_t count = as_index(p[0]);
  std::vector<Value> out, tmp;
  for (const Value& item : iterate(v)) {
    if (static_cast<int64_t>(tmp.size()) == count) {
      out.push_back(Value::list(std::move(tmp)));
      tmp.clear();
    }
    tmp.push_back(item);
  }
  if (!tmp.empty()) {
    if (p.given(1))
      while (static_cast<int64_t>(tmp.size()) < count) tmp.push_back(p[1]);
    out.push_back(Value::list(std::move(tmp)));
  }
  return Value::iterator(std::move(out));
}

Value f_capitalize(const Value& v, CallArgs& args) {
  no_arguments("capitalize", args);
  return Value(py_capitalize(soft_str(v)));
}

Value f_center(const Value& v, CallArgs& args) {
  Params p("center", args, {"width"});
  return Value(pad_to(soft_str(v), p.has(0) ? as_index(p[0]) : 80, " ", 0));
}

Value f_default(const Value& v, CallArgs& args) {
  Params p("default", args, {"default_value", "boolean"});
  if (v.is_undefined() || (p.has(1) && p[1].truthy() && !v.truthy())) return p.get(0, Value(""));
  return v;
}

Value f_dictsort(const Value& v, CallArgs& args) {
  Params p("dictsort", args, {"case_sensitive", "by", "reverse"});
  const bool case_sensitive = p.has(0) && p[0].truthy();
  const std::string by = p.has(1) ? soft_str(p[1]) : "key";
  if (by != "key" && by != "value")
    throw TemplateError("You can only sort by either \"key\" or \"value\"");
  const bool reverse = p.has(2) && p[2].truthy();
  if (v.is_undefined()) v.fail_undefined();
  if (!v.is_dict()) type_error("'" + v.type_name() + "' object has no attribute 'items'");
  std::vector<Value> items = dict_items(v).items();
  const size_t pos = by == "key" ? 0 : 1;
  auto key = [&](const Value& item) {
    const Value& k = item.items()[pos];
    return case_sensitive ? k : lower_if_string(k);
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    return reverse ? less_than(key(b), key(a)) : less_than(key(a), key(b));
  });
  return Value::list(std::move(items));
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Value f_escape(const Value& v, CallArgs& args) {
  no_arguments("escape", args);
  return Value(html_escape(soft_str(v)));
}

Value f_first(const Value& v, CallArgs& args) {
  no_arguments("first", args);
  if (v.is_iterator()) {
    IteratorState& it = v.iterator_data();
    if (it.position < it.items.size()) return it.items[it.position++];
  } else {
    const std::vector<Value> items = iterate(v);
    if (!items.empty()) return items.front();
  }
  return Value::undefined("No first item, sequence was empty.");
}

// Python's float(str): optional whitespace and sign, digits with single underscores, inf, nan.
std::optional<double> parse_python_float(const std::string& text) {
  std::string s = strip(text, std::nullopt, true, true);
  std::string cleaned;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (i == 0 || i + 1 >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(s[i + 1])))
        return std::nullopt;
      continue;
    }
    cleaned += s[i];
  }
  if (cleaned.empty()) return std::nullopt;
  std::string body = cleaned;
  if (body[0] == '+' || body[0] == '-') body.erase(0, 1);
  const std::string l = lower(body);
  if (l == "inf" || l == "infinity" || l == "nan") {
    const double x = l == "nan" ? std::nan("") : INFINITY;
    return cleaned[0] == '-' ? -x : x;
  }
  bool digits = false, dot = false, exp = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits = true;
    } else if (c == '.' && !dot && !exp) {
      dot = true;
    } else if ((c == 'e' || c == 'E') && digits && !exp) {
      exp = true;
      digits = false;
      if (i + 1 < body.size() && (body[i + 1] == '+' || body[i + 1] == '-')) ++i;
    } else {
      return std::nullopt;
    }
  }
  if (!digits) return std::nullopt;
  return std::strtod(cleaned.c_str(), nullptr);
}

// Python's int(str, base).
std::optional<int64_t> parse_python_int(const std::string& text, int64_t base) {
  std::string s = strip(text, std::nullopt, true, true);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.erase(0, 1);
  }
  if (s.size() >= 2 && s[0] == '0') {
    const char p = static_cast<char>(s[1] | 0x20);
    const int64_t prefixed = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (prefixed && (base == prefixed || base == 0)) {
      base = prefixed;
      s.erase(0, 2);
      if (!s.empty() && s[0] == '_') s.erase(0, 1);
    }
  }
  if (base == 0) base = 10;
  if (s.empty()) return std::nullopt;
  uint64_t value = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_') {
      if (i == 0 || i + 1 >= s.size() || s[i + 1] == '_') return std::nullopt;
      continue;
    }
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
      d = (c | 0x20) - 'a' + 10;
    else
      return std::nullopt;
    if (d >= base) return std::nullopt;
    value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
    if (value > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  }
  return negative ? -static_cast<int64_t>(value) : static_cast<int64_t>(value);
}

Value f_float(const Value& v, CallArgs& args) {
  Params p("float", args, {"default"});
  if (v.is_undefined()) v.fail_undefined();
  if (v.is_number()) return Value(v.as_float());
  if (v.is_string())
    if (auto x = parse_python_float(v.str())) return Value(*x);
  return p.get(0, Value(0.0));
}

Value f_int(const Value& v, CallArgs& args) {
  Params p("int", args, {"default", "base"});
  if (v.is_undefined()) v.fail_undefined();
  if (v.is_integral()) return Value(v.as_int());
  if (v.is_float()) {
    const double x = v.as_float();
    if (std::isinf(x)) throw TemplateError("cannot convert float infinity to integer");
    if (!std::isnan(x) && std::fabs(x) < 9.2e18) return Value(static_cast<int64_t>(std::trunc(x)));
    if (!std::isnan(x)) throw TemplateError("integer too large for expo's 64-bit integers");
  }
  if (v.is_string()) {
    if (auto i = parse_python_int(v.str(), p.has(1) ? as_index(p[1]) : 10)) return Value(*i);
    if (auto x = parse_python_float(v.str()))
      if (std::isfinite(*x) && std::fabs(*x) < 9.2e18)
        return Value(static_cast<int64_t>(std::trunc(*x)));
  }
  return p.get(0, Value(int64_t{0}));
}

Value f_format(const Value& v, CallArgs& args) {
  if (!args.positional.empty() && !args.keyword.empty())
    throw TemplateError("can't handle positional and keyword arguments at the same time");
  if (!args.keyword.empty()) {
    Value d = Value::dict();
    for (const auto& [k, val] : args.keyword) d.dict_data().set(Value(k), val);
    return Value(percent_format(soft_str(v), d));
  }
  return Value(percent_format(soft_str(v), Value::tuple(args.positional)));
}

Value f_groupby(const Value& v, CallArgs& args) {
  Params p("groupby", args, {"attribute", "default", "case_sensitive"}, 1);
  const bool case_sensitive = p.has(2) && p[2].truthy();
  std::optional<Value> dflt;
  if (p.given(1)) dflt = p[1];
  AttrGetter key{attribute_parts(p[0]), dflt, !case_sensitive};
  AttrGetter output{attribute_parts(p[0]), dflt, false};
  std::vector<Value> items = iterate(v);
  std::vector<Value> keys;
  for (const Value& item : items) keys.push_back(key(item));
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return less_than(keys[a], keys[b]); });
  std::vector<Value> out;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    std::vector<Value> group;
    while (j < order.size() && equals(keys[order[j]], keys[order[i]]))
      group.push_back(items[order[j++]]);
    const Value grouper = case_sensitive ? keys[order[i]] : output(group.front());
    out.push_back(Value::tuple({grouper, Value::list(std::move(group))}));
    i = j;
  }
  return Value::list(std::move(out));
}

Value f_indent(const Value& v, CallArgs& args) {
  Params p("indent", args, {"width", "first", "blank"});
  std::string indention = "    ";
  if (p.has(0)) {
    if (p[0].is_string())
      indention = p[0].str();
    else
      indention =
          std::string(static_cast<size_t>(std::max<int64_t>(
                          0, (check_built_size(as_index(p[0]), "indent width"), as_index(p[0])))),
                      ' ');
  }
  if (v.is_undefined()) v.fail_undefined();
  if (!v.is_string())
    type_error("unsupported operand type(s) for +=: '" + v.type_name() + "' and 'str'");
  const std::vector<std::u32string> lines = split_lines(utf8_decode(v.str() + "\n"), false);
  std::string out;
  const bool blank = p.has(2) && p[2].truthy();
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string line = utf8_encode(lines[i]);
    if (i == 0) {
      out += line;
    } else {
      out += "\n";
      if (blank || !line.empty()) out += indention;
      out += line;
    }
  }
  if (p.has(1) && p[1].truthy()) out = indention + out;
  return Value(out);
}

Value f_items(const Value& v, CallArgs& args) {
  no_arguments("items", args);
  if (v.is_undefined()) return Value::iterator({});
  if (!v.is_dict()) throw TemplateError("Can only get item pairs from a mapping.");
  return Value::iterator(dict_items(v).items());
}

Value f_join(const Value& v, CallArgs& args) {
  Params p("join", args, {"d", "attribute"});
  const std::string sep = p.has(0) ? soft_str(p[0]) : "";
  std::vector<Value> items = iterate(v);
  std::string out;
  AttrGetter getter{attribute_parts(p.get(1, Value::none())), std::nullopt, false};
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += (p.given(1) ? getter(items[i]) : items[i]).to_str();
  }
  return Value(out);
}

Value f_last(const Value& v, CallArgs& args) {
  no_arguments("last", args);
  if (v.is_iterator()) type_error("'" + v.type_name() + "' object is not reversible");
  const std::vector<Value> items = iterate(v);
  if (!items.empty()) return items.back();
  return Value::undefined("No last item, sequence was empty.");
}

Value f_length(const Value& v, CallArgs& args) {
  no_arguments("length", args);
  return Value(length(v));
}

Value f_list(const Value& v, CallArgs& args) {
  no_arguments("list", args);
  return Value::list(iterate(v));
}

Value f_lower(const Value& v, CallArgs& args) {
  no_arguments("lower", args);
  return Value(lower(soft_str(v)));
}

Value f_upper(const Value& v, CallArgs& args) {
  no_arguments("upper", args);
  return Value(upper(soft_str(v)));
}

Value f_map(const Value& v, CallArgs& args) {
  std::vector<Value> out;
  if (!v.truthy()) return Value::iterator({});
  if (args.positional.empty()) {
    std::optional<Value> attribute, dflt;
    for (const auto& [k, val] : args.keyword) {
      if (k == "attribute")
        attribute = val;
      else if (k == "default")
        dflt = val;
      else
        throw TemplateError("Unexpected keyword argument " + string_repr(k));
    }
    if (!attribute) throw TemplateError("map requires a filter argument");
    if (dflt && dflt->is_none()) dflt.reset();
    AttrGetter getter{attribute_parts(*attribute), dflt, false};
    for (const Value& item : iterate(v)) out.push_back(getter(item));
    return Value::iterator(std::move(out));
  }
  const std::string name = soft_str(args.positional[0]);
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : iterate(v)) {
    CallArgs a = rest;
    out.push_back(apply_filter(name, item, a));
  }
  return Value::iterator(std::move(out));
}

Value min_or_max(const Value& v, CallArgs& args, bool max, const char* fn) {
  Params p(fn, args, {"case_sensitive", "attribute"});
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  AttrGetter key{attribute_parts(p.get(1, Value::none())), std::nullopt,
                 !(p.has(0) && p[0].truthy())};
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    if (max ? compare("gt", k, best_key).truthy() : compare("lt", k, best_key).truthy()) {
      best = i;
      best_key = k;
    }
  }
  return items[best];
}

Value f_max(const Value& v, CallArgs& args) { return min_or_max(v, args, true, "max"); }
Value f_min(const Value& v, CallArgs& args) { return min_or_max(v, args, false, "min"); }

Value f_pprint(const Value& v, CallArgs& args) {
  no_arguments("pprint", args);
  return Value(v.repr());
}

Value select_or_reject(const Value& v, CallArgs& args, bool select, bool lookup_attr) {
  if (!v.truthy()) return Value::iterator({});
  size_t off = 0;
  AttrGetter getter;
  if (lookup_attr) {
    if (args.positional.empty()) throw TemplateError("Missing parameter for attribute name");
    getter.parts = attribute_parts(args.positional[0]);
    off = 1;
  }
  std::optional<std::string> test;
  CallArgs test_args;
  if (args.positional.size() > off) {
    test = soft_str(args.positional[off]);
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(off) + 1,
                                args.positional.end());
    test_args.keyword = args.keyword;
  }
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    const Value subject = lookup_attr ? getter(item) : item;
    bool ok;
    if (test) {
      CallArgs a = test_args;
      ok = apply_test(*test, subject, a);
    } else {
      ok = subject.truthy();
    }
    if (ok == select) out.push_back(item);
  }
  return Value::iterator(std::move(out));
}

Value f_select(const Value& v, CallArgs& a) { return select_or_reject(v, a, true, false); }
Value f_reject(const Value& v, CallArgs& a) { return select_or_reject(v, a, false, false); }
Value f_selectattr(const Value& v, CallArgs& a) { return select_or_reject(v, a, true, true); }
Value f_rejectattr(const Value& v, CallArgs& a) { return select_or_reject(v, a, false, true); }

Value f_replace(const Value& v, CallArgs& args) {
  Params p("replace", args, {"old", "new", "count"}, 2);
  return Value(
      replace(soft_str(v), soft_str(p[0]), soft_str(p[1]), p.given(2) ? as_index(p[2]) : -1));
}

Value f_reverse(const Value& v, CallArgs& args) {
  no_arguments("reverse", args);
  if (v.is_string()) {
    std::u32string s = utf8_decode(v.str());
    std::reverse(s.begin(), s.end());
    return Value(utf8_encode(s));
  }
  if (v.is_iterator()) {  // reversed(generator) fails; jinja2 falls back to a list
    std::vector<Value> items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
  }
  if (v.is_sequence_like() || v.is_dict() || v.is_undefined()) {
    std::vector<Value> items = iterate(v);
    std::reverse(items.begin(), items.end());
    const char* type = v.is_list()    ? "list_reverseiterator"
                       : v.is_dict()  ? "dict_reversekeyiterator"
                       : v.is_tuple() ? "reversed"
                                      : "reversed";
    return Value::iterator(std::move(items), type);
  }
  throw TemplateError("argument must be iterable");
}

double round_half_even_digits(double x, int64_t digits) {
  if (!std::isfinite(x) || digits > 300) return x;
  if (digits >= 0) {
    // printf rounds the exact binary value, ties to even: what CPython's round() does.
    const int n = std::snprintf(nullptr, 0, "%.*f", static_cast<int>(digits), x);
    std::string buf(static_cast<size_t>(n) + 1, '\0');
    std::snprintf(buf.data(), buf.size(), "%.*f", static_cast<int>(digits), x);
    return std::strtod(buf.c_str(), nullptr);
  }
  const double scale = std::pow(10.0, static_cast<double>(-digits));
  return std::nearbyint(x / scale) * scale;
}

Value f_round(const Value& v, CallArgs& args) {
  Params p("round", args, {"precision", "method"});
  const int64_t precision = p.has(0) ? as_index(p[0]) : 0;
  const std::string method = p.has(1) ? soft_str(p[1]) : "common";
  if (method != "common" && method != "ceil" && method != "floor")
    throw TemplateError("method must be common, ceil or floor");
  if (v.is_undefined()) type_error("type Undefined doesn't define __round__ method");
  if (!v.is_number()) type_error("type " + v.type_name() + " doesn't define __round__ method");
  if (method == "common") {
    if (v.is_integral()) {
      if (precision >= 0) return Value(v.as_int());
      return Value(static_cast<int64_t>(round_half_even_digits(v.as_float(), precision)));
    }
    return Value(round_half_even_digits(v.as_float(), precision));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = v.as_float() * scale;
  return Value((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value f_safe(const Value& v, CallArgs& args) {
  no_arguments("safe", args);
  return Value(soft_str(v));
}

Value f_slice(const Value& v, CallArgs& args) {
  Params p("slice", args, {"slices", "fill_with"}, 1);
  const std::vector<Value> seq = iterate(v);
  const int64_t slices = as_index(p[0]);
  if (slices <= 0) throw TemplateError("integer division or modulo by zero");
  const int64_t length = static_cast<int64_t>(seq.size());
  const int64_t per = length / slices, extra = length % slices;
  int64_t offset = 0;
  std::vector<Value> out;
  for (int64_t k = 0; k < slices; ++k) {
    const int64_t start = offset + k * per;
    if (k < extra) ++offset;
    const int64_t end = offset + (k + 1) * per;
    std::vector<Value> tmp(seq.begin() + start, seq.begin() + end);
    if (p.given(1) && k >= extra) tmp.push_back(p[1]);
    out.push_back(Value::list(std::move(tmp)));
  }
  return Value::iterator(std::move(out));
}

Value f_sort(const Value& v, CallArgs& args) {
  Params p("sort", args, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = p.has(0) && p[0].truthy();
  const bool case_sensitive = p.has(1) && p[1].truthy();
  std::vector<Value> items = iterate(v);
  std::vector<Value> keys;
  if (p.given(2)) {
    auto getter = multi_attr_getter(p[2], !case_sensitive);
    for (const Value& item : items) keys.push_back(getter(item));
  } else {
    for (const Value& item : items)
      keys.push_back(Value::list({case_sensitive ? item : lower_if_string(item)}));
  }
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return reverse ? less_than(keys[b], keys[a]) : less_than(keys[a], keys[b]);
  });
  std::vector<Value> out;
  for (size_t i : order) out.push_back(items[i]);
  return Value::list(std::move(out));
}

Value f_string(const Value& v, CallArgs& args) {
  no_arguments("string", args);
  return Value(soft_str(v));
}

Value f_sum(const Value& v, CallArgs& args) {
  Params p("sum", args, {"attribute", "start"});
  Value total = p.get(1, Value(int64_t{0}));
  if (total.is_string()) type_error("sum() can't sum strings [use ''.join(seq) instead]");
  AttrGetter getter{attribute_parts(p.get(0, Value::none())), std::nullopt, false};
  for (const Value& item : iterate(v)) total = binary_op("+", total, getter(item));
  return total;
}

Value f_title(const Value& v, CallArgs& args) {
  no_arguments("title", args);
  // jinja2's do_title: split on runs of [-\s({\[<], upper the first character of each piece.
  const std::u32string s = utf8_decode(soft_str(v));
  auto is_break = [](char32_t c) {
    return is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
  };
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t j = i;
    const bool breaking = is_break(s[i]);
    while (j < s.size() && is_break(s[j]) == breaking) ++j;
    const std::u32string piece = s.substr(i, j - i);
    out += upper(utf8_encode(piece.substr(0, 1))) + lower(utf8_encode(piece.substr(1)));
    i = j;
  }
  return Value(out);
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False), not jinja2's HTML-escaping one.
Value f_tojson(const Value& v, CallArgs& args) {
  Params p("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions o;
  o.ensure_ascii = p.has(0) && p[0].truthy();
  if (p.given(1)) {
    if (p[1].is_string())
      o.indent = p[1].str();
    else
      o.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, as_index(p[1]))), ' ');
  }
  if (p.given(2)) {
    const std::vector<Value> seps = iterate(p[2]);
    if (seps.size() != 2 || !seps[0].is_string() || !seps[1].is_string())
      type_error("separators must be a pair of strings");
    o.separators = std::make_pair(seps[0].str(), seps[1].str());
  }
  o.sort_keys = p.has(3) && p[3].truthy();
  return Value(to_json(v, o));
}

Value f_trim(const Value& v, CallArgs& args) {
  Params p("trim", args, {"chars"});
  std::optional<std::string> chars;
  if (p.given(0)) chars = need_str(p[0], "strip arg");
  return Value(strip(soft_str(v), chars, true, true));
}

Value f_truncate(const Value& v, CallArgs& args) {
  Params p("truncate", args, {"length", "killwords", "end", "leeway"});
  const int64_t length = p.has(0) ? as_index(p[0]) : 255;
  const bool killwords = p.has(1) && p[1].truthy();
  const std::string end = p.has(2) ? soft_str(p[2]) : "...";
  const int64_t leeway = p.given(3) ? as_index(p[3]) : 5;
  const int64_t end_len = static_cast<int64_t>(utf8_length(end));
  if (length < end_len)
    throw TemplateError("expected length >= " + std::to_string(end_len) + ", got " +
                        std::to_string(length));
  if (leeway < 0) throw TemplateError("expected leeway >= 0, got " + std::to_string(leeway));
  const std::u32string s = utf8_decode(soft_str(v));
  if (static_cast<int64_t>(s.size()) <= length + leeway) return Value(soft_str(v));
  const std::u32string head = s.substr(0, static_cast<size_t>(length - end_len));
  if (killwords) return Value(utf8_encode(head) + end);
  const size_t space = head.rfind(U' ');
  return Value(utf8_encode(space == std::u32string::npos ? head : head.substr(0, space)) + end);
}

Value f_unique(const Value& v, CallArgs& args) {
  Params p("unique", args, {"case_sensitive", "attribute"});
  AttrGetter key{attribute_parts(p.get(1, Value::none())), std::nullopt,
                 !(p.has(0) && p[0].truthy())};
  std::set<std::string> seen;
  std::vector<Value> out;
  for (const Value& item : iterate(v))
    if (seen.insert(hash_key(key(item))).second) out.push_back(item);
  return Value::iterator(std::move(out));
}

Value f_wordcount(const Value& v, CallArgs& args) {
  no_arguments("wordcount", args);
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : utf8_decode(soft_str(v))) {
    const bool word = is_alpha(c) || is_digit(c) || c == '_';
    if (word && !in_word) ++n;
    in_word = word;
  }
  return Value(n);
}

const std::unordered_map<std::string, Filter>& filters() {
  static const std::unordered_map<std::string, Filter> table = {
      {"abs", f_abs},
      {"attr", f_attr},
      {"batch", f_batch},
      {"capitalize", f_capitalize},
      {"center", f_center},
      {"count", f_length},
      {"d", f_default},
      {"default", f_default},
      {"dictsort", f_dictsort},
      {"e", f_escape},
      {"escape", f_escape},
      {"first", f_first},
      {"float", f_float},
      {"forceescape", f_escape},
      {"format", f_format},
      {"groupby", f_groupby},
      {"indent", f_indent},
      {"int", f_int},
      {"items", f_items},
      {"join", f_join},
      {"last", f_last},
      {"length", f_length},
      {"list", f_list},
      {"lower", f_lower},
      {"map", f_map},
      {"max", f_max},
      {"min", f_min},
      {"pprint", f_pprint},
      {"reject", f_reject},
      {"rejectattr", f_rejectattr},
      {"replace", f_replace},
      {"reverse", f_reverse},
      {"round", f_round},
      {"safe", f_safe},
      {"select", f_select},
      {"selectattr", f_selectattr},
      {"slice", f_slice},
      {"sort", f_sort},
      {"string", f_string},
      {"sum", f_sum},
      {"title", f_title},
      {"tojson", f_tojson},
      {"trim", f_trim},
      {"truncate", f_truncate},
      {"unique", f_unique},
      {"upper", f_upper},
      {"wordcount", f_wordcount},
  };
  return table;
}

// ---------------------------------------------------------------------------------------------
// Tests

const Value& one_arg(const char* name, CallArgs& args) {
  if (args.positional.size() != 1 || !args.keyword.empty())
    type_error(std::string(name) + "() expected 1 argument, got " +
               std::to_string(args.positional.size() + args.keyword.size()));
  return args.positional[0];
}

bool t_defined(const Value& v, CallArgs& a) {
  return no_arguments("defined", a), !v.is_undefined();
}
bool t_undefined(const Value& v, CallArgs& a) {
  return no_arguments("undefined", a), v.is_undefined();
}
bool t_none(const Value& v, CallArgs& a) { return no_arguments("none", a), v.is_none(); }
bool t_boolean(const Value& v, CallArgs& a) { return no_arguments("boolean", a), v.is_bool(); }
bool t_true(const Value& v, CallArgs& a) {
  return no_arguments("true", a), v.is_bool() && v.as_bool();
}
bool t_false(const Value& v, CallArgs& a) {
  return no_arguments("false", a), v.is_bool() && !v.as_bool();
}
bool t_integer(const Value& v, CallArgs& a) { return no_arguments("integer", a), v.is_int(); }
bool t_float(const Value& v, CallArgs& a) { return no_arguments("float", a), v.is_float(); }
bool t_number(const Value& v, CallArgs& a) { return no_arguments("number", a), v.is_number(); }
bool t_string(const Value& v, CallArgs& a) { return no_arguments("string", a), v.is_string(); }
bool t_mapping(const Value& v, CallArgs& a) { return no_arguments("mapping", a), v.is_dict(); }
bool t_lower(const Value& v, CallArgs& a) {
  return no_arguments("lower", a), py_islower(v.to_str());
}
bool t_upper(const Value& v, CallArgs& a) {
  return no_arguments("upper", a), py_isupper(v.to_str());
}
bool t_sequence(const Value& v, CallArgs& a) {
  no_arguments("sequence", a);
  return v.is_string() || v.is_sequence_like() || v.is_dict() || v.is_undefined();
}
bool t_iterable(const Value& v, CallArgs& a) {
  no_arguments("iterable", a);
  return v.is_string() || v.is_sequence_like() || v.is_dict() || v.is_undefined() ||
         v.is_iterator() || v.is_loop();
}
bool t_callable(const Value& v, CallArgs& a) {
  no_arguments("callable", a);
  return v.is_function() || v.is_loop() || v.is_undefined();
}
bool t_escaped(const Value&, CallArgs& a) { return no_arguments("escaped", a), false; }
bool t_odd(const Value& v, CallArgs& a) {
  no_arguments("odd", a);
  return equals(binary_op("%", v, Value(int64_t{2})), Value(int64_t{1}));
}
bool t_even(const Value& v, CallArgs& a) {
  no_arguments("even", a);
  return equals(binary_op("%", v, Value(int64_t{2})), Value(int64_t{0}));
}
bool t_divisibleby(const Value& v, CallArgs& a) {
  Params p("divisibleby", a, {"num"}, 1);
  return equals(binary_op("%", v, p[0]), Value(int64_t{0}));
}
bool t_in(const Value& v, CallArgs& a) {
  Params p("in", a, {"seq"}, 1);
  return contains(p[0], v);
}
bool t_sameas(const Value& v, CallArgs& a) {
  Params p("sameas", a, {"other"}, 1);
  return v.same_as(p[0]);
}
bool t_eq(const Value& v, CallArgs& a) { return equals(v, one_arg("eq", a)); }
bool t_ne(const Value& v, CallArgs& a) { return !equals(v, one_arg("ne", a)); }
bool t_lt(const Value& v, CallArgs& a) { return compare("lt", v, one_arg("lt", a)).truthy(); }
bool t_le(const Value& v, CallArgs& a) { return compare("lteq", v, one_arg("le", a)).truthy(); }
bool t_gt(const Value& v, CallArgs& a) { return compare("gt", v, one_arg("gt", a)).truthy(); }
bool t_ge(const Value& v, CallArgs& a) { return compare("gteq", v, one_arg("ge", a)).truthy(); }
bool t_filter(const Value& v, CallArgs& a) {
  no_arguments("filter", a);
  return v.is_string() && filters().count(v.str());
}
bool t_test(const Value& v, CallArgs& a);

const std::unordered_map<std::string, Test>& tests() {
  static const std::unordered_map<std::string, Test> table = {
      {"boolean", t_boolean},
      {"callable", t_callable},
      {"defined", t_defined},
      {"divisibleby", t_divisibleby},
      {"==", t_eq},
      {"eq", t_eq},
      {"equalto", t_eq},
      {"escaped", t_escaped},
      {"even", t_even},
      {"false", t_false},
      {"filter", t_filter},
      {"float", t_float},
      {">=", t_ge},
      {"ge", t_ge},
      {">", t_gt},
      {"gt", t_gt},
      {"greaterthan", t_gt},
      {"in", t_in},
      {"integer", t_integer},
      {"iterable", t_iterable},
      {"<=", t_le},
      {"le", t_le},
      {"lower", t_lower},
      {"<", t_lt},
      {"lt", t_lt},
      {"lessthan", t_lt},
      {"mapping", t_mapping},
      {"!=", t_ne},
      {"ne", t_ne},
      {"none", t_none},
      {"number", t_number},
      {"odd", t_odd},
      {"sameas", t_sameas},
      {"sequence", t_sequence},
      {"string", t_string},
      {"test", t_test},
      {"true", t_true},
      {"undefined", t_undefined},
      {"upper", t_upper},
  };
  return table;
}

bool t_test(const Value& v, CallArgs& a) {
  no_arguments("test", a);
  return v.is_string() && tests().count(v.str());
}

}  // namespace

Value apply_filter(const std::string& name, const Value& input, CallArgs& args) {
  const auto it = filters().find(name);
  if (it == filters().end()) throw TemplateError("No filter named '" + name + "' found.");
  return it->second(input, args);
}

bool apply_test(const std::string& name, const Value& input, CallArgs& args) {
  const auto it = tests().find(name);
  if (it == tests().end()) throw TemplateError("No test named '" + name + "' found.");
  return it->second(input, args);
}

bool has_filter(const std::string& name) { return filters().count(name) != 0; }
bool has_test(const std::string& name) { return tests().count(name) != 0; }

// ---------------------------------------------------------------------------------------------
// Globals

namespace {

// dict(*args, **kwargs) into `out`.
void fill_dict(Dict& out, CallArgs& args, const char* fn) {
  if (args.positional.size() > 1)
    type_error(std::string(fn) + " expected at most 1 argument, got " +
               std::to_string(args.positional.size()));
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is_dict() || source.is_namespace()) {
      for (const auto& [k, v] : source.dict_data().entries) out.set(k, v);
    } else {
      for (const Value& pair : iterate(source)) {
        const std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2)
          throw TemplateError("dictionary update sequence element has length " +
                              std::to_string(kv.size()) + "; 2 is required");
        out.set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [k, v] : args.keyword) out.set(Value(k), v);
}

}  // namespace

void add_globals(Dict& globals, std::function<std::string(const std::string&)> strftime_now) {
  globals.set(Value("range"), Value::function("range", [](CallArgs& args) {
                if (!args.keyword.empty()) type_error("range() takes no keyword arguments");
                const auto& a = args.positional;
                if (a.empty() || a.size() > 3)
                  type_error("range expected at most 3 arguments, got " + std::to_string(a.size()));
                int64_t start = 0, stop, step = 1;
                if (a.size() == 1) {
                  stop = as_index(a[0]);
                } else {
                  start = as_index(a[0]);
                  stop = as_index(a[1]);
                  if (a.size() == 3) step = as_index(a[2]);
                }
                if (step == 0) throw TemplateError("range() arg 3 must not be zero");
                int64_t count = 0;
                if (step > 0 && start < stop) count = (stop - start + step - 1) / step;
                if (step < 0 && start > stop) count = (start - stop - step - 1) / (-step);
                if (count > 100000)
                  throw TemplateError(
                      "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
                std::vector<Value> out;
                for (int64_t i = 0; i < count; ++i) out.emplace_back(start + i * step);
                return Value::list(std::move(out));
              }));
  globals.set(Value("dict"), Value::function("dict", [](CallArgs& args) {
                Value d = Value::dict();
                fill_dict(d.dict_data(), args, "dict");
                return d;
              }));
  globals.set(Value("namespace"), Value::function("namespace", [](CallArgs& args) {
                Value ns = Value::namespace_object();
                fill_dict(ns.dict_data(), args, "Namespace");
                return ns;
              }));
  globals.set(Value("joiner"), Value::function("joiner", [](CallArgs& args) {
                Params p("joiner", args, {"sep"});
                const std::string sep = p.has(0) ? soft_str(p[0]) : ", ";
                auto used = std::make_shared<bool>(false);
                return Value::function("joiner", [sep, used](CallArgs& a) {
                  no_arguments("joiner", a);
                  if (!*used) {
                    *used = true;
                    return Value("");
                  }
                  return Value(sep);
                });
              }));
  globals.set(Value("raise_exception"), Value::function("raise_exception", [](CallArgs& args) {
                Params p("raise_exception", args, {"message"}, 1);
                throw TemplateError(p[0].to_str());
                return Value();
              }));
  globals.set(Value("strftime_now"),
              Value::function("strftime_now", [strftime_now](CallArgs& args) {
                Params p("strftime_now", args, {"format"}, 1);
                return Value(strftime_now(need_str(p[0], "strftime() argument 1")));
              }));
}

}  // namespace expo::jinja
