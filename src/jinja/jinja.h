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
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace expo::jinja {

struct Options {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
  // strftime_now(format) as the template sees it; empty: the local time now (as transformers).
  std::function<std::string(const std::string& format)> strftime_now;
};

class Template {
 public:
  // Parses `source`. Throws expo::Error "NAME:LINE:COLUMN: message" where jinja2 would refuse
  // the template (syntax errors, unknown tags, unknown filters outside an if).
  explicit Template(std::string_view source, std::string name = "template", Options options = {});

  // Renders with `variables` (a JSON object, keys in order) as the template's context. Throws
  // expo::Error "NAME:LINE:COLUMN: message"; for raise_exception(msg) the message is msg.
  std::string render(const nlohmann::ordered_json& variables) const;

  const std::string& name() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace expo::jinja
