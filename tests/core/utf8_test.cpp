#include "core/utf8.h"

#include <gtest/gtest.h>

#include <string>

#include "blip/error.h"

namespace {

using blip::utf8::Problem;

// The problem reported for `bytes` and the offset where it starts; kNone when all is valid.
blip::utf8::Failure first_failure(const std::string& bytes) {
  std::u32string out;
  return blip::utf8::try_decode(bytes, out).value_or(blip::utf8::Failure{});
}

}  // namespace

TEST(Utf8, DecodesOneToFourByteSequences) {
  // '$', U+00A2, U+20AC, U+1F600 and the extremes U+0080, U+07FF, U+FFFF, U+10FFFF.
  const std::string bytes = "$\xC2\xA2\xE2\x82\xAC\xF0\x9F\x98\x80\xC2\x80\xDF\xBF\xEF\xBF\xBF\xF4\x8F\xBF\xBF";
  const std::u32string expected = U"$\u00A2\u20AC\U0001F600\u0080\u07FF\uFFFF\U0010FFFF";
  EXPECT_EQ(blip::utf8::decode(bytes, "t"), expected);
  EXPECT_TRUE(blip::utf8::is_valid(bytes));
  EXPECT_EQ(blip::utf8::encode(expected), bytes);
  EXPECT_EQ(blip::utf8::sanitize(bytes), bytes);
  EXPECT_EQ(blip::utf8::next(bytes, 3).length, 3u);
  EXPECT_EQ(blip::utf8::next(bytes, 3).code_point, U'\u20AC');
}

TEST(Utf8, RejectsEveryIllFormedKindAtItsOffset) {
  struct Case { std::string bytes; size_t offset; Problem problem; };
  const Case cases[] = {
      {"ab\xC0\xAF", 2, Problem::kOverlong},
      {"x\xE0\x80\xAF", 1, Problem::kOverlong},
      {"\xF0\x82\x82\xAC", 0, Problem::kOverlong},
      {"abc\x80" "def", 3, Problem::kUnexpectedContinuation},
      {"a\xED\xA0\x80" "b", 1, Problem::kSurrogate},
      {"a\xED\xBF\xBF", 1, Problem::kSurrogate},
      {"\xF4\x90\x80\x80", 0, Problem::kAboveMax},
      {"ok \xFF", 3, Problem::kInvalidByte},
      {"caf\xC3", 3, Problem::kTruncated},
      {"\xE2\x82 euro", 0, Problem::kTruncated},
      {"\xF0\x9F\x90", 0, Problem::kTruncated},
  };
  for (const Case& c : cases) {
    const auto failure = first_failure(c.bytes);
    EXPECT_EQ(failure.offset, c.offset) << c.bytes;
    EXPECT_EQ(failure.problem, c.problem) << c.bytes;
    EXPECT_FALSE(blip::utf8::is_valid(c.bytes)) << c.bytes;
  }
}

TEST(Utf8, DecodeErrorNamesWhatOffsetAndKind) {
  try {
    blip::utf8::decode("caf\xC3", "vocab.txt");
    FAIL() << "decode accepted a truncated sequence";
  } catch (const blip::Error& e) {
    EXPECT_STREQ(e.what(), "vocab.txt: invalid UTF-8 at byte offset 3 (truncated multi-byte sequence)");
  }
}

TEST(Utf8, SanitizeReplacesEachInvalidByte) {
  // A truncated 3-byte sequence is two invalid bytes; the space after it survives.
  EXPECT_EQ(blip::utf8::sanitize("a\xE2\x82 b\xFF"), "a\xEF\xBF\xBD\xEF\xBF\xBD b\xEF\xBF\xBD");
  EXPECT_EQ(blip::utf8::sanitize("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Utf8, AppendAndLatin1RoundTrip) {
  std::string out = "x";
  blip::utf8::append(out, U'\u00E9');
  blip::utf8::append(out, U'\U0001F600');
  EXPECT_EQ(out, "x\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(blip::utf8::from_latin1("caf\xE9\xFF"), "caf\xC3\xA9\xC3\xBF");
  EXPECT_EQ(blip::utf8::to_latin1("caf\xC3\xA9\xC3\xBF"), std::string("caf\xE9\xFF"));
  EXPECT_FALSE(blip::utf8::to_latin1("\xE2\x82\xAC").has_value());  // U+20AC > U+00FF
  EXPECT_FALSE(blip::utf8::to_latin1("\xC3").has_value());
}
