// SentencePiece backend: models trained here on a generated corpus, checked for round trips and
// BLIP's special-token / padding / truncation contract.
#ifdef BLIP_WITH_SENTENCEPIECE

#include "blip/text/sentencepiece_tokenizer.h"
#include "text/sentencepiece_plugin.h"

#include <gtest/gtest.h>

#include "common/expect_error.h"

#include <fstream>
#include <random>
#include <thread>

#include "blip/error.h"
#include "common/fixtures.h"

using blip::text::Encoding;
using blip::text::Padding;
using blip::text::SentencePieceTokenizer;
using blip::text::Tokenizer;
using Tokens = std::vector<std::string>;

namespace {

const std::vector<std::string> kWords = {
    "a",     "the",   "dog",    "cat",     "man",   "woman",  "riding", "sitting", "on",     "in",
    "with",  "red",   "blue",   "small",   "large", "table",  "street", "beach",   "wave",   "surfboard",
    "plate", "food",  "bus",    "train",   "park",  "frisbee", "two",   "three",   "people", "standing",
    "near",  "of",    "kitchen", "laptop", "tree",  "giraffe", "bowl",  "fruit",   "field",  "horse"};

// The directory holding the corpus and the trained models (trained once per process).
const std::string& model_dir() {
  static const std::string dir = [] {
    const std::string d = blip::test::temp_dir();
    std::mt19937 rng(1234);
    std::uniform_int_distribution<size_t> word(0, kWords.size() - 1), len(3, 12);
    std::ofstream corpus(d + "/corpus.txt");
    for (int line = 0; line < 2000; ++line) {
      const size_t n = len(rng);
      for (size_t i = 0; i < n; ++i) corpus << (i ? " " : "") << kWords[word(rng)];
      corpus << "\n";
    }
    corpus.close();
    const std::string common = " --input=" + d + "/corpus.txt --vocab_size=120 --model_type=unigram" +
                               " --character_coverage=1.0 --num_threads=1 --hard_vocab_limit=false" +
                               " --minloglevel=2";
    // Model "own": BLIP's specials are the model's own pieces.
    SentencePieceTokenizer::train("--model_prefix=" + d + "/own" + common +
                                  " --pad_id=0 --pad_piece=[PAD] --unk_id=1 --unk_piece=[UNK]"
                                  " --bos_id=2 --bos_piece=[CLS] --eos_id=3 --eos_piece=[SEP]"
                                  " --user_defined_symbols=[MASK]");
    // Model "user": SentencePiece defaults (<unk>=0, <s>=1, </s>=2, no pad) + user [CLS]/[SEP].
    SentencePieceTokenizer::train("--model_prefix=" + d + "/user" + common +
                                  " --user_defined_symbols=[CLS],[SEP]");
    // Model "plain": SentencePiece defaults only.
    SentencePieceTokenizer::train("--model_prefix=" + d + "/plain" + common);
    return d;
  }();
  return dir;
}

// Joins pieces back into text: '▁' (U+2581) marks a preceding space.
std::string detokenize(const Tokens& pieces) {
  std::string s;
  for (const auto& p : pieces) s += p;
  std::string out;
  const std::string mark = "\xE2\x96\x81";
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, mark.size(), mark) == 0) {
      out += ' ';
      i += mark.size();
    } else {
      out += s[i++];
    }
  }
  return out.empty() || out[0] != ' ' ? out : out.substr(1);
}

using blip::test::expect_error;

}  // namespace

TEST(SentencePiece, LoadTokenizerChoosesBackendByExtension) {
  const auto tok = blip::text::load_tokenizer(model_dir() + "/own.model");
  EXPECT_NE(dynamic_cast<const SentencePieceTokenizer*>(tok.get()), nullptr);
}

TEST(SentencePiece, OwnSpecialPiecesKeepTheirIds) {
  const SentencePieceTokenizer t(model_dir() + "/own.model");
  EXPECT_EQ(t.pad_id(), 0);
  EXPECT_EQ(t.unk_id(), 1);
  EXPECT_EQ(t.cls_id(), 2);
  EXPECT_EQ(t.sep_id(), 3);
  EXPECT_EQ(t.mask_id(), 4);
  EXPECT_GT(t.piece_size(), 40);
  EXPECT_EQ(t.bos_id(), t.piece_size());      // [DEC] appended
  EXPECT_EQ(t.enc_id(), t.piece_size() + 1);  // [ENC] appended last, as in BLIP's BERT vocab
  EXPECT_EQ(t.vocab_size(), t.piece_size() + 2);
  EXPECT_EQ(t.id_to_token(t.enc_id()), "[ENC]");
  EXPECT_EQ(t.id_to_token(t.bos_id()), "[DEC]");
  EXPECT_EQ(t.token_to_id("[ENC]"), t.enc_id());
  EXPECT_EQ(t.id_to_token(2), "[CLS]");
  EXPECT_EQ(t.id_to_token(t.vocab_size()), "[UNK]");
}

