#include "blip/text/pre_caption.h"

#include <gtest/gtest.h>

#include "blip/error.h"
#include "text_fixture.h"

using blip::text::pre_caption;

TEST(PreCaption, MatchesBlipForEveryFixtureCaption) {
  BLIP_REQUIRE_FIXTURES();
  const auto& fx = blip::test::text_fixture();
  const int max_words = fx.at("max_words").get<int>();
  ASSERT_EQ(max_words, 30);
  const auto& captions = fx.at("captions");
  ASSERT_EQ(captions.size(), 60u);
  int mismatches = 0;
  for (size_t i = 0; i < captions.size(); ++i) {
    const auto& c = captions[i];
    const std::string raw = blip::test::from_hex(c.at("raw_utf8_hex").get<std::string>());
    const std::string expected = blip::test::from_hex(c.at("pre_caption_utf8_hex").get<std::string>());
    ASSERT_EQ(raw, c.at("raw").get<std::string>()) << "caption " << i;
    const std::string got = pre_caption(raw, max_words);
    if (got != expected) ++mismatches;
    EXPECT_EQ(got, expected) << "caption " << i << " (" << c.at("category").get<std::string>()
                             << ")\n  raw:      " << blip::test::escaped(raw)
                             << "\n  expected: " << blip::test::escaped(expected)
                             << "\n  got:      " << blip::test::escaped(got);
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(PreCaption, LowerCasingIsPythonStrLower) {
  // Final capital sigma is context-sensitive; İ gains a combining dot; KELVIN/OHM signs fold.
  EXPECT_EQ(pre_caption("ΟΔΟΣ ΣΊΣΥΦΟΣ"), "οδος σίσυφος");
  EXPECT_EQ(pre_caption("Σ"), "σ");
  EXPECT_EQ(pre_caption("İ"), "i\xCC\x87");
  EXPECT_EQ(pre_caption("\xE2\x84\xAA \xE2\x84\xA6 \xC7\x85"), "k \xCF\x89 \xC7\x86");
}

TEST(PreCaption, RemovesOnlyBlipPunctuationAndCollapsesRuns) {
  EXPECT_EQ(pre_caption("a.b!c\"d(e)f*g#h:i;j~k"), "a b c d e f g h i j k");
  EXPECT_EQ(pre_caption("keep ,?'-/&@[]{}<>|$%^_=+`\\ here"), "keep ,?'-/&@[]{}<>|$%^_=+`\\ here");
  EXPECT_EQ(pre_caption("one\ttwo"), "one\ttwo");            // a single tab survives
  EXPECT_EQ(pre_caption("one\t\ttwo"), "one two");            // a run collapses
  EXPECT_EQ(pre_caption("a\xC2\xA0" "b"), "a\xC2\xA0" "b");   // single NBSP survives
  EXPECT_EQ(pre_caption("a\x1C\x1D" "b"), "a b");             // Python counts FS/GS as space
  EXPECT_EQ(pre_caption("a\xE2\x80\x8B\xE2\x80\x8B" "b"), "a\xE2\x80\x8B\xE2\x80\x8B" "b");  // ZWSP is not
  EXPECT_EQ(pre_caption("\na b\n"), "\na b");
  EXPECT_EQ(pre_caption("\ta b\t"), "\ta b\t");
  EXPECT_EQ(pre_caption(" x. "), "x");
  EXPECT_EQ(pre_caption(""), "");
  EXPECT_EQ(pre_caption("(*#:;~).\"!"), "");
}

TEST(PreCaption, TruncatesOnSingleSpacesLikePythonSlicing) {
  EXPECT_EQ(pre_caption("a b c d", 2), "a b");
  EXPECT_EQ(pre_caption("a b c d", 4), "a b c d");
  EXPECT_EQ(pre_caption("a\tb c d", 2), "a\tb c");  // split(' ') only
  EXPECT_EQ(pre_caption("a b c d", 0), "");
  EXPECT_EQ(pre_caption("a b c d", -1), "a b c");   // words[:-1]
  EXPECT_EQ(pre_caption("a b", -5), "");
  // 50 words by default.
  std::string many;
  for (int i = 0; i < 60; ++i) many += (i ? " w" : "w") + std::to_string(i);
  const std::string out = pre_caption(many);
  EXPECT_EQ(std::count(out.begin(), out.end(), ' '), 49);
  EXPECT_EQ(out.substr(out.rfind(' ') + 1), "w49");
}

namespace {

// Expects pre_caption to reject `bytes` with a message naming the caption, source and offset.
void expect_invalid_utf8(const std::string& bytes, size_t offset, const std::string& kind) {
  SCOPED_TRACE(blip::test::escaped(bytes));
  try {
    pre_caption(bytes, 30, "annotations.json");
    ADD_FAILURE() << "no blip::Error for invalid UTF-8";
  } catch (const blip::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("annotations.json: caption \""), std::string::npos) << msg;
    EXPECT_NE(msg.find("invalid UTF-8 at byte offset " + std::to_string(offset)), std::string::npos) << msg;
    EXPECT_NE(msg.find(kind), std::string::npos) << msg;
  }
}

}  // namespace

TEST(PreCaption, RejectsInvalidUtf8WithOffset) {
  expect_invalid_utf8("ab\xC0\xAF", 2, "overlong");                 // overlong '/'
  expect_invalid_utf8("x\xE0\x80\xAF", 1, "overlong");              // 3-byte overlong
  expect_invalid_utf8("\xF0\x82\x82\xAC", 0, "overlong");           // 4-byte overlong
  expect_invalid_utf8("abc\x80" "def", 3, "continuation");           // lone continuation byte
  expect_invalid_utf8("\xBF", 0, "continuation");
  expect_invalid_utf8("a\xED\xA0\x80" "b", 1, "surrogate");          // U+D800
  expect_invalid_utf8("a\xED\xBF\xBF", 1, "surrogate");              // U+DFFF
  expect_invalid_utf8("caf\xC3", 3, "truncated");                    // truncated at the end
  expect_invalid_utf8("\xE2\x82 euro", 0, "truncated");              // truncated in the middle
  expect_invalid_utf8("\xF0\x9F\x90", 0, "truncated");
  expect_invalid_utf8("\xF4\x90\x80\x80", 0, "above U+10FFFF");
  expect_invalid_utf8("ok \xFF", 3, "0xF5..0xFF");
}

TEST(PreCaption, ErrorWithoutSourceStillNamesCaption) {
  try {
    pre_caption("bad\xFF");
    FAIL() << "no blip::Error";
  } catch (const blip::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("caption \"bad\\xFF\": invalid UTF-8 at byte offset 3", 0), 0u)
        << e.what();
  }
}

TEST(PreCaption, AcceptsEdgeOfValidRange) {
  EXPECT_EQ(pre_caption("\xF4\x8F\xBF\xBF"), "\xF4\x8F\xBF\xBF");  // U+10FFFF
  EXPECT_EQ(pre_caption("\xEF\xBF\xBF"), "\xEF\xBF\xBF");          // U+FFFF (noncharacter, valid)
  EXPECT_EQ(pre_caption(std::string("a\0b", 3)), std::string("a\0b", 3));
}
