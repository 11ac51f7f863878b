#include "text/special_token_split.h"

#include "text/unicode.h"

namespace blip::text::detail {

size_t special_token_match(std::u32string_view text, size_t pos, const std::vector<std::u32string>& specials) {
  size_t best = 0;
  for (const auto& s : specials)
    if (s.size() > best && text.compare(pos, s.size(), s) == 0) best = s.size();
  return best;
}

std::u32string lower_outside_special_tokens(std::u32string_view text,
                                            const std::vector<std::u32string>& specials) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (const size_t n = special_token_match(text, i, specials)) {
      out.append(text.substr(i, n));
      i += n;
    } else if (text[i] == U'\n') {
      out.push_back(text[i++]);
    } else if (text[i] < 0x80) {
      const char32_t c = text[i++];
      out.push_back(c >= U'A' && c <= U'Z' ? c + (U'a' - U'A') : c);
    } else {
      out += to_lower(text.substr(i++, 1));
    }
  }
  return out;
}

std::vector<TextPiece> split_on_special_tokens(std::u32string_view text,
                                               const std::vector<std::u32string>& specials) {
  std::vector<TextPiece> pieces;
  size_t start = 0;  // start of the current plain piece
  size_t i = 0;
  while (i < text.size()) {
    if (const size_t n = special_token_match(text, i, specials)) {
      if (i > start) pieces.push_back({std::u32string(text.substr(start, i - start)), false});
      pieces.push_back({std::u32string(text.substr(i, n)), true});
      i += n;
      start = i;
    } else {
      ++i;
    }
  }
  if (start < text.size()) pieces.push_back({std::u32string(text.substr(start)), false});

  // Strip whitespace facing a special token: right neighbour lstrip, left neighbour rstrip.
  for (size_t k = 0; k < pieces.size(); ++k) {
    if (!pieces[k].is_special) continue;
    if (k + 1 < pieces.size() && !pieces[k + 1].is_special) {
      auto& t = pieces[k + 1].text;
      size_t b = 0;
      while (b < t.size() && is_python_space(t[b])) ++b;
      t.erase(0, b);
    }
    if (k > 0 && !pieces[k - 1].is_special) {
      auto& t = pieces[k - 1].text;
      while (!t.empty() && is_python_space(t.back())) t.pop_back();
    }
  }
  std::vector<TextPiece> out;
  out.reserve(pieces.size());
  for (auto& p : pieces)
    if (!p.text.empty()) out.push_back(std::move(p));
  return out;
}

}  // namespace blip::text::detail