TEST(SentencePiece, RoundTripsTextAndIds) {
  const SentencePieceTokenizer t(model_dir() + "/own.model");
  for (const std::string text : {"a dog riding a surfboard on the beach", "two people standing near a red bus",
                                 "the giraffe", "horse"}) {
    const Tokens pieces = t.tokenize(text);
    ASSERT_FALSE(pieces.empty()) << text;
    EXPECT_EQ(detokenize(pieces), text);
    const auto ids = t.encode(text);
    ASSERT_EQ(ids.size(), pieces.size()) << text;
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_NE(ids[i], t.unk_id()) << text;
      EXPECT_EQ(t.id_to_token(ids[i]), pieces[i]);
      EXPECT_EQ(t.token_to_id(pieces[i]), ids[i]);
    }
  }
  EXPECT_TRUE(t.encode("").empty());
}

TEST(SentencePiece, SpecialNamesInTextAndUnknownCharacters) {
  const SentencePieceTokenizer t(model_dir() + "/own.model");
  const auto dog = t.encode("dog");
  std::vector<int64_t> expected = {t.cls_id()};
  expected.insert(expected.end(), dog.begin(), dog.end());
  expected.insert(expected.end(), {t.mask_id(), t.bos_id(), t.enc_id(), t.sep_id()});
  EXPECT_EQ(t.encode("[CLS] dog [MASK][DEC]  [ENC] [SEP]"), expected);
  // Characters absent from the corpus map to [UNK].
  const auto ids = t.encode("dog \xE2\x82\xAC");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.back(), t.unk_id());
}

TEST(SentencePiece, EncodeBatchContract) {
  const SentencePieceTokenizer t(model_dir() + "/own.model");
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += (i ? " " : "") + kWords[static_cast<size_t>(i) % kWords.size()];
  const std::vector<std::string> texts = {"a dog", "", long_text};
  ASSERT_GT(t.encode(long_text).size(), 33u);

  Encoding e = t.encode_batch(texts);  // max_length 35, padding to 35, truncation
  ASSERT_EQ(e.rows, 3);
  ASSERT_EQ(e.cols, 35);
  const auto dog = t.encode("a dog");
  EXPECT_EQ(e.id(0, 0), t.cls_id());
  for (size_t i = 0; i < dog.size(); ++i) EXPECT_EQ(e.id(0, static_cast<int64_t>(i + 1)), dog[i]);
  EXPECT_EQ(e.id(0, static_cast<int64_t>(dog.size() + 1)), t.sep_id());
  for (int64_t c = static_cast<int64_t>(dog.size() + 2); c < 35; ++c) {
    EXPECT_EQ(e.id(0, c), t.pad_id());
    EXPECT_EQ(e.mask(0, c), 0);
  }
  EXPECT_EQ(e.id(1, 0), t.cls_id());
  EXPECT_EQ(e.id(1, 1), t.sep_id());
  EXPECT_EQ(e.mask(1, 1), 1);
  EXPECT_EQ(e.mask(1, 2), 0);
  // Truncation keeps the first 33 pieces, then [SEP].
  const auto long_ids = t.encode(long_text);
  for (int64_t c = 1; c < 34; ++c) EXPECT_EQ(e.id(2, c), long_ids[static_cast<size_t>(c - 1)]);
  EXPECT_EQ(e.id(2, 34), t.sep_id());
  for (int64_t c = 0; c < 35; ++c) EXPECT_EQ(e.mask(2, c), 1);

  e = t.encode_batch({"a dog", ""}, 35, Padding::Longest, true);
  EXPECT_EQ(e.cols, static_cast<int64_t>(dog.size() + 2));
  e = t.encode_batch({long_text}, 35, Padding::Longest, false);
  EXPECT_EQ(e.cols, static_cast<int64_t>(long_ids.size() + 2));
}

