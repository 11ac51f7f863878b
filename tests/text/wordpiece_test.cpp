#include "blip/text/wordpiece_tokenizer.h"

#include <gtest/gtest.h>

#include <memory>

#include "blip/text/pre_caption.h"
#include "text_fixture.h"

using blip::text::Encoding;
using blip::text::Padding;
using blip::text::Tokenizer;

namespace {

const Tokenizer& bert() {
  static const std::unique_ptr<Tokenizer> tok = blip::text::load_tokenizer(blip::test::bert_vocab_path());
  return *tok;
}

template <class T>
std::vector<T> as_vector(const nlohmann::json& j) {
  return j.get<std::vector<T>>();
}

std::vector<std::vector<int64_t>> rows_of(const Encoding& e, const std::vector<int64_t>& flat) {
  std::vector<std::vector<int64_t>> rows;
  for (int64_t r = 0; r < e.rows; ++r)
    rows.emplace_back(flat.begin() + r * e.cols, flat.begin() + (r + 1) * e.cols);
  return rows;
}

// Compares one caption's tokens, untruncated ids, and max_length=35 encoding for `prefix`
// ("raw" or "pre"); returns the number of mismatching fields.
int check_caption(size_t i, const nlohmann::json& c, const std::string& prefix, const std::string& text) {
  const std::string where = "caption " + std::to_string(i) + " (" + c.at("category").get<std::string>() +
                            ") " + prefix + ": " + blip::test::escaped(text);
  int bad = 0;
  const auto tokens = bert().tokenize(text);
  const auto expected_tokens = as_vector<std::string>(c.at(prefix + "_tokens"));
  bad += tokens != expected_tokens;
  EXPECT_EQ(tokens, expected_tokens) << where << " [tokens]";

  const auto ids = bert().encode(text);
  const auto expected_ids = as_vector<int64_t>(c.at(prefix + "_token_ids_untruncated"));
  bad += ids != expected_ids;
  EXPECT_EQ(ids, expected_ids) << where << " [token_ids_untruncated]";

  const Encoding enc = bert().encode_batch({text}, 35, Padding::MaxLength, true);
  EXPECT_EQ(enc.rows, 1);
  EXPECT_EQ(enc.cols, 35);
  const auto expected_input = as_vector<int64_t>(c.at(prefix + "_input_ids"));
  const auto expected_mask = as_vector<int64_t>(c.at(prefix + "_attention_mask"));
  bad += enc.input_ids != expected_input;
  bad += enc.attention_mask != expected_mask;
  EXPECT_EQ(enc.input_ids, expected_input) << where << " [input_ids]";
  EXPECT_EQ(enc.attention_mask, expected_mask) << where << " [attention_mask]";
  return bad;
}

}  // namespace

TEST(WordPiece, SpecialTokenContract) {
  BLIP_REQUIRE_FIXTURES();
  const auto& fx = blip::test::text_fixture();
  const auto& ids = fx.at("special_ids");
  const Tokenizer& t = bert();
  EXPECT_EQ(t.pad_id(), ids.at("pad").get<int64_t>());
  EXPECT_EQ(t.unk_id(), ids.at("unk").get<int64_t>());
  EXPECT_EQ(t.cls_id(), ids.at("cls").get<int64_t>());
  EXPECT_EQ(t.sep_id(), ids.at("sep").get<int64_t>());
  EXPECT_EQ(t.mask_id(), ids.at("mask").get<int64_t>());
  EXPECT_EQ(t.bos_id(), ids.at("dec_bos").get<int64_t>());
  EXPECT_EQ(t.enc_id(), ids.at("enc").get<int64_t>());
  EXPECT_EQ(t.vocab_size(), fx.at("vocab_size_with_added").get<int64_t>());
  EXPECT_EQ(t.pad_id(), 0);
  EXPECT_EQ(t.unk_id(), 100);
  EXPECT_EQ(t.cls_id(), 101);
  EXPECT_EQ(t.sep_id(), 102);
  EXPECT_EQ(t.mask_id(), 103);
  EXPECT_EQ(t.bos_id(), 30522);
  EXPECT_EQ(t.enc_id(), 30523);
  EXPECT_EQ(t.vocab_size(), 30524);
  EXPECT_EQ(t.token_to_id("[DEC]"), 30522);
  EXPECT_EQ(t.token_to_id("[ENC]"), 30523);
  EXPECT_EQ(t.id_to_token(30523), "[ENC]");
  EXPECT_EQ(t.id_to_token(101), "[CLS]");
  EXPECT_EQ(t.id_to_token(30524), "[UNK]");
  EXPECT_EQ(t.id_to_token(-1), "[UNK]");
  EXPECT_EQ(t.token_to_id("no-such-piece"), 100);
  const auto* wp = dynamic_cast<const blip::text::WordPieceTokenizer*>(&t);
  ASSERT_NE(wp, nullptr) << "vocab.txt must load the WordPiece backend";
  EXPECT_EQ(wp->base_vocab_size(), 30522);
}

