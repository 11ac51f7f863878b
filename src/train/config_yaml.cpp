// config_yaml(): the text Python's yaml.dump(config) writes (PyYAML 5.1+ defaults:
// default_flow_style=False, sort_keys=True, allow_unicode=False, width 80, indent 2), so that
// output_dir/config.yaml is the file BLIP would write. Only what a flat dict of str / int / float /
// bool values needs is implemented: PyYAML's scalar analysis, style choice, float repr, and the
// line folding of long scalars.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "blip/train/train_checkpoint.h"

namespace blip::train {

namespace {

constexpr std::size_t kBestWidth = 80;   // PyYAML's default line width
constexpr std::size_t kValueIndent = 2;  // indent of a folded top-level mapping value

// Python's repr(float), then PyYAML's represent_float touch-ups (.inf/.nan, "1.0e-05").
std::string yaml_float(double x) {
  if (std::isnan(x)) return ".nan";
  if (std::isinf(x)) return x > 0 ? ".inf" : "-.inf";
  // Shortest digits that read back to x (what repr prints).
  char buf[40];
  for (int precision = 0; precision < 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*e", precision, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  std::string s = buf;  // [-]d[.ddd]e[+-]XX
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  const std::size_t e_pos = s.find('e');
  const int exponent = std::atoi(s.c_str() + e_pos + 1);
  std::string digits = s.substr(0, e_pos);
  if (digits.size() > 1) digits.erase(1, 1);  // drop the '.'
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();

  std::string out;
  if (exponent < -4 || exponent >= 16) {  // float_repr_style 'short' switches to exponent form
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp[16];
    std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp;
  } else if (exponent < 0) {
    out = "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
  } else {
    const auto int_digits = static_cast<std::size_t>(exponent) + 1;
    if (digits.size() <= int_digits)
      out = digits + std::string(int_digits - digits.size(), '0') + ".0";
    else
      out = digits.substr(0, int_digits) + "." + digits.substr(int_digits);
  }
  // PyYAML: a float must show a '.' so that YAML 1.1 readers do not take it for a string.
  if (out.find('.') == std::string::npos && out.find('e') != std::string::npos)
    out.replace(out.find('e'), 1, ".0e");
  return sign + out;
}

// UTF-8 -> code points (invalid bytes become U+FFFD, as Python would have no such str).
std::u32string decode_utf8(const std::string& s) {
  std::u32string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    bool ok = len > 0 && i + static_cast<std::size_t>(len) <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    ok = ok && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) && !(len == 2 && cp < 0x80) &&
         !(len == 3 && cp < 0x800) && !(len == 4 && cp < 0x10000);
    out.push_back(ok ? cp : U'\uFFFD');
    i += ok ? static_cast<std::size_t>(len) : 1;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_break(char32_t c) { return c == U'\n' || c == 0x85 || c == 0x2028 || c == 0x2029; }
bool is_space_or_break(char32_t c) {
  return c == 0 || c == U' ' || c == U'\t' || c == U'\r' || is_break(c);
}
bool printable_ascii(char32_t c) { return c >= 0x20 && c <= 0x7E; }

// True when PyYAML's resolver would read the plain scalar as something other than a str.
bool resolves_to_non_string(const std::string& s) {
  static const std::regex kImplicit(
      "^(?:"
      // bool
      "yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
      // float
      "|[-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+][0-9]+)?"
      "|\\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
      "|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*"
      "|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN)"
      // int
      "|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
      "|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+"
      // merge, null, value, yaml
      "|<<|~|null|Null|NULL|=|!|&|\\*"
      // timestamp
      "|[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
      "|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ "
      "\\t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9]"
      "(?:\\.[0-9]*)?(?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?"
      ")$");
  return s.empty() || std::regex_match(s, kImplicit);
}

enum class Style { Plain, Single, Double };

// PyYAML Emitter.analyze_scalar + choose_scalar_style for a block mapping value.
Style choose_style(const std::u32string& t, bool implicit) {
  if (t.empty()) return implicit ? Style::Plain : Style::Single;
  bool block_indicators = false, line_breaks = false, special = false;
  bool leading_space = false, leading_break = false, trailing_space = false, trailing_break = false;
  bool break_space = false, space_break = false;
  if (t.compare(0, 3, U"---") == 0 || t.compare(0, 3, U"...") == 0) block_indicators = true;
  bool preceded_by_ws = true;
  bool followed_by_ws = t.size() == 1 || is_space_or_break(t[1]);
  bool previous_space = false, previous_break = false;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const char32_t ch = t[i];
    if (i == 0) {
      if (std::u32string_view(U"#,[]{}&*!|>'\"%@`").find(ch) != std::u32string_view::npos)
        block_indicators = true;
      if ((ch == U'?' || ch == U':') && followed_by_ws) block_indicators = true;
      if (ch == U'-' && followed_by_ws) block_indicators = true;
    } else {
      if (ch == U':' && followed_by_ws) block_indicators = true;
      if (ch == U'#' && preceded_by_ws) block_indicators = true;
    }
    if (is_break(ch)) line_breaks = true;
    if (!(ch == U'\n' || printable_ascii(ch))) special = true;  // allow_unicode=False
    if (ch == U' ') {
      if (i == 0) leading_space = true;
      if (i + 1 == t.size()) trailing_space = true;
      if (previous_break) break_space = true;
      previous_space = true;
      previous_break = false;
    } else if (is_break(ch)) {
      if (i == 0) leading_break = true;
      if (i + 1 == t.size()) trailing_break = true;
      if (previous_space) space_break = true;
      previous_space = false;
      previous_break = true;
    } else {
      previous_space = previous_break = false;
    }
    preceded_by_ws = is_space_or_break(ch);
    followed_by_ws = i + 2 >= t.size() || is_space_or_break(t[i + 2]);
  }
  bool plain = !(leading_space || leading_break || trailing_space || trailing_break);
  bool single = true;
  if (break_space) plain = single = false;
  if (space_break || special) plain = single = false;
  if (line_breaks || block_indicators) plain = false;
  if (implicit && plain) return Style::Plain;
  return single ? Style::Single : Style::Double;
}

// The emitter state PyYAML keeps while writing one document.
class Writer {
 public:
  std::string out;

