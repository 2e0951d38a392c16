#include "jinja/jinja_lexer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>

#include "jinja/jinja_value.h"

namespace expo::jinja {

std::string normalize_source(std::string_view source, const LexOptions& options) {
  // jinja2: lines = newline_re.split(source)[::2]; drop one trailing "" unless
  // keep_trailing_newline; "\n".join(lines).
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!options.keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

namespace {

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

bool is_hex(char c) {
  return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

class Lexer {
 public:
  Lexer(std::string_view source, const LexOptions& options)
      : src_(normalize_source(source, options)), options_(options) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    const size_t n = src_.size();
    while (pos < n) {
      size_t found = std::string::npos;
      for (size_t t = src_.find('{', pos); t != std::string::npos; t = src_.find('{', t + 1)) {
        if (t + 1 < n && (src_[t + 1] == '{' || src_[t + 1] == '%' || src_[t + 1] == '#')) {
          found = t;
          break;
        }
      }
      if (found == std::string::npos) {
        emit_data(src_.substr(pos), pos);
        break;
      }
      const char kind = src_[found + 1];
      const size_t after = found + 2;
      const char sign = after < n && (src_[after] == '-' || src_[after] == '+') ? src_[after] : 0;
      size_t raw_end = 0;
      const bool raw = kind == '%' && match_raw_begin(after + (sign ? 1 : 0), &raw_end);

      std::string text = src_.substr(pos, found - pos);
      apply_strip(text, sign, /*variable=*/kind == '{');
      emit_data(std::move(text), pos);

      if (raw) {
        pos = lex_raw(found, raw_end);
        continue;
      }
      pos = after + (sign ? 1 : 0);
      line_starting_ = false;
      if (kind == '#') {
        pos = lex_comment(found, pos);
        continue;
      }
      push(kind == '{' ? TokenType::kVariableBegin : TokenType::kBlockBegin, src_.substr(found, 2),
           found);
      pos = lex_tag(kind == '{', pos);
    }
    push(TokenType::kEof, "", src_.size());
    return std::move(tokens_);
  }

 private:
  std::string src_;
  LexOptions options_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  bool line_starting_ = true;  // the last match ended with a newline (or nothing matched yet)

  void locate(size_t offset, int* line, int* column) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t index = static_cast<size_t>(it - line_starts_.begin()) - 1;
    *line = static_cast<int>(index + 1);
    const size_t start = line_starts_[index];
    *column =
        static_cast<int>(utf8_length(std::string_view(src_).substr(start, offset - start))) + 1;
  }

  [[noreturn]] void fail(size_t offset, const std::string& message) const {
    int line, column;
    locate(std::min(offset, src_.size()), &line, &column);
    throw TemplateError(message, line, column);
  }

  void push(TokenType type, std::string value, size_t offset) {
    Token token;
    token.type = type;
    token.value = std::move(value);
    locate(offset, &token.line, &token.column);
    tokens_.push_back(std::move(token));
  }

  void emit_data(std::string text, size_t offset) {
    if (!text.empty()) push(TokenType::kData, std::move(text), offset);
  }

  bool starts_with(size_t pos, std::string_view s) const {
    return src_.compare(pos, s.size(), s) == 0;
  }

  // Length in bytes of the whitespace character at pos (Python's \s), 0 if none.
  size_t space_at(size_t pos) const {
    if (pos >= src_.size()) return 0;
    const unsigned char c = static_cast<unsigned char>(src_[pos]);
    if (c < 0x80) return is_space(c) ? 1 : 0;
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (pos + n > src_.size()) return 0;
    const std::u32string cp = utf8_decode(std::string_view(src_).substr(pos, n));
    return cp.size() == 1 && is_space(cp[0]) ? n : 0;
  }

  size_t skip_spaces(size_t pos) const {
    while (size_t n = space_at(pos)) pos += n;
    return pos;
  }

  // `{%-` strips all whitespace before the tag; otherwise lstrip_blocks strips the spaces and
  // tabs between the start of the line and a block or comment tag.
  void apply_strip(std::string& text, char sign, bool variable) const {
    if (sign == '-') {
      text = strip(text, std::nullopt, false, true);
      return;
    }
    if (sign == '+' || !options_.lstrip_blocks || variable) return;
    const size_t newline = text.rfind('\n');
    const size_t l_pos = newline == std::string::npos ? 0 : newline + 1;
    if (l_pos == 0 && !line_starting_) return;
    if (l_pos >= text.size()) return;
    const std::u32string rest = utf8_decode(std::string_view(text).substr(l_pos));
    if (std::all_of(rest.begin(), rest.end(), is_space)) text.resize(l_pos);
  }

  // `{%[-+]\s*raw\s*(-%}\s*|%})`, starting after the sign.
  bool match_raw_begin(size_t pos, size_t* end) const {
    pos = skip_spaces(pos);
    if (!starts_with(pos, "raw")) return false;
    pos = skip_spaces(pos + 3);
    if (starts_with(pos, "-%}")) {
      *end = skip_spaces(pos + 3);
      return true;
    }
    if (starts_with(pos, "%}")) {
      *end = pos + 2;
      return true;
    }
    return false;
  }

  // The end of a block tag at pos: `+%}`, `-%}\s*` or `%}\n?` (trim_blocks); npos if none.
  size_t block_end_at(size_t pos) const {
    if (starts_with(pos, "+%}")) return pos + 3;
    if (starts_with(pos, "-%}")) return skip_spaces(pos + 3);
    if (starts_with(pos, "%}")) {
      size_t end = pos + 2;
      if (options_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
      return end;
    }
    return std::string::npos;
  }

  size_t lex_raw(size_t begin, size_t pos) {
    line_starting_ = src_[pos - 1] == '\n';
    for (size_t q = src_.find("{%", pos); q != std::string::npos; q = src_.find("{%", q + 1)) {
      size_t p = q + 2;
      const char sign = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p] : 0;
      p = skip_spaces(p + (sign ? 1 : 0));
      if (!starts_with(p, "endraw")) continue;
      const size_t end = block_end_at(skip_spaces(p + 6));
      if (end == std::string::npos) continue;
      std::string text = src_.substr(pos, q - pos);
      apply_strip(text, sign, false);
      emit_data(std::move(text), pos);
      line_starting_ = src_[end - 1] == '\n';
      return end;
    }
    fail(begin, "Missing end of raw directive");
  }

  size_t lex_comment(size_t begin, size_t pos) {
    const size_t h = src_.find("#}", pos);
    if (h == std::string::npos) fail(begin, "Missing end of comment tag");
    size_t end;
    if (h > pos && src_[h - 1] == '+') {
      end = h + 2;
    } else if (h > pos && src_[h - 1] == '-') {
      end = skip_spaces(h + 2);
    } else {
      end = h + 2;
      if (options_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
    }
    line_starting_ = src_[end - 1] == '\n';
    return end;
  }

  // `(\d+_)*\d+` at pos: the end, or npos.
  size_t digits_at(size_t pos) const {
    if (pos >= src_.size() || !is_ascii_digit(src_[pos])) return std::string::npos;
    while (true) {
      while (pos < src_.size() && is_ascii_digit(src_[pos])) ++pos;
      if (pos + 1 < src_.size() && src_[pos] == '_' && is_ascii_digit(src_[pos + 1])) {
        ++pos;
        continue;
      }
      return pos;
    }
  }

  size_t exponent_at(size_t pos) const {
    if (pos >= src_.size() || (src_[pos] != 'e' && src_[pos] != 'E')) return std::string::npos;
    ++pos;
    if (pos < src_.size() && (src_[pos] == '+' || src_[pos] == '-')) ++pos;
    return digits_at(pos);
  }

  size_t float_at(size_t pos) const {
    if (pos > 0 && src_[pos - 1] == '.') return std::string::npos;
    const size_t mantissa = digits_at(pos);
    if (mantissa == std::string::npos) return std::string::npos;
    size_t fraction = std::string::npos;
    if (mantissa < src_.size() && src_[mantissa] == '.') fraction = digits_at(mantissa + 1);
    if (fraction != std::string::npos) {
      const size_t e = exponent_at(fraction);
      return e != std::string::npos ? e : fraction;
    }
    return exponent_at(mantissa);
  }

  // jinja2's integer_re: 0b.., 0o.., 0x.., [1-9](_?\d)*, 0(_?0)*.
  size_t integer_at(size_t pos, int* base) const {
    const size_t n = src_.size();
    if (pos >= n || !is_ascii_digit(src_[pos])) return std::string::npos;
    if (src_[pos] == '0' && pos + 1 < n) {
      const char b = static_cast<char>(src_[pos + 1] | 0x20);
      auto valid = [b](char c) {
        if (b == 'b') return c == '0' || c == '1';
        if (b == 'o') return c >= '0' && c <= '7';
        return is_hex(c);
      };
      if (b == 'b' || b == 'o' || b == 'x') {
        size_t p = pos + 2, end = std::string::npos;
        while (true) {
          size_t q = p;
          if (q < n && src_[q] == '_') ++q;
          if (q < n && valid(src_[q])) {
            p = end = q + 1;
          } else {
            break;
          }
        }
        if (end != std::string::npos) {
          *base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
          return end;
        }
      }
    }
    *base = 10;
    const char first = src_[pos];
    size_t p = pos + 1;
    while (true) {
      size_t q = p;
      if (q < n && src_[q] == '_') ++q;
      if (q < n && (first == '0' ? src_[q] == '0' : is_ascii_digit(src_[q]))) {
        p = q + 1;
      } else {
        return p;
      }
    }
  }

  // Length in bytes of the identifier character at pos (Python's \w and combining marks).
  size_t name_char_at(size_t pos) const {
    const unsigned char c = static_cast<unsigned char>(src_[pos]);
    if (c < 0x80) return (std::isalnum(c) || c == '_') ? 1 : 0;
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (pos + n > src_.size()) return 0;
    const std::u32string cp = utf8_decode(std::string_view(src_).substr(pos, n));
    if (cp.size() != 1) return 0;
    const char32_t ch = cp[0];
    return (is_alpha(ch) || is_digit(ch) || (ch >= 0x300 && ch <= 0x36F)) ? n : 0;
  }

  std::string unescape(const std::string& raw, size_t offset) const {
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '\\') {
        out += raw[i];
        continue;
      }
      if (i + 1 >= raw.size()) fail(offset, "\\ at end of string");
      const char d = raw[++i];
      auto hex_escape = [&](int digits, const char* what) {
        uint32_t v = 0;
        for (int k = 1; k <= digits; ++k) {
          if (i + k >= raw.size() || !is_hex(raw[i + k])) fail(offset, what);
          const char h = raw[i + k];
          v = v * 16 + static_cast<uint32_t>(is_ascii_digit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
        }
        i += digits;
        if (v > 0x10FFFF) fail(offset, "illegal Unicode character");
        if (v >= 0xD800 && v <= 0xDFFF) v = 0xFFFD;  // a lone surrogate cannot be UTF-8
        utf8_append(out, v);
      };
      switch (d) {
        case '\n':
          break;
        case '\\':
        case '\'':
        case '"':
          out += d;
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x':
          hex_escape(2, "truncated \\xXX escape");
          break;
        case 'u':
          hex_escape(4, "truncated \\uXXXX escape");
          break;
        case 'U':
          hex_escape(8, "truncated \\UXXXXXXXX escape");
          break;
        case 'N':
          fail(offset, "\\N{...} escapes are not supported by expo's Jinja engine");
        default:
          if (d >= '0' && d <= '7') {
            uint32_t v = static_cast<uint32_t>(d - '0');
            for (int k = 0; k < 2 && i + 1 < raw.size() && raw[i + 1] >= '0' && raw[i + 1] <= '7';
                 ++k)
              v = v * 8 + static_cast<uint32_t>(raw[++i] - '0');
            utf8_append(out, v);
          } else if (static_cast<unsigned char>(d) >= 0x80) {
            // Python encodes the character as \xNN / \uNNNN first: the backslash stays literal.
            size_t n = static_cast<unsigned char>(d) >= 0xF0   ? 4
                       : static_cast<unsigned char>(d) >= 0xE0 ? 3
                                                               : 2;
            n = std::min(n, raw.size() - i);
            const std::u32string cp = utf8_decode(std::string_view(raw).substr(i, n));
            i += n - 1;
            out += '\\';
            char buf[16];
            const uint32_t c = cp.empty() ? 0xFFFD : cp[0];
            if (c < 0x100)
              std::snprintf(buf, sizeof buf, "\\x%02x", c);
            else if (c < 0x10000)
              std::snprintf(buf, sizeof buf, "\\u%04x", c);
            else
              std::snprintf(buf, sizeof buf, "\\U%08x", c);
            out += buf + 1;
          } else {
            out += '\\';
            out += d;
          }
      }
    }
    return out;
  }

  // Tokens inside {{ }} or {% %}, up to and including the end tag. Returns the position after.
  size_t lex_tag(bool variable, size_t pos) {
    std::vector<char> balance;
    const size_t n = src_.size();
    while (pos < n) {
      if (balance.empty()) {
        size_t end = std::string::npos;
        if (variable) {
          if (starts_with(pos, "-}}"))
            end = skip_spaces(pos + 3);
          else if (starts_with(pos, "}}"))
            end = pos + 2;
        } else {
          end = block_end_at(pos);
        }
        if (end != std::string::npos) {
          push(variable ? TokenType::kVariableEnd : TokenType::kBlockEnd, variable ? "}}" : "%}",
               pos);
          line_starting_ = src_[end - 1] == '\n';
          return end;
        }
      }
      if (space_at(pos)) {
        pos = skip_spaces(pos);
        continue;
      }
      if (size_t end = float_at(pos); end != std::string::npos) {
        std::string text = src_.substr(pos, end - pos);
        text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
        push(TokenType::kFloat, text, pos);
        tokens_.back().number = std::strtod(text.c_str(), nullptr);
        pos = end;
        continue;
      }
      int base = 10;
      if (size_t end = integer_at(pos, &base); end != std::string::npos) {
        std::string text = src_.substr(pos, end - pos);
        text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
        const std::string digits = base == 10 ? text : text.substr(2);
        uint64_t value = 0;
        for (char c : digits) {
          const uint64_t d =
              static_cast<uint64_t>(is_ascii_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
          if (value > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / base)
            fail(pos, "integer literal " + text + " is too large (64-bit integers only)");
          value = value * base + d;
        }
        push(TokenType::kInteger, text, pos);
        tokens_.back().integer = static_cast<int64_t>(value);
        pos = end;
        continue;
      }
      if (name_char_at(pos)) {
        size_t end = pos;
        while (end < n) {
          const size_t k = name_char_at(end);
          if (!k) break;
          end += k;
        }
        push(TokenType::kName, src_.substr(pos, end - pos), pos);
        pos = end;
        continue;
      }
      if (src_[pos] == '\'' || src_[pos] == '"') {
        const char quote = src_[pos];
        size_t p = pos + 1;
        while (p < n && src_[p] != quote) p += src_[p] == '\\' ? 2 : 1;
        if (p < n) {
          push(TokenType::kString, unescape(src_.substr(pos + 1, p - pos - 1), pos), pos);
          pos = p + 1;
          continue;
        }
      }
      static const char* const kTwoCharOps[] = {"//", "**", "==", "!=", ">=", "<="};
      std::string op;
      for (const char* candidate : kTwoCharOps)
        if (starts_with(pos, candidate)) op = candidate;
      if (op.empty() &&
          std::string_view("+-/*%~[](){}><=.:|,;").find(src_[pos]) != std::string_view::npos)
        op = std::string(1, src_[pos]);
      if (op.empty()) {
        const std::u32string c = utf8_decode(std::string_view(src_).substr(pos, 4));
        std::string ch;
        utf8_append(ch, c.empty() ? U'?' : c[0]);
        fail(pos, "unexpected char " + string_repr(ch) + " at " +
                      std::to_string(utf8_length(std::string_view(src_).substr(0, pos))));
      }
      if (op == "{" || op == "(" || op == "[") {
        balance.push_back(op == "{" ? '}' : op == "(" ? ')' : ']');
      } else if (op == "}" || op == ")" || op == "]") {
        if (balance.empty()) fail(pos, "unexpected '" + op + "'");
        const char expected = balance.back();
        balance.pop_back();
        if (expected != op[0])
          fail(pos, "unexpected '" + op + "', expected '" + std::string(1, expected) + "'");
      }
      push(TokenType::kOperator, op, pos);
      pos += op.size();
    }
    return pos;
  }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexOptions& options) {
  return Lexer(source, options).run();
}

}  // namespace expo::jinja
