#include "core/utf8.h"

#include <cstdint>

#include "blip/error.h"

namespace blip::utf8 {
namespace {

bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

}  // namespace

const char* describe(Problem problem) {
  switch (problem) {
    case Problem::kNone: return "";
    case Problem::kUnexpectedContinuation: return "unexpected continuation byte";
    case Problem::kOverlong: return "overlong encoding";
    case Problem::kInvalidByte: return "byte 0xF5..0xFF never appears in UTF-8";
    case Problem::kSurrogate: return "UTF-16 surrogate";
    case Problem::kAboveMax: return "code point above U+10FFFF";
    case Problem::kTruncated: return "truncated multi-byte sequence";
  }
  return "unknown problem";
}

Sequence next(std::string_view bytes, std::size_t offset) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(bytes[offset + k]); };
  const std::size_t left = bytes.size() - offset;
  const unsigned char lead = byte(0);
  Sequence seq;
  if (lead < 0x80) {
    seq.length = 1;
    seq.code_point = lead;
    return seq;
  }
  std::size_t length = 0;
  if (lead < 0xC0) seq.problem = Problem::kUnexpectedContinuation;
  else if (lead < 0xC2) seq.problem = Problem::kOverlong;
  else if (lead < 0xE0) length = 2, seq.code_point = lead & 0x1F;
  else if (lead < 0xF0) length = 3, seq.code_point = lead & 0x0F;
  else if (lead < 0xF5) length = 4, seq.code_point = lead & 0x07;
  else seq.problem = Problem::kInvalidByte;
  if (!seq.valid()) return seq;

  // The second byte's allowed range depends on the lead; this is what rules out overlong
  // 3/4-byte forms, surrogates and values above U+10FFFF, so no check on the result is needed.
  if (left > 1 && is_continuation(byte(1))) {
    const unsigned char second = byte(1);
    if ((lead == 0xE0 && second < 0xA0) || (lead == 0xF0 && second < 0x90)) seq.problem = Problem::kOverlong;
    else if (lead == 0xED && second >= 0xA0) seq.problem = Problem::kSurrogate;
    else if (lead == 0xF4 && second >= 0x90) seq.problem = Problem::kAboveMax;
    if (!seq.valid()) return seq;
  }
  for (std::size_t k = 1; k < length; ++k) {
    if (k >= left || !is_continuation(byte(k))) {
      seq.problem = Problem::kTruncated;
      seq.code_point = 0;
      return seq;
    }
    seq.code_point = (seq.code_point << 6) | (byte(k) & 0x3F);
  }
  seq.length = length;
  return seq;
}

std::string describe(const Failure& failure) {
  return "invalid UTF-8 at byte offset " + std::to_string(failure.offset) + " (" + describe(failure.problem) + ")";
}

std::optional<Failure> try_decode(std::string_view bytes, std::u32string& out) {
  out.clear();
  out.reserve(bytes.size());
  for (std::size_t pos = 0; pos < bytes.size();) {
    const Sequence seq = next(bytes, pos);
    if (!seq.valid()) return Failure{pos, seq.problem};
    out.push_back(seq.code_point);
    pos += seq.length;
  }
  return std::nullopt;
}

std::u32string decode(std::string_view bytes, const std::string& what) {
  std::u32string out;
  if (const auto failure = try_decode(bytes, out)) fail(what, describe(*failure));
  return out;
}

bool is_valid(std::string_view bytes) {
  for (std::size_t pos = 0; pos < bytes.size();) {
    const Sequence seq = next(bytes, pos);
    if (!seq.valid()) return false;
    pos += seq.length;
  }
  return true;
}

std::string sanitize(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t pos = 0; pos < bytes.size();) {
    const Sequence seq = next(bytes, pos);
    if (seq.valid()) {
      out.append(bytes.substr(pos, seq.length));
      pos += seq.length;
    } else {
      append(out, U'\uFFFD');
      ++pos;  // one replacement per invalid byte, then resynchronise on the next byte
    }
  }
  return out;
}

void append(std::string& out, char32_t cp) {
  const auto put = [&](std::uint32_t b) { out.push_back(static_cast<char>(b)); };
  if (cp < 0x80) {
    put(cp);
  } else if (cp < 0x800) {
    put(0xC0 | (cp >> 6));
    put(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    put(0xE0 | (cp >> 12));
    put(0x80 | ((cp >> 6) & 0x3F));
    put(0x80 | (cp & 0x3F));
  } else {
    put(0xF0 | (cp >> 18));
    put(0x80 | ((cp >> 12) & 0x3F));
    put(0x80 | ((cp >> 6) & 0x3F));
    put(0x80 | (cp & 0x3F));
  }
}

std::string encode(std::u32string_view code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (const char32_t cp : code_points) append(out, cp);
  return out;
}

std::optional<std::string> to_latin1(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t pos = 0; pos < bytes.size();) {
    const Sequence seq = next(bytes, pos);
    if (!seq.valid() || seq.code_point > 0xFF) return std::nullopt;
    out.push_back(static_cast<char>(seq.code_point));
    pos += seq.length;
  }
  return out;
}

std::string from_latin1(std::string_view latin1) {
  std::string out;
  out.reserve(latin1.size());
  for (const char c : latin1) append(out, static_cast<unsigned char>(c));
  return out;
}

}  // namespace blip::utf8
