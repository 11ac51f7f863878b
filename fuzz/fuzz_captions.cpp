// Fuzzes the caption paths of the tools on raw file bytes: read_captions_file (one caption per
// line) and read_captions_json (a JSON array of strings), then BLIP's pre_caption and the BERT
// WordPiece tokenizer on every caption, as blip_extract runs them. The file is passed as an
// in-memory file. Anything but a result or a blip::Error is a bug.
//
// Vocabulary: $BLIP_FUZZ_VOCAB, else bert-base-uncased-vocab.txt in $BLIP_FIXTURES_DIR or the
// fixtures folder next to the checkout, else a small built-in one.
#include "blip/error.h"
#include "fuzz_common.h"
#include "blip/features/feature_extractor.h"
#include "blip/text/pre_caption.h"
#include "blip/text/wordpiece_tokenizer.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#ifndef BLIP_DEFAULT_FIXTURES_DIR
#define BLIP_DEFAULT_FIXTURES_DIR ""
#endif

namespace {

using blip::fuzz::check;

// blip_extract's max_words and max_length.
const blip::features::ExtractOptions kOptions{};

std::unique_ptr<blip::text::WordPieceTokenizer> make_tokenizer() {
  std::vector<std::string> candidates;
  if (const char* v = std::getenv("BLIP_FUZZ_VOCAB"); v && *v) candidates.emplace_back(v);
  if (const char* d = std::getenv("BLIP_FIXTURES_DIR"); d && *d)
    candidates.push_back(std::string(d) + "/bert-base-uncased-vocab.txt");
  if (*BLIP_DEFAULT_FIXTURES_DIR)
    candidates.push_back(std::string(BLIP_DEFAULT_FIXTURES_DIR) + "/bert-base-uncased-vocab.txt");
  for (const auto& path : candidates) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) continue;
    std::fprintf(stderr, "fuzz_captions: vocabulary %s\n", path.c_str());
    return std::make_unique<blip::text::WordPieceTokenizer>(path);
  }
  std::fprintf(stderr, "fuzz_captions: built-in vocabulary (set BLIP_FUZZ_VOCAB for BERT's)\n");
  return std::make_unique<blip::text::WordPieceTokenizer>(
      std::vector<std::string>{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "the", "dog", "cat", "on",
                               "man", "##s", "##ing", "run", "\xc3\xa9t\xc3\xa9", "\xe4\xb8\xad", "##\xe6\x96\x87",
                               "1", "##2", ",", "'", "-"},
      "fuzz vocabulary");
}

void tokenize_all(const blip::text::WordPieceTokenizer& tok, const std::vector<blip::features::Caption>& captions) {
  std::vector<std::string> texts;
  for (const auto& c : captions) {
    check(!c.source.empty(), "every caption names its source");
    try {
      texts.push_back(blip::text::pre_caption(c.text, kOptions.max_words, c.source));
    } catch (const blip::Error& e) {
      blip::fuzz::expected_error(e);
      continue;  // invalid UTF-8
    }
    // The tokenizer sees the raw text too (blip_extract applies pre_caption first; a library user
    // need not). Every piece maps to an id inside the vocabulary.
    try {
      for (const auto& piece : tok.tokenize(c.text)) {
        const auto id = tok.token_to_id(piece);
        check(id >= 0 && id < tok.vocab_size(), "token ids lie inside the vocabulary");
        check(id == tok.unk_id() || tok.id_to_token(id) == piece, "id_to_token inverts token_to_id");
      }
    } catch (const blip::Error& e) {
      blip::fuzz::expected_error(e);
    }
  }
  if (texts.empty()) return;
  const auto enc = tok.encode_batch(texts, kOptions.max_length);
  check(enc.rows == static_cast<std::int64_t>(texts.size()) && enc.cols == kOptions.max_length,
        "encode_batch pads to max_length");
  for (std::int64_t r = 0; r < enc.rows; ++r) {
    check(enc.id(r, 0) == tok.cls_id() && enc.mask(r, 0) == 1, "rows start with [CLS]");
    std::int64_t len = 0;
    while (len < enc.cols && enc.mask(r, len) == 1) ++len;
    check(len >= 2 && enc.id(r, len - 1) == tok.sep_id(), "the last unmasked token is [SEP]");
    for (std::int64_t c = len; c < enc.cols; ++c)
      check(enc.mask(r, c) == 0 && enc.id(r, c) == tok.pad_id(), "padding is [PAD] with mask 0");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto tokenizer = make_tokenizer();
  static const int fd = memfd_create("fuzz_captions", 0);
  if (fd < 0) std::abort();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);

  try {
    const auto lines = blip::features::read_captions_file(path);
    for (const auto& c : lines) check(c.text.find('\n') == std::string::npos, "a line holds no newline");
    tokenize_all(*tokenizer, lines);
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
  }
  try {
    tokenize_all(*tokenizer, blip::features::read_captions_json(path));
  } catch (const blip::Error& e) {
    blip::fuzz::expected_error(e);
  }
  return 0;
}
