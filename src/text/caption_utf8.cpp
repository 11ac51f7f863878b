#include "text/caption_utf8.h"

#include <cstdio>

#include "blip/error.h"
#include "core/utf8.h"

namespace blip::text::detail {

std::u32string decode_caption(std::string_view caption, const std::string& source) {
  std::u32string out;
  // The caption is described only on failure: most captions are valid.
  if (const auto failure = utf8::try_decode(caption, out))
    fail(describe_caption(caption, source), utf8::describe(*failure));
  return out;
}

std::string describe_caption(std::string_view caption, const std::string& source) {
  constexpr size_t kMaxShown = 60;  // bytes of the caption quoted in a message
  std::string shown;
  for (size_t i = 0; i < caption.size() && i < kMaxShown; ++i) {
    const auto b = static_cast<unsigned char>(caption[i]);
    if (b >= 0x20 && b < 0x7F && b != '"' && b != '\\') {
      shown.push_back(static_cast<char>(b));
    } else {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02X", b);
      shown += esc;
    }
  }
  if (caption.size() > kMaxShown) shown += "...";
  std::string what = "caption \"" + shown + "\"";
  return source.empty() ? what : source + ": " + what;
}

}  // namespace blip::text::detail
