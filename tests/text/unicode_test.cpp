// The ICU-backed predicates must agree with Python (3.11, Unicode 14) where BLIP relies on them.
#include "text/unicode.h"

#include <gtest/gtest.h>

#include <set>

using namespace blip::text::detail;

TEST(Unicode, PythonIsspaceSetExactly) {
  // [c for c in range(0x110000) if chr(c).isspace()] under Python 3.11.
  const std::set<char32_t> python = {0x09,   0x0A,   0x0B,   0x0C,   0x0D,   0x1C,   0x1D,   0x1E,
                                     0x1F,   0x20,   0x85,   0xA0,   0x1680, 0x2000, 0x2001, 0x2002,
                                     0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A,
                                     0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
  int mismatches = 0;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    if (is_python_space(c) != (python.count(c) > 0)) {
      ++mismatches;
      ADD_FAILURE() << "U+" << std::hex << static_cast<uint32_t>(c);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Unicode, GeneralCategories) {
  for (char32_t c : {U'\x00', U'\x07', U'\x7F', U'\x85', U'\u00AD', U'\u200B', U'\uFEFF', U'\uE000', U'\u0378'})
    EXPECT_TRUE(is_category_other(c)) << std::hex << static_cast<uint32_t>(c);
  for (char32_t c : {U'a', U' ', U'\u00A0', U'\u2028', U'\uFFFD'})
    EXPECT_FALSE(is_category_other(c)) << std::hex << static_cast<uint32_t>(c);
  for (char32_t c : {U'\u00BF', U'\u2014', U'\u00AB', U'\u2019', U'\u2026', U'\u3001', U'_', U'-'})
    EXPECT_TRUE(is_category_punctuation(c)) << std::hex << static_cast<uint32_t>(c);
  for (char32_t c : {U'$', U'^', U'+', U'\u00B0', U'\u20AC', U'a'})
    EXPECT_FALSE(is_category_punctuation(c)) << std::hex << static_cast<uint32_t>(c);
  EXPECT_TRUE(is_category_space_separator(U'\u3000'));
  EXPECT_FALSE(is_category_space_separator(U'\t'));
  EXPECT_TRUE(is_category_nonspacing_mark(U'\u0301'));
  EXPECT_FALSE(is_category_nonspacing_mark(U'\u0903'));  // Mc
}

TEST(Unicode, LowerAndNfd) {
  EXPECT_EQ(to_lower(U"ΟΔΟΣ"), U"οδος");        // final sigma in context
  EXPECT_EQ(to_lower(U"Σ"), U"σ");
  EXPECT_EQ(to_lower(U"ΣΑ"), U"σα");
  EXPECT_EQ(to_lower(U"İ"), U"i\u0307");
  EXPECT_EQ(to_lower(U"ẞ"), U"ß");
  EXPECT_EQ(to_lower(U"ABC xyz"), U"abc xyz");
  EXPECT_EQ(to_nfd(U"é"), U"e\u0301");
  EXPECT_EQ(to_nfd(U"\uAC00"), U"\u1100\u1161");  // Hangul syllable → jamo
  EXPECT_EQ(to_nfd(U"ﬁ"), U"ﬁ");                  // compatibility forms stay (NFD, not NFKD)
}
