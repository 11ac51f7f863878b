// Unicode properties and transforms with Python's semantics, backed by ICU (internal to blip_text).
#pragma once

#include <string>
#include <string_view>

namespace blip::text::detail {

// Python str.isspace(): bidirectional class WS, B or S, or general category Zs. This is also
// the set `\s` matches in Python's re and that str.split()/strip() use.
bool is_python_space(char32_t c);

// General-category tests: C* (Cc, Cf, Cn, Co, Cs), P*, Zs and Mn.
bool is_category_other(char32_t c);
bool is_category_punctuation(char32_t c);
bool is_category_space_separator(char32_t c);
bool is_category_nonspacing_mark(char32_t c);

// Python str.lower(): full, context-sensitive lower-case mapping (root locale), e.g. a final
// capital sigma becomes U+03C2 and U+0130 becomes "i" U+0307.
std::u32string to_lower(std::u32string_view text);

// Canonical decomposition (unicodedata.normalize("NFD", text)).
std::u32string to_nfd(std::u32string_view text);

// Python's str.split() with no separator: runs of is_python_space() separate, no empty parts.
template <class Fn>
void for_each_python_word(std::u32string_view text, Fn&& fn) {
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_python_space(text[i])) ++i;
    const size_t start = i;
    while (i < text.size() && !is_python_space(text[i])) ++i;
    if (i > start) fn(text.substr(start, i - start));
  }
}

}  // namespace blip::text::detail
