// WordPiece semantics beyond the fixture captions, the batch contract, and bad input.
#include <gtest/gtest.h>

#include "common/expect_error.h"
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "blip/error.h"
#include "blip/text/tokenizer.h"
#include "blip/text/wordpiece_tokenizer.h"
#include "common/fixtures.h"

using blip::text::Encoding;
using blip::text::Padding;
using blip::text::WordPieceTokenizer;
using Tokens = std::vector<std::string>;

namespace {

// A small BERT-like vocabulary: the five BERT specials first, then pieces.
const std::vector<std::string>& toy_vocab() {
  static const std::vector<std::string> v = {
      "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "##b", "ab", "hello", "world", ",", ".", "'",
      "s", "cafe", "\xE4\xB8\xAD" /* 中 */, "x", "##x", "ο", "##δ", "##ος", "##ο", "##σ", "[", "]", "cl", "##s"};
  return v;
}

const WordPieceTokenizer& toy() {
  static const WordPieceTokenizer tok(toy_vocab(), "toy vocab");
  return tok;
}

std::string write_file(const std::string& name, const std::string& bytes) {
  static const std::string dir = blip::test::temp_dir();
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

using blip::test::expect_error;

}  // namespace

TEST(WordPieceToy, SpecialIdsAndAddedTokens) {
  const auto& t = toy();
  EXPECT_EQ(t.pad_id(), 0);
  EXPECT_EQ(t.unk_id(), 1);
  EXPECT_EQ(t.cls_id(), 2);
  EXPECT_EQ(t.sep_id(), 3);
  EXPECT_EQ(t.mask_id(), 4);
  const int64_t n = static_cast<int64_t>(toy_vocab().size());
  EXPECT_EQ(t.bos_id(), n);      // [DEC] appended first
  EXPECT_EQ(t.enc_id(), n + 1);  // then [ENC]
  EXPECT_EQ(t.vocab_size(), n + 2);
}

TEST(WordPieceToy, MissingSpecialsAreAddedInTransformersOrder) {
  // sanitize_special_tokens adds sep, pad, cls, mask (SPECIAL_TOKENS_ATTRIBUTES order), then BLIP
  // adds [DEC] and [ENC]. A vocabulary that already has [DEC] keeps its id.
  const WordPieceTokenizer t({"a", "[UNK]", "[DEC]"}, "mini");
  EXPECT_EQ(t.unk_id(), 1);
  EXPECT_EQ(t.sep_id(), 3);
  EXPECT_EQ(t.pad_id(), 4);
  EXPECT_EQ(t.cls_id(), 5);
  EXPECT_EQ(t.mask_id(), 6);
  EXPECT_EQ(t.bos_id(), 2);
  EXPECT_EQ(t.enc_id(), 7);
  EXPECT_EQ(t.vocab_size(), 8);
  EXPECT_EQ(t.id_to_token(5), "[CLS]");
  EXPECT_EQ(t.tokenize("a [CLS]a"), (Tokens{"a", "[CLS]", "a"}));
  EXPECT_EQ(t.encode("a [CLS]a"), (std::vector<int64_t>{0, 5, 0}));
}

TEST(WordPieceToy, SpecialTokensSplitCaseSensitiveWithWhitespaceStripped) {
  const auto& t = toy();
  EXPECT_EQ(t.tokenize("hello [SEP]  world"), (Tokens{"hello", "[SEP]", "world"}));
  EXPECT_EQ(t.tokenize("hello[SEP]world"), (Tokens{"hello", "[SEP]", "world"}));
  EXPECT_EQ(t.tokenize("[SEP][SEP]"), (Tokens{"[SEP]", "[SEP]"}));
  EXPECT_EQ(t.tokenize(" \t[DEC]\n"), (Tokens{"[DEC]"}));
  EXPECT_EQ(t.encode("[DEC] [ENC]"), (std::vector<int64_t>{t.bos_id(), t.enc_id()}));
  // Lower-case spellings are ordinary text: '[', 'cl', '##s', ']'.
  EXPECT_EQ(t.tokenize("[cls]"), (Tokens{"[", "cl", "##s", "]"}));
  EXPECT_EQ(t.tokenize("[Cls]"), (Tokens{"[", "cl", "##s", "]"}));
}

TEST(WordPieceToy, BasicTokenizerSemantics) {
  const auto& t = toy();
  EXPECT_EQ(t.tokenize("Hello, World."), (Tokens{"hello", ",", "world", "."}));
  EXPECT_EQ(t.tokenize("ab abb"), (Tokens{"ab", "ab", "##b"}));  // longest match first
  EXPECT_EQ(t.tokenize("Caf\xC3\xA9"), (Tokens{"cafe"}));        // accent stripped after NFD
  EXPECT_EQ(t.tokenize("cafe\xCC\x81"), (Tokens{"cafe"}));       // combining accent dropped
  EXPECT_EQ(t.tokenize("a\xE4\xB8\xAD" "b"), (Tokens{"a", "\xE4\xB8\xAD", "b"}));  // CJK split out
  EXPECT_EQ(t.tokenize("hello\xE2\x80\xA8world"), (Tokens{"hello", "world"}));     // U+2028 splits (str.split)
  EXPECT_EQ(t.tokenize("hel\xE2\x80\x8Blo"), (Tokens{"hello"}));  // ZWSP (Cf) deleted
  EXPECT_EQ(t.tokenize(std::string("hel\0lo", 6)), (Tokens{"hello"}));
  EXPECT_EQ(t.tokenize("a\xC2\xA0" "b"), (Tokens{"a", "b"}));      // NBSP (Zs) is whitespace
  EXPECT_EQ(t.tokenize("q"), (Tokens{"[UNK]"}));
  EXPECT_EQ(t.tokenize("abq"), (Tokens{"[UNK]"}));                // any unknown char -> whole word
  EXPECT_EQ(t.tokenize(""), Tokens{});
  EXPECT_EQ(t.tokenize(" \t\n"), Tokens{});
  EXPECT_EQ(t.tokenize("\xCC\x81"), Tokens{});                     // a lone mark vanishes
  // Per-code-point lower-casing: raw ΟΔΟΣ keeps σ, pre_caption's οδος has ς.
  EXPECT_EQ(t.tokenize("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3"), (Tokens{"ο", "##δ", "##ο", "##σ"}));
  EXPECT_EQ(t.tokenize("\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82"), (Tokens{"ο", "##δ", "##ος"}));
}

TEST(WordPieceToy, WordsOverOneHundredCodePointsAreUnknown) {
  const auto& t = toy();
  EXPECT_EQ(t.tokenize(std::string(100, 'x')).size(), 100u);
  EXPECT_EQ(t.tokenize(std::string(101, 'x')), (Tokens{"[UNK]"}));
  // The limit counts code points, not bytes: 60 omicrons (120 bytes) still get word pieces.
  std::string omicrons;
  for (int i = 0; i < 60; ++i) omicrons += "\xCE\xBF";
  const Tokens pieces = t.tokenize(omicrons);
  ASSERT_EQ(pieces.size(), 60u);
  EXPECT_EQ(pieces.front(), "\xCE\xBF");
  EXPECT_EQ(pieces.back(), "##\xCE\xBF");
  for (int i = 60; i < 101; ++i) omicrons += "\xCE\xBF";
  EXPECT_EQ(t.tokenize(omicrons), (Tokens{"[UNK]"}));
}

TEST(WordPieceToy, EncodeBatchTruncationAndPadding) {
  const auto& t = toy();
  const std::vector<std::string> texts = {"a", "a b a", "a b a b"};
  // max_length 5 leaves 3 pieces: "a b a b" loses its last piece.
  Encoding e = t.encode_batch(texts, 5, Padding::MaxLength, true);
  EXPECT_EQ(e.rows, 3);
  EXPECT_EQ(e.cols, 5);
  EXPECT_EQ(e.input_ids, (std::vector<int64_t>{2, 5, 3, 0, 0, 2, 5, 6, 5, 3, 2, 5, 6, 5, 3}));
  EXPECT_EQ(e.attention_mask, (std::vector<int64_t>{1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(e.id(1, 4), 3);
  EXPECT_EQ(e.mask(0, 3), 0);

  e = t.encode_batch({"a", "a b"}, 35, Padding::Longest, true);
  EXPECT_EQ(e.cols, 4);
  EXPECT_EQ(e.input_ids, (std::vector<int64_t>{2, 5, 3, 0, 2, 5, 6, 3}));
  EXPECT_EQ(e.attention_mask, (std::vector<int64_t>{1, 1, 1, 0, 1, 1, 1, 1}));

  // Without truncation a longer row widens the matrix instead of being cut.
  e = t.encode_batch({"a b a b a"}, 5, Padding::MaxLength, false);
  EXPECT_EQ(e.cols, 7);
  EXPECT_EQ(e.input_ids, (std::vector<int64_t>{2, 5, 6, 5, 6, 5, 3}));

  EXPECT_EQ(t.encode_with_specials("a b a b", 4), (std::vector<int64_t>{2, 5, 6, 3}));
  EXPECT_EQ(t.encode_with_specials("", 4), (std::vector<int64_t>{2, 3}));

  e = t.encode_batch({}, 35, Padding::MaxLength, true);
  EXPECT_EQ(e.rows, 0);
  EXPECT_TRUE(e.input_ids.empty());

  expect_error([&] { t.encode_batch({"a"}, 1, Padding::MaxLength, true); }, {"max_length", "at least 2"});
  expect_error([&] { t.encode_with_specials("a", 0, true); }, {"max_length"});
}

TEST(WordPieceToy, InvalidUtf8TextIsRejected) {
  const auto& t = toy();
  expect_error([&] { t.tokenize("ab\xC0\xAF"); }, {"caption \"ab\\xC0\\xAF\"", "byte offset 2", "overlong"});
  expect_error([&] { t.encode("a\xED\xA0\x80"); }, {"byte offset 1", "surrogate"});
  expect_error([&] { t.encode_batch({"ok", "x\x80"}); }, {"byte offset 1", "continuation"});
  expect_error([&] { t.tokenize("abc\xE2\x82"); }, {"byte offset 3", "truncated"});
}

TEST(VocabFile, UniversalNewlinesDuplicatesAndDirectories) {
  const std::string path = write_file("crlf_vocab.txt", "[UNK]\r\na\rb\n\nb\n[PAD]");
  const WordPieceTokenizer t(path);
  // Lines: [UNK]=0 a=1 b=2 ""=3 b=4 (the later duplicate wins) [PAD]=5.
  EXPECT_EQ(t.token_to_id("a"), 1);
  EXPECT_EQ(t.token_to_id("b"), 4);
  EXPECT_EQ(t.pad_id(), 5);
  EXPECT_EQ(t.base_vocab_size(), 5);  // len(vocab) counts unique tokens
  // Added tokens start at len(vocab), so with duplicates the first one ([SEP]) reuses id 5,
  // exactly as transformers does.
  EXPECT_EQ(t.sep_id(), 5);
  EXPECT_EQ(t.source(), path);

  // A directory stands for its vocab.txt, as from_pretrained(<dir>) does.
  const std::string dir = blip::test::temp_dir();
  std::ofstream(dir + "/vocab.txt") << "[PAD]\n[UNK]\nz\n";
  const auto loaded = blip::text::load_tokenizer(dir);
  EXPECT_EQ(loaded->token_to_id("z"), 2);
  EXPECT_EQ(loaded->unk_id(), 1);
}

TEST(VocabFile, BadVocabulariesNameTheFile) {
  const std::string missing = blip::test::temp_dir() + "/no_such_vocab.txt";
  expect_error([&] { blip::text::load_tokenizer(missing); }, {missing, "not found"});
  expect_error([&] { WordPieceTokenizer t(missing); }, {missing, "not found"});

  const std::string empty = write_file("empty_vocab.txt", "");
  expect_error([&] { blip::text::load_tokenizer(empty); }, {empty, "empty"});

  const std::string no_unk = write_file("no_unk_vocab.txt", "[PAD]\na\n");
  expect_error([&] { blip::text::load_tokenizer(no_unk); }, {no_unk, "[UNK]"});

  const std::string bad_utf8 = write_file("latin1_vocab.txt", "[UNK]\ncaf\xE9\n");
  expect_error([&] { blip::text::load_tokenizer(bad_utf8); }, {bad_utf8, "invalid UTF-8 at byte offset 9"});

  const std::string empty_dir = blip::test::temp_dir();
  expect_error([&] { blip::text::load_tokenizer(empty_dir); }, {empty_dir + "/vocab.txt", "not found"});
  expect_error([&] { WordPieceTokenizer t(empty_dir); }, {empty_dir, "directory"});

  expect_error([&] { WordPieceTokenizer t(std::vector<std::string>{}, "in-memory"); }, {"in-memory", "empty"});

  if (geteuid() != 0) {  // root reads any file
    const std::string locked = write_file("locked_vocab.txt", "[UNK]\n");
    std::filesystem::permissions(locked, std::filesystem::perms::none);
    expect_error([&] { blip::text::load_tokenizer(locked); }, {locked, "cannot open"});
  }
}

// Issue 9, items 4 and 6: a device, FIFO or oversized file as the vocabulary is refused at once
// (/dev/zero used to be read until memory ran out), naming the file and what it is.
TEST(VocabFile, SpecialAndOversizedFilesAreRefused) {
  const auto start = std::chrono::steady_clock::now();
  if (std::filesystem::exists("/dev/zero")) {
    expect_error([] { blip::text::load_tokenizer("/dev/zero"); },
                 {"/dev/zero: is not a regular file (a character device); expected a vocabulary file"});
    expect_error([] { WordPieceTokenizer t("/dev/zero"); }, {"/dev/zero", "is not a regular file"});
  }
  const std::string dir = blip::test::temp_dir();
  const std::string fifo = dir + "/vocab_fifo.txt";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_error([&] { blip::text::load_tokenizer(fifo); }, {fifo + ": is not a regular file (a FIFO)"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  // Just over the cap (a sparse file: no disk is used).
  const std::string big = dir + "/big_vocab.txt";
  std::ofstream(big) << "[UNK]\n";
  std::filesystem::resize_file(big, (std::uintmax_t{64} << 20) + 1);
  expect_error([&] { blip::text::load_tokenizer(big); },
               {big + ": is larger than 64 MiB, the limit for a vocabulary file"});
#ifdef BLIP_WITH_SENTENCEPIECE
  expect_error([&] { blip::text::load_tokenizer(dir + "/none.model"); },
               {dir + "/none.model: SentencePiece model file not found"});
  expect_error([&] { blip::text::load_tokenizer(fifo + ".model"); }, {fifo + ".model", "not found"});
  ASSERT_EQ(::mkfifo((dir + "/sp_fifo.model").c_str(), 0600), 0);
  expect_error([&] { blip::text::load_tokenizer(dir + "/sp_fifo.model"); },
               {dir + "/sp_fifo.model: is not a regular file (a FIFO); expected a SentencePiece model file"});
#endif
}
