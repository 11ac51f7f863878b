// BERT's BasicTokenizer (transformers 4.15, do_lower_case=True, tokenize_chinese_chars=True,
// strip_accents=None), internal to blip_text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace blip::text::detail {

// Splits text into the words WordPiece sees:
//   1. drop U+0000, U+FFFD and category C* except \t \n \r; map ' ', \t, \n, \r and Zs to ' ';
//   2. put spaces around CJK ideographs (the CJK Unified/Compatibility blocks BERT lists);
//   3. split on whitespace (Python str.split());
//   4. per word not in never_split: Python str.lower(), NFD, drop category Mn;
//   5. split off every punctuation character (ASCII 33-47, 58-64, 91-96, 123-126, or P*).
std::vector<std::u32string> bert_basic_tokenize(std::u32string_view text,
                                                const std::vector<std::u32string>& never_split);

}  // namespace blip::text::detail
