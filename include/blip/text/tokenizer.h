// The text tokenizer interface with BLIP's special-token contract (models/blip.py init_tokenizer):
// a BERT vocabulary plus [DEC] as bos token and [ENC] as an additional special token.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blip/blip_defaults.h"

namespace blip::text {

// Special-token names as BLIP/BERT spell them.
inline constexpr const char* kPadToken = "[PAD]";
inline constexpr const char* kUnkToken = "[UNK]";
inline constexpr const char* kClsToken = "[CLS]";
inline constexpr const char* kSepToken = "[SEP]";
inline constexpr const char* kMaskToken = "[MASK]";
inline constexpr const char* kDecToken = "[DEC]";  // bos_token, added by init_tokenizer
inline constexpr const char* kEncToken = "[ENC]";  // additional special token, replaces [CLS] for ITM

// BLIP's retrieval text length: tokenizer(..., max_length=35).
inline constexpr int kBlipMaxLength = kTextMaxLength;

enum class Padding {
  MaxLength,  // padding='max_length': every row has max_length columns
  Longest,    // padding='longest': rows padded to the longest (after truncation)
};

// A batch of encoded texts: row-major [rows, cols] int64 matrices.
struct Encoding {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<int64_t> input_ids;       // [CLS] pieces... [SEP] [PAD]...
  std::vector<int64_t> attention_mask;  // 1 for [CLS]..[SEP], 0 for padding

  int64_t id(int64_t row, int64_t col) const { return input_ids[static_cast<size_t>(row * cols + col)]; }
  int64_t mask(int64_t row, int64_t col) const {
    return attention_mask[static_cast<size_t>(row * cols + col)];
  }
};

// The ids of the special tokens. For the BERT vocabulary: [PAD]=0, [UNK]=100, [CLS]=101,
// [SEP]=102, [MASK]=103, [DEC]=30522, [ENC]=30523.
struct SpecialTokenIds {
  int64_t pad = -1;
  int64_t unk = -1;
  int64_t cls = -1;
  int64_t sep = -1;
  int64_t mask = -1;
  int64_t bos = -1;  // [DEC]
  int64_t enc = -1;  // [ENC]
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Word pieces of a UTF-8 text, without [CLS]/[SEP]. Special-token names in the text ("[SEP]")
  // stay single tokens. Invalid UTF-8 throws blip::Error with the byte offset.
  virtual std::vector<std::string> tokenize(const std::string& text) const = 0;
  // The id of a token; unk_id() for one outside the vocabulary.
  virtual int64_t token_to_id(const std::string& token) const = 0;
  // The token of an id; the [UNK] token for an id outside [0, vocab_size()).
  virtual std::string id_to_token(int64_t id) const = 0;
  // len(tokenizer): the vocabulary plus the added special tokens (30524 for BLIP's BERT).
  virtual int64_t vocab_size() const = 0;
  virtual const SpecialTokenIds& special_ids() const = 0;

  // Ids of tokenize(text), without specials and untruncated.
  virtual std::vector<int64_t> encode(const std::string& text) const;

  // One row as tokenizer(text, truncation=...) builds it: [CLS] ids [SEP], unpadded. With
  // truncation, only the first max_length-2 ids are kept.
  std::vector<int64_t> encode_with_specials(const std::string& text, int max_length = kBlipMaxLength,
                                            bool truncation = true) const;

  // tokenizer(texts, padding=..., truncation=..., max_length=...) as BLIP calls it, padding
  // with [PAD] on the right. Without truncation, a row longer than max_length widens the matrix
  // (cols = the longest row) rather than being cut. max_length < 2 with truncation or
  // Padding::MaxLength throws blip::Error.
  Encoding encode_batch(const std::vector<std::string>& texts, int max_length = kBlipMaxLength,
                        Padding padding = Padding::MaxLength, bool truncation = true) const;

  int64_t pad_id() const { return special_ids().pad; }
  int64_t unk_id() const { return special_ids().unk; }
  int64_t cls_id() const { return special_ids().cls; }
  int64_t sep_id() const { return special_ids().sep; }
  int64_t mask_id() const { return special_ids().mask; }
  int64_t bos_id() const { return special_ids().bos; }
  int64_t enc_id() const { return special_ids().enc; }
};

// Loads a tokenizer, choosing the backend by file: a ".model" file is a SentencePiece model
// (blip::text::SentencePieceTokenizer); anything else is a WordPiece vocab.txt
// (blip::text::WordPieceTokenizer, identical to BLIP's BertTokenizer). A directory means its
// vocab.txt. Missing, unreadable or empty files throw blip::Error naming the file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace blip::text
