// Strict UTF-8 <-> code point conversion for captions and vocabularies (internal to blip_text).
#pragma once

#include <string>
#include <string_view>

namespace blip::text::detail {

// Decodes `bytes` into code points. An ill-formed sequence (overlong form, lone continuation
// byte, surrogate, truncated sequence, value above U+10FFFF) throws blip::Error
// "<what>: invalid UTF-8 at byte offset N (<kind>)".
std::u32string decode_utf8(std::string_view bytes, const std::string& what);

// decode_utf8 for a caption: the error names it as describe_caption(caption, source) does.
std::u32string decode_caption(std::string_view caption, const std::string& source = {});

// Encodes code points (assumed valid scalar values) as UTF-8.
std::string encode_utf8(std::u32string_view code_points);
void append_utf8(std::string& out, char32_t code_point);

// `caption "<text>"` (or `<source>: caption "<text>"`) for error messages: non-printable and
// non-ASCII bytes escaped as \xNN, shortened to a readable length.
std::string describe_caption(std::string_view caption, const std::string& source = {});

}  // namespace blip::text::detail
