// BLIP's caption normalisation (data/utils.py pre_caption), byte-exact with the Python original.
#pragma once

#include <string>

#include "blip/blip_defaults.h"  // kCaptionMaxWords, the retrieval datasets' limit

namespace blip::text {

// BLIP retrieval uses max_words = kCaptionMaxWords (30); the Python default is 50.
inline constexpr int kPreCaptionDefaultMaxWords = 50;

// Returns BLIP's pre_caption(caption, max_words) for a UTF-8 caption:
//   1. Python str.lower() of the whole string (full, context-sensitive: final Σ -> ς, İ -> i̇);
//   2. each of . ! " ( ) * # : ; ~ -> ' ';
//   3. runs of two or more whitespace characters (Python's str.isspace set) -> one ' ';
//      a single tab, newline or NBSP survives;
//   4. rstrip('\n'), then strip(' ') (so a leading '\n' or '\t' and a trailing '\t' stay);
//   5. keep the first max_words words of split(' ') (Python slice semantics for max_words < 0).
// Invalid UTF-8 throws blip::Error naming the caption (and `source`, e.g. an annotation file,
// when given) and the byte offset of the first ill-formed sequence.
std::string pre_caption(const std::string& caption, int max_words = kPreCaptionDefaultMaxWords,
                        const std::string& source = {});

}  // namespace blip::text
