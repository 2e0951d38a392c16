#pragma once
// A Jinja template engine that renders the way jinja2 does under transformers'
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols,
// AssistantTracker]): same whitespace, same Python semantics (str/repr of values, int vs float
// arithmetic, Undefined), same tojson (json.dumps with ensure_ascii=False), same sandbox refusals.
// It covers what chat templates use; extends/include/import are refused (there is no loader).
//
// Hand-written: no C++ library renders Jinja with jinja2's exact output (minja and inja each
// differ in whitespace control, Undefined, or Python's str() of values); chat templates must
// reproduce transformers byte for byte. Tests: tests/jinja_test.cpp and the jinja2-made goldens
// in tests/golden/text/chat/.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace expo::jinja {

// Resource limits for rendering: chat templates come from strangers' repositories, and a template
// that loops 10^10 times or doubles a string 40 times must fail with an error, not hang or end in
// std::bad_alloc. The defaults are hundreds of times what real chat templates use (rendering a
// 1000-message conversation takes about 10^5 operations; 20 million take 1 to 2 seconds); the
// errors name the template, the line and the environment variable that raises the limit.
struct Limits {
  // Operations: expressions evaluated, statements executed and loop iterations.
  uint64_t max_ops = 20'000'000;
  // Bytes of the rendered text, and of any string built while rendering.
  uint64_t max_output_bytes = uint64_t{64} << 20;
  // Items of any list, tuple or dict built while rendering.
  uint64_t max_items = uint64_t{1} << 22;

  // The defaults, overridden by EXPO_TEMPLATE_MAX_OPS (a count), EXPO_TEMPLATE_MAX_OUTPUT (a
  // size: 256MiB) and EXPO_TEMPLATE_MAX_ITEMS (a count) when set.
  static Limits from_environment();
};
inline constexpr const char* kMaxOpsEnv = "EXPO_TEMPLATE_MAX_OPS";
inline constexpr const char* kMaxOutputEnv = "EXPO_TEMPLATE_MAX_OUTPUT";
inline constexpr const char* kMaxItemsEnv = "EXPO_TEMPLATE_MAX_ITEMS";

struct Options {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
  // strftime_now(format) as the template sees it; empty: the local time now (as transformers).
  std::function<std::string(const std::string& format)> strftime_now;
  Limits limits = Limits::from_environment();
};

class Template {
 public:
  // Parses `source`. Throws expo::Error "NAME:LINE:COLUMN: message" where jinja2 would refuse
  // the template (syntax errors, unknown tags, unknown filters outside an if).
  explicit Template(std::string_view source, std::string name = "template", Options options = {});

  // Renders with `variables` (a JSON object, keys in order) as the template's context. Throws
  // expo::Error "NAME:LINE:COLUMN: message"; for raise_exception(msg) the message is msg. Past
  // one of Options::limits, or out of memory, the error says which and how to raise it.
  std::string render(const nlohmann::ordered_json& variables) const;

  const std::string& name() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace expo::jinja