  void key(const std::string& k) {
    if (column_ > 0) line_break();  // write_indent at the mapping's indent 0
    write(decode_utf8(k));
    write(U":");
    whitespace_ = indention_ = false;
  }

  void plain(const std::u32string& t) {
    if (!whitespace_) write(U" ");
    whitespace_ = indention_ = false;
    bool spaces = false;
    std::size_t start = 0;
    for (std::size_t end = 0; end <= t.size(); ++end) {
      const bool at_end = end == t.size();
      const char32_t ch = at_end ? 0 : t[end];
      if (spaces) {
        if (at_end || ch != U' ') {
          if (start + 1 == end && column_ > kBestWidth) {
            indent();
            whitespace_ = indention_ = false;
          } else {
            write(t.substr(start, end - start));
          }
          start = end;
        }
      } else if (at_end || ch == U' ') {
        write(t.substr(start, end - start));
        start = end;
      }
      if (!at_end) spaces = ch == U' ';
    }
  }

  void single_quoted(const std::u32string& t) {
    indicator(U"'", true);
    bool spaces = false, breaks = false;
    std::size_t start = 0;
    for (std::size_t end = 0; end <= t.size(); ++end) {
      const bool at_end = end == t.size();
      const char32_t ch = at_end ? 0 : t[end];
      if (spaces) {
        if (at_end || ch != U' ') {
          if (start + 1 == end && column_ > kBestWidth && start != 0 && end != t.size())
            indent();
          else
            write(t.substr(start, end - start));
          start = end;
        }
      } else if (breaks) {
        if (at_end || !is_break(ch)) {
          if (t[start] == U'\n') line_break();
          for (std::size_t k = start; k < end; ++k) line_break(t[k]);
          indent();
          start = end;
        }
      } else if (at_end || ch == U' ' || is_break(ch) || ch == U'\'') {
        if (start < end) {
          write(t.substr(start, end - start));
          start = end;
        }
      }
      if (ch == U'\'') {
        write(U"''");
        start = end + 1;
      }
      if (!at_end) {
        spaces = ch == U' ';
        breaks = is_break(ch);
      }
    }
    indicator(U"'", false);
  }

