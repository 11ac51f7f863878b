#include "text/unicode.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <vector>

#include "blip/error.h"

namespace blip::text::detail {
namespace {

uint32_t category_mask(char32_t c) { return U_GET_GC_MASK(static_cast<UChar32>(c)); }

bool is_ascii(std::u32string_view text) {
  for (char32_t c : text)
    if (c >= 0x80) return false;
  return true;
}

std::u16string to_utf16(std::u32string_view text) {
  std::u16string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c <= 0xFFFF) {
      out.push_back(static_cast<char16_t>(c));
    } else {
      out.push_back(static_cast<char16_t>(U16_LEAD(c)));
      out.push_back(static_cast<char16_t>(U16_TRAIL(c)));
    }
  }
  return out;
}

std::u32string from_utf16(const char16_t* s, int32_t length) {
  std::u32string out;
  out.reserve(static_cast<size_t>(length));
  int32_t i = 0;
  while (i < length) {
    UChar32 c;
    U16_NEXT(s, i, length, c);
    out.push_back(static_cast<char32_t>(c));
  }
  return out;
}

[[noreturn]] void icu_failure(const char* call, UErrorCode status) {
  // Only reachable on ICU data or memory failure, never on user input (which is valid UTF-8 by now).
  fail(std::string("ICU ") + call, u_errorName(status));
}

}  // namespace

bool is_python_space(char32_t c) {
  switch (u_charDirection(static_cast<UChar32>(c))) {
    case U_WHITE_SPACE_NEUTRAL:
    case U_BLOCK_SEPARATOR:
    case U_SEGMENT_SEPARATOR:
      return true;
    default:
      return is_category_space_separator(c);
  }
}

bool is_category_other(char32_t c) { return (category_mask(c) & U_GC_C_MASK) != 0; }
bool is_category_punctuation(char32_t c) { return (category_mask(c) & U_GC_P_MASK) != 0; }
bool is_category_space_separator(char32_t c) { return (category_mask(c) & U_GC_ZS_MASK) != 0; }
bool is_category_nonspacing_mark(char32_t c) { return (category_mask(c) & U_GC_MN_MASK) != 0; }

std::u32string to_lower(std::u32string_view text) {
  if (text.empty()) return {};
  if (is_ascii(text)) {  // the common case; ASCII lower-casing is context-free
    std::u32string out(text);
    for (char32_t& c : out)
      if (c >= U'A' && c <= U'Z') c += U'a' - U'A';
    return out;
  }
  const std::u16string src = to_utf16(text);
  // Full lower-casing can grow a string (U+0130 -> 2 units); retry once with the exact size.
  std::vector<char16_t> dst(src.size() + src.size() / 2 + 4);
  UErrorCode status = U_ZERO_ERROR;
  int32_t n = u_strToLower(dst.data(), static_cast<int32_t>(dst.size()), src.data(),
                           static_cast<int32_t>(src.size()), "", &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    dst.resize(static_cast<size_t>(n));
    status = U_ZERO_ERROR;
    n = u_strToLower(dst.data(), static_cast<int32_t>(dst.size()), src.data(),
                     static_cast<int32_t>(src.size()), "", &status);
  }
  if (U_FAILURE(status)) icu_failure("u_strToLower", status);
  return from_utf16(dst.data(), n);
}

std::u32string to_nfd(std::u32string_view text) {
  if (is_ascii(text)) return std::u32string(text);  // ASCII is invariant under NFD
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* nfd = unorm2_getNFDInstance(&status);
  if (U_FAILURE(status)) icu_failure("unorm2_getNFDInstance", status);
  const std::u16string src = to_utf16(text);
  std::vector<char16_t> dst(src.size() * 3 + 4);
  int32_t n = unorm2_normalize(nfd, src.data(), static_cast<int32_t>(src.size()), dst.data(),
                               static_cast<int32_t>(dst.size()), &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    dst.resize(static_cast<size_t>(n));
    status = U_ZERO_ERROR;
    n = unorm2_normalize(nfd, src.data(), static_cast<int32_t>(src.size()), dst.data(),
                         static_cast<int32_t>(dst.size()), &status);
  }
  if (U_FAILURE(status)) icu_failure("unorm2_normalize", status);
  return from_utf16(dst.data(), n);
}

}  // namespace blip::text::detail
