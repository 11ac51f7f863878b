// The special-token handling of transformers' PreTrainedTokenizer.tokenize (v4.15), shared by the
// WordPiece and SentencePiece backends (internal to blip_text).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace blip::text::detail {

// Length of the longest special token that starts at text[pos] (case-sensitive), or 0.
size_t special_token_match(std::u32string_view text, size_t pos, const std::vector<std::u32string>& specials);

// The do_lower_case pre-pass: every code point is lower-cased on its own (Python
// `re.sub(r"(<specials>)|(.+?)", ...)`, so no final-sigma context), except inside special tokens
// and '\n' (which `.` does not match).
std::u32string lower_outside_special_tokens(std::u32string_view text,
                                            const std::vector<std::u32string>& specials);

struct TextPiece {
  std::u32string text;
  bool is_special = false;
};

// Splits text at special tokens (leftmost, longest first). Python whitespace next to a special
// token is stripped from its neighbours; empty pieces are dropped.
std::vector<TextPiece> split_on_special_tokens(std::u32string_view text,
                                               const std::vector<std::u32string>& specials);

}  // namespace blip::text::detail
