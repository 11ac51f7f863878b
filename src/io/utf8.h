// UTF-8 helpers for pickled strings (Python str is pickled as UTF-8; protocol-2 bytes travel as a
// latin-1 str).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace blip::io::detail {

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 when it is invalid
// (overlong forms, surrogates and code points above U+10FFFF are invalid). `cp` receives the code point.
std::size_t utf8_sequence(std::string_view s, std::size_t i, std::uint32_t* cp);

bool is_valid_utf8(std::string_view s);
// Replaces each invalid byte with U+FFFD.
std::string sanitize_utf8(std::string_view s);
// Latin-1 bytes of a UTF-8 string whose code points are all <= U+00FF; nullopt otherwise.
std::optional<std::string> utf8_to_latin1(std::string_view s);
std::string latin1_to_utf8(std::string_view bytes);

}  // namespace blip::io::detail
