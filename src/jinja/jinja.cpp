#include "jinja/jinja.h"

#include <ctime>
#include <new>

#include "core/error.h"
#include "core/input_limits.h"
#include "jinja/jinja_ast.h"
#include "jinja/jinja_lexer.h"
#include "jinja/jinja_parser.h"
#include "jinja/jinja_render.h"

namespace expo::jinja {

namespace {

[[noreturn]] void rethrow(const std::string& name, const TemplateError& e) {
  if (e.line > 0) fail(name, ":", e.line, ":", e.column, ": ", e.what());
  fail(name, ": ", e.what());
}

std::string local_strftime(const std::string& format) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::string out(256 + format.size() * 4, '\0');
  const size_t n = std::strftime(out.data(), out.size(), format.c_str(), &tm);
  out.resize(n);
  return out;
}

// Offset of the first byte that is not valid UTF-8, or npos.
size_t invalid_utf8_at(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 0 || i + n > s.size()) return i;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return i;
    i += n;
  }
  return std::string_view::npos;
}

}  // namespace

Limits Limits::from_environment() {
  Limits limits;
  limits.max_ops = count_from_environment(kMaxOpsEnv, limits.max_ops);
  limits.max_output_bytes = size_from_environment(kMaxOutputEnv, limits.max_output_bytes);
  limits.max_items = count_from_environment(kMaxItemsEnv, limits.max_items);
  return limits;
}

struct Template::Impl {
  std::string name;
  Options options;
  Body body;
};

Template::Template(std::string_view source, std::string name, Options options) {
  auto impl = std::make_shared<Impl>();
  impl->name = std::move(name);
  impl->options = std::move(options);
  if (!impl->options.strftime_now) impl->options.strftime_now = local_strftime;
  if (const size_t bad = invalid_utf8_at(source); bad != std::string_view::npos)
    fail(impl->name, ": template is not valid UTF-8 (byte ", bad, ")");
  try {
    LexOptions lex;
    lex.trim_blocks = impl->options.trim_blocks;
    lex.lstrip_blocks = impl->options.lstrip_blocks;
    lex.keep_trailing_newline = impl->options.keep_trailing_newline;
    impl->body = parse(tokenize(source, lex));
  } catch (const TemplateError& e) {
    rethrow(impl->name, e);
  } catch (const std::bad_alloc&) {
    fail(impl->name, ": out of memory while parsing the template (", source.size(), " bytes)");
  }
  impl_ = std::move(impl);
}

std::string Template::render(const nlohmann::ordered_json& variables) const {
  if (!variables.is_object()) fail(impl_->name, ": template variables must be a JSON object");
  try {
    RenderOptions options;
    options.strftime_now = impl_->options.strftime_now;
    options.max_ops = impl_->options.limits.max_ops;
    options.max_output_bytes = impl_->options.limits.max_output_bytes;
    options.max_items = impl_->options.limits.max_items;
    return jinja::render(impl_->body, from_json(variables), options);
  } catch (const TemplateError& e) {
    rethrow(impl_->name, e);
  } catch (const std::bad_alloc&) {
    fail(impl_->name, ": out of memory while rendering the template; lower ", kMaxOutputEnv, " or ",
         kMaxItemsEnv, " (now ", impl_->options.limits.max_output_bytes, " bytes and ",
         impl_->options.limits.max_items, " items) to stop such a template sooner");
  }
}

const std::string& Template::name() const { return impl_->name; }

}  // namespace expo::jinja
