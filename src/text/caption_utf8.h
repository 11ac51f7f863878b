// Caption-specific UTF-8 helpers (internal to blip_text); the codec itself is core/utf8.h.
#pragma once

#include <string>
#include <string_view>

namespace blip::text::detail {

// utf8::decode for a caption: the error names it as describe_caption(caption, source) does.
std::u32string decode_caption(std::string_view caption, const std::string& source = {});

// `caption "<text>"` (or `<source>: caption "<text>"`) for error messages: non-printable and
// non-ASCII bytes escaped as \xNN, shortened to a readable length.
std::string describe_caption(std::string_view caption, const std::string& source = {});

}  // namespace blip::text::detail