TEST(SentencePiece, DefaultModelsMapSpecialsAndAppendTheRest) {
  {
    // User-defined [CLS]/[SEP]; <unk> serves [UNK]; no pad piece, so [PAD] is appended.
    const SentencePieceTokenizer t(model_dir() + "/user.model");
    EXPECT_EQ(t.unk_id(), 0);
    EXPECT_EQ(t.id_to_token(t.unk_id()), "<unk>");
    EXPECT_EQ(t.cls_id(), 3);
    EXPECT_EQ(t.sep_id(), 4);
    const int64_t n = t.piece_size();
    EXPECT_EQ(t.pad_id(), n);
    EXPECT_EQ(t.mask_id(), n + 1);
    EXPECT_EQ(t.bos_id(), n + 2);
    EXPECT_EQ(t.enc_id(), n + 3);
    EXPECT_EQ(t.vocab_size(), n + 4);
    EXPECT_EQ(t.encode("[PAD][SEP]"), (std::vector<int64_t>{n, 4}));
    const Encoding e = t.encode_batch({"dog"}, 8);
    EXPECT_EQ(e.id(0, 7), n);  // padded with the appended [PAD]
  }
  {
    // Plain defaults: [CLS]/[SEP] are served by <s>/</s>; "[CLS]" in text is ordinary text.
    const SentencePieceTokenizer t(model_dir() + "/plain.model");
    EXPECT_EQ(t.unk_id(), 0);
    EXPECT_EQ(t.cls_id(), 1);
    EXPECT_EQ(t.sep_id(), 2);
    EXPECT_EQ(t.id_to_token(1), "<s>");
    const auto ids = t.encode("[CLS]");
    EXPECT_TRUE(std::find(ids.begin(), ids.end(), t.cls_id()) == ids.end());
    EXPECT_EQ(t.enc_id(), t.vocab_size() - 1);
  }
}

TEST(SentencePiece, ConcurrentEncodeMatchesSerial) {
  const SentencePieceTokenizer t(model_dir() + "/own.model");
  std::vector<std::string> texts;
  for (size_t i = 0; i < 64; ++i) texts.push_back(kWords[i % kWords.size()] + " " + kWords[(i * 7) % kWords.size()]);
  const Encoding serial = t.encode_batch(texts);
  std::vector<Encoding> results(4);
  std::vector<std::thread> threads;
  for (auto& r : results) threads.emplace_back([&] { r = t.encode_batch(texts); });
  for (auto& th : threads) th.join();
  for (const auto& r : results) EXPECT_EQ(r.input_ids, serial.input_ids);
}

TEST(SentencePiece, BadInput) {
  const SentencePieceTokenizer t(model_dir() + "/own.model");
  expect_error([&] { t.encode("dog \xC0\x80"); }, {"byte offset 4", "overlong"});
  expect_error([&] { t.tokenize("\xED\xB0\x80"); }, {"byte offset 0", "surrogate"});

  const std::string missing = model_dir() + "/missing.model";
  expect_error([&] { blip::text::load_tokenizer(missing); }, {missing});
  const std::string garbage = model_dir() + "/garbage.model";
  std::ofstream(garbage) << "this is not a protobuf model";
  expect_error([&] { blip::text::load_tokenizer(garbage); }, {garbage});
  const std::string empty = model_dir() + "/empty.model";
  std::ofstream(empty).close();
  expect_error([&] { blip::text::load_tokenizer(empty); }, {empty});
  expect_error([&] { SentencePieceTokenizer::train("--input=" + model_dir() + "/nothing.txt --model_prefix=" +
                                                   model_dir() + "/x --vocab_size=50"); },
               {"training failed"});
}

#endif  // BLIP_WITH_SENTENCEPIECE

namespace {

// An installed binary must find the installed plugin before the one in the tree it was built in:
// the build directory is the last place looked at (before the dynamic linker's own search).
TEST(SentencePiece, PluginSearchPutsTheBuildDirectoryLast) {
  const auto candidates = blip::text::sentencepiece_plugin_candidates();
  ASSERT_GE(candidates.size(), 3u);
  const std::string build_plugin = std::string(BLIP_BINARY_DIR) + "/lib/libblip_sentencepiece.so";
  EXPECT_EQ(candidates[candidates.size() - 2], build_plugin);
  EXPECT_EQ(candidates.back(), "libblip_sentencepiece.so");
  // Before it: the install tree relative to the running program.
  EXPECT_NE(candidates[0].find("/lib/blip/libblip_sentencepiece.so"), std::string::npos) << candidates[0];
}

}  // namespace
