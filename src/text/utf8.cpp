#include "text/utf8.h"

#include <unicode/utf8.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "blip/error.h"

namespace blip::text::detail {
namespace {

// Names the kind of ill-formed sequence that starts at `p` (n bytes left), for the message.
std::string ill_formed_kind(const uint8_t* p, size_t n) {
  const uint8_t lead = p[0];
  const bool has_next = n > 1;
  const uint8_t next = has_next ? p[1] : 0;
  if (lead >= 0x80 && lead <= 0xBF) return "unexpected continuation byte";
  if (lead == 0xC0 || lead == 0xC1) return "overlong encoding";
  if (lead >= 0xF5) return "byte 0xF5..0xFF never appears in UTF-8";
  if (has_next && (next & 0xC0) == 0x80) {
    if (lead == 0xE0 && next < 0xA0) return "overlong encoding";
    if (lead == 0xF0 && next < 0x90) return "overlong encoding";
    if (lead == 0xED && next >= 0xA0) return "UTF-16 surrogate";
    if (lead == 0xF4 && next >= 0x90) return "code point above U+10FFFF";
  }
  return "truncated multi-byte sequence";
}

}  // namespace

namespace {

// Decodes into `out`; returns the byte offset of the first ill-formed sequence, or npos.
size_t try_decode(std::string_view bytes, std::u32string& out) {
  out.clear();
  out.reserve(bytes.size());
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  size_t pos = 0;
  while (pos < n) {
    // U8_NEXT takes int32 indices; a window of at most 4 bytes keeps huge inputs safe.
    const uint8_t* p = data + pos;
    const int32_t window = static_cast<int32_t>(std::min<size_t>(n - pos, 4));
    int32_t i = 0;
    UChar32 c = 0;
    U8_NEXT(p, i, window, c);
    if (c < 0) return pos;
    out.push_back(static_cast<char32_t>(c));
    pos += static_cast<size_t>(i);
  }
  return std::string_view::npos;
}

std::string invalid_utf8_reason(std::string_view bytes, size_t pos) {
  return "invalid UTF-8 at byte offset " + std::to_string(pos) + " (" +
         ill_formed_kind(reinterpret_cast<const uint8_t*>(bytes.data()) + pos, bytes.size() - pos) + ")";
}

}  // namespace

std::u32string decode_utf8(std::string_view bytes, const std::string& what) {
  std::u32string out;
  if (const size_t bad = try_decode(bytes, out); bad != std::string_view::npos)
    fail(what, invalid_utf8_reason(bytes, bad));
  return out;
}

std::u32string decode_caption(std::string_view caption, const std::string& source) {
  std::u32string out;
  if (const size_t bad = try_decode(caption, out); bad != std::string_view::npos)
    fail(describe_caption(caption, source), invalid_utf8_reason(caption, bad));
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  uint8_t buf[U8_MAX_LENGTH];
  int32_t len = 0;
  U8_APPEND_UNSAFE(buf, len, static_cast<UChar32>(cp));
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(len));
}

std::string encode_utf8(std::u32string_view code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (char32_t cp : code_points) append_utf8(out, cp);
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
