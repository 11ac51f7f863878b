#include "blip/text/pre_caption.h"

#include <algorithm>
#include <string_view>
#include <vector>

#include "core/utf8.h"
#include "text/caption_utf8.h"
#include "text/unicode.h"

namespace blip::text {
namespace {

// The character class of BLIP's re.sub(r"([.!\"()*#:;~])", ' ', ...).
bool is_removed_punctuation(char32_t c) {
  constexpr std::u32string_view kRemoved = U".!\"()*#:;~";
  return kRemoved.find(c) != std::u32string_view::npos;
}

// re.sub(r"\s{2,}", ' ', text): only runs of two or more whitespace characters collapse.
std::u32string collapse_whitespace_runs(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (!detail::is_python_space(text[i])) {
      out.push_back(text[i++]);
      continue;
    }
    size_t end = i;
    while (end < text.size() && detail::is_python_space(text[end])) ++end;
    if (end - i >= 2)
      out.push_back(U' ');
    else
      out.push_back(text[i]);
    i = end;
  }
  return out;
}

// Python's words[:max_words] bound for a list of n words.
size_t python_slice_end(size_t n, int max_words) {
  if (max_words >= 0) return std::min(n, static_cast<size_t>(max_words));
  const size_t drop = static_cast<size_t>(-static_cast<long long>(max_words));
  return drop >= n ? 0 : n - drop;
}

}  // namespace

std::string pre_caption(const std::string& caption, int max_words, const std::string& source) {
  std::u32string text =
      detail::to_lower(detail::decode_caption(caption, source));
  for (char32_t& c : text)
    if (is_removed_punctuation(c)) c = U' ';
  text = collapse_whitespace_runs(text);

  std::u32string_view view(text);
  while (!view.empty() && view.back() == U'\n') view.remove_suffix(1);
  while (!view.empty() && view.back() == U' ') view.remove_suffix(1);
  while (!view.empty() && view.front() == U' ') view.remove_prefix(1);
  const std::string stripped = utf8::encode(view);

  // caption.split(' '): every ' ' separates, so empty words count too.
  std::vector<std::string_view> words;
  size_t start = 0;
  for (;;) {
    const size_t sp = stripped.find(' ', start);
    words.emplace_back(std::string_view(stripped).substr(start, sp - start));
    if (sp == std::string::npos) break;
    start = sp + 1;
  }
  if (max_words >= 0 && words.size() <= static_cast<size_t>(max_words)) return stripped;
  const size_t keep = python_slice_end(words.size(), max_words);
  std::string out;
  for (size_t i = 0; i < keep; ++i) {
    if (i) out.push_back(' ');
    out.append(words[i]);
  }
  return out;
}

}  // namespace blip::text