TEST(WordPiece, RawCaptionsMatchBertTokenizer) {
  BLIP_REQUIRE_FIXTURES();
  const auto& captions = blip::test::text_fixture().at("captions");
  int bad = 0;
  for (size_t i = 0; i < captions.size(); ++i)
    bad += check_caption(i, captions[i], "raw", blip::test::from_hex(captions[i].at("raw_utf8_hex").get<std::string>()));
  EXPECT_EQ(bad, 0) << "mismatching fields over " << captions.size() << " raw captions";
}

TEST(WordPiece, PreCaptionedCaptionsMatchBlip) {
  BLIP_REQUIRE_FIXTURES();
  const auto& fx = blip::test::text_fixture();
  const auto& captions = fx.at("captions");
  int bad = 0;
  for (size_t i = 0; i < captions.size(); ++i) {
    const std::string raw = blip::test::from_hex(captions[i].at("raw_utf8_hex").get<std::string>());
    bad += check_caption(i, captions[i], "pre", blip::text::pre_caption(raw, fx.at("max_words").get<int>()));
  }
  EXPECT_EQ(bad, 0) << "mismatching fields over " << captions.size() << " pre_caption outputs";
}

TEST(WordPiece, BatchPaddingLongestAll) {
  BLIP_REQUIRE_FIXTURES();
  const auto& fx = blip::test::text_fixture();
  const auto& captions = fx.at("captions");
  std::vector<std::string> raw, pre;
  for (const auto& c : captions) {
    raw.push_back(blip::test::from_hex(c.at("raw_utf8_hex").get<std::string>()));
    pre.push_back(blip::text::pre_caption(raw.back(), fx.at("max_words").get<int>()));
  }
  for (const auto& [name, texts] : {std::pair{"raw", raw}, std::pair{"pre", pre}}) {
    const auto& expected = fx.at("batch_padding_longest_all").at(name);
    const Encoding enc = bert().encode_batch(texts, 35, Padding::Longest, true);
    const auto exp_ids = expected.at("input_ids").get<std::vector<std::vector<int64_t>>>();
    const auto exp_mask = expected.at("attention_mask").get<std::vector<std::vector<int64_t>>>();
    EXPECT_EQ(enc.rows, 60) << name;
    EXPECT_EQ(enc.cols, 35) << name;
    const auto got_ids = rows_of(enc, enc.input_ids);
    const auto got_mask = rows_of(enc, enc.attention_mask);
    ASSERT_EQ(got_ids.size(), exp_ids.size()) << name;
    for (size_t i = 0; i < exp_ids.size(); ++i) {
      EXPECT_EQ(got_ids[i], exp_ids[i]) << name << " row " << i << " (" << captions[i].at("category") << ")";
      EXPECT_EQ(got_mask[i], exp_mask[i]) << name << " row " << i << " (" << captions[i].at("category") << ")";
    }
  }
}

TEST(WordPiece, BatchPaddingLongestShort) {
  BLIP_REQUIRE_FIXTURES();
  const auto& fx = blip::test::text_fixture();
  const auto& captions = fx.at("captions");
  const auto& expected = fx.at("batch_padding_longest_short");
  std::vector<std::string> texts;
  for (int id : expected.at("ids").get<std::vector<int>>())
    texts.push_back(blip::text::pre_caption(
        blip::test::from_hex(captions.at(static_cast<size_t>(id)).at("raw_utf8_hex").get<std::string>()),
        fx.at("max_words").get<int>()));  // the fixture encodes what BLIP feeds the model
  const Encoding enc = bert().encode_batch(texts, 35, Padding::Longest, true);
  const auto exp_ids = expected.at("input_ids").get<std::vector<std::vector<int64_t>>>();
  const auto exp_mask = expected.at("attention_mask").get<std::vector<std::vector<int64_t>>>();
  ASSERT_FALSE(exp_ids.empty());
  EXPECT_LT(exp_ids[0].size(), 35u) << "fixture should exercise padding to fewer than 35";
  EXPECT_EQ(enc.cols, static_cast<int64_t>(exp_ids[0].size()));
  EXPECT_EQ(rows_of(enc, enc.input_ids), exp_ids);
  EXPECT_EQ(rows_of(enc, enc.attention_mask), exp_mask);
}
