#include "text/bert_basic_tokenizer.h"

#include <algorithm>

#include "text/unicode.h"

namespace blip::text::detail {
namespace {

// BasicTokenizer._is_control: C* except the three whitespace controls.
bool is_bert_control(char32_t c) {
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  return is_category_other(c);
}

// BasicTokenizer._is_whitespace (narrower than Python's isspace: no VT/FF/FS..US/U+2028).
bool is_bert_whitespace(char32_t c) {
  return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r' || is_category_space_separator(c);
}

// BasicTokenizer._is_punctuation: all non-alphanumeric ASCII counts, plus category P*.
bool is_bert_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))
    return true;
  return is_category_punctuation(c);
}

// BasicTokenizer._is_chinese_char: the CJK ideograph blocks BERT singles out (not kana/Hangul).
bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::u32string clean_and_space_cjk(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || is_bert_control(c)) continue;
    if (is_bert_whitespace(c)) {
      out.push_back(U' ');
    } else if (is_cjk_ideograph(c)) {
      out.push_back(U' ');
      out.push_back(c);
      out.push_back(U' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::u32string strip_accents(std::u32string_view word) {
  std::u32string out;
  for (char32_t c : to_nfd(word))
    if (!is_category_nonspacing_mark(c)) out.push_back(c);
  return out;
}

bool contains(const std::vector<std::u32string>& set, std::u32string_view word) {
  return std::find(set.begin(), set.end(), word) != set.end();
}

}  // namespace

std::vector<std::u32string> bert_basic_tokenize(std::u32string_view text,
                                                const std::vector<std::u32string>& never_split) {
  std::vector<std::u32string> split;
  for_each_python_word(clean_and_space_cjk(text), [&](std::u32string_view word) {
    if (contains(never_split, word)) {
      split.emplace_back(word);
      return;
    }
    const std::u32string normalized = strip_accents(to_lower(word));
    std::u32string current;
    for (char32_t c : normalized) {
      if (is_bert_punctuation(c)) {
        if (!current.empty()) split.push_back(std::move(current));
        current.clear();
        split.emplace_back(1, c);
      } else {
        current.push_back(c);
      }
    }
    if (!current.empty()) split.push_back(std::move(current));
  });
  // whitespace_tokenize(" ".join(split_tokens)): lower-casing or NFD could in principle yield
  // whitespace inside a word.
  std::vector<std::u32string> out;
  for (const auto& w : split)
    for_each_python_word(w, [&](std::u32string_view part) { out.emplace_back(part); });
  return out;
}

}  // namespace blip::text::detail