  void double_quoted(const std::u32string& t) {
    indicator(U"\"", true);
    std::size_t start = 0;
    for (std::size_t end = 0; end <= t.size(); ++end) {
      const bool at_end = end == t.size();
      const char32_t ch = at_end ? 0 : t[end];
      if (at_end || ch == U'"' || ch == U'\\' || ch == 0x85 || ch == 0x2028 || ch == 0x2029 ||
          ch == 0xFEFF || !printable_ascii(ch)) {
        if (start < end) {
          write(t.substr(start, end - start));
          start = end;
        }
        if (!at_end) {
          write(escape(ch));
          start = end + 1;
        }
      }
      if (0 < end && end + 1 < t.size() && (ch == U' ' || start >= end) &&
          column_ + (end - start) > kBestWidth) {
        std::u32string data =
            (start < end ? t.substr(start, end - start) : std::u32string()) + U"\\";
        if (start < end) start = end;
        write(data);
        indent();
        whitespace_ = indention_ = false;
        if (t[start] == U' ') write(U"\\");
      }
    }
    indicator(U"\"", false);
  }

  void finish() {
    if (column_ > 0) line_break();
  }

 private:
  static std::u32string escape(char32_t ch) {
    switch (ch) {
      case 0:
        return U"\\0";
      case 0x07:
        return U"\\a";
      case 0x08:
        return U"\\b";
      case 0x09:
        return U"\\t";
      case 0x0A:
        return U"\\n";
      case 0x0B:
        return U"\\v";
      case 0x0C:
        return U"\\f";
      case 0x0D:
        return U"\\r";
      case 0x1B:
        return U"\\e";
      case U'"':
        return U"\\\"";
      case U'\\':
        return U"\\\\";
      case 0x85:
        return U"\\N";
      case 0xA0:
        return U"\\_";
      case 0x2028:
        return U"\\L";
      case 0x2029:
        return U"\\P";
      default:
        break;
    }
    char buf[16];
    if (ch <= 0xFF)
      std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(ch));
    else if (ch <= 0xFFFF)
      std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(ch));
    else
      std::snprintf(buf, sizeof buf, "\\U%08X", static_cast<unsigned>(ch));
    return decode_utf8(buf);
  }

  void write(const std::u32string& data) {
    for (char32_t c : data) append_utf8(out, c);
    column_ += data.size();
  }
  void indicator(const std::u32string& ind, bool need_whitespace) {
    write(whitespace_ || !need_whitespace ? ind : U" " + ind);
    whitespace_ = false;
    indention_ = false;
  }
  void line_break(char32_t br = U'\n') {
    append_utf8(out, br);
    whitespace_ = indention_ = true;
    column_ = 0;
  }
  // PyYAML write_indent() while a top-level mapping value is written.
  void indent() {
    if (!indention_ || column_ > kValueIndent || (column_ == kValueIndent && !whitespace_))
      line_break();
    if (column_ < kValueIndent) {
      whitespace_ = true;
      out.append(kValueIndent - column_, ' ');
      column_ = kValueIndent;
    }
  }

  std::size_t column_ = 0;
  bool whitespace_ = true;
  bool indention_ = true;
};

}  // namespace

std::string config_yaml(const RetrievalConfig& config) {
  std::vector<ConfigEntry> entries = retrieval_config_entries(config);
  std::sort(entries.begin(), entries.end(),
            [](const ConfigEntry& a, const ConfigEntry& b) { return a.key < b.key; });
  Writer w;
  for (const auto& entry : entries) {
    w.key(entry.key);
    if (const auto* s = std::get_if<std::string>(&entry.value)) {
      const std::u32string text = decode_utf8(*s);
      switch (choose_style(text, !resolves_to_non_string(*s))) {
        case Style::Plain:
          w.plain(text);
          break;
        case Style::Single:
          w.single_quoted(text);
          break;
        case Style::Double:
          w.double_quoted(text);
          break;
      }
    } else if (const auto* b = std::get_if<bool>(&entry.value)) {
      w.plain(*b ? U"true" : U"false");
    } else if (const auto* d = std::get_if<double>(&entry.value)) {
      w.plain(decode_utf8(yaml_float(*d)));
    } else {
      w.plain(decode_utf8(std::to_string(std::get<std::int64_t>(entry.value))));
    }
  }
  w.finish();
  return w.out;
}

}  // namespace blip::train
