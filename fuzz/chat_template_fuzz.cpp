// libFuzzer target for the Jinja engine: the input is a chat template, parsed and rendered over
// a small conversation with tight limits (jinja::Limits), so that a template that loops or grows
// without end fails with expo::Error instead of timing out or running out of memory.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "fuzz_util.h"
#include "jinja/jinja.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::ordered_json variables = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": "Hi ΣΑΣ ǆ ß"},
                 {"role": "assistant", "content": "Hello!", "tool_calls": [
                   {"function": {"name": "f", "arguments": {"x": 1}}}]},
                 {"role": "user", "content": ""}],
    "tools": null, "documents": null, "add_generation_prompt": true,
    "bos_token": "<s>", "eos_token": "</s>"})");
  expo::jinja::Options options;
  options.limits.max_ops = 200000;
  options.limits.max_output_bytes = 1 << 20;
  options.limits.max_items = 1 << 16;
  options.strftime_now = [](const std::string&) { return std::string("01 Jan 2025"); };
  try {
    expo::jinja::Template t(expo::fuzz::as_text(data, size), "fuzz.jinja", options);
    t.render(variables);
  } catch (const expo::Error&) {
  }
  return 0;
}
