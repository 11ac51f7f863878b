// BERT WordPiece tokenizer, identical to what BLIP builds in init_tokenizer():
//   BertTokenizer.from_pretrained('bert-base-uncased')              (transformers 4.15)
//   + add_special_tokens({'bos_token': '[DEC]'})
//   + add_special_tokens({'additional_special_tokens': ['[ENC]']})
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "blip/text/tokenizer.h"

namespace blip::text {

class WordPieceTokenizer final : public Tokenizer {
 public:
  // Reads vocab.txt as transformers' load_vocab does: UTF-8, one token per line (\n, \r\n or \r),
  // id = line number, a later duplicate wins. blip::Error naming the file when it is missing,
  // unreadable, empty, not UTF-8, or lacks [UNK].
  explicit WordPieceTokenizer(const std::string& vocab_path);
  // From tokens in id order; `source` names them in error messages.
  WordPieceTokenizer(const std::vector<std::string>& vocab, const std::string& source);

  std::vector<std::string> tokenize(const std::string& text) const override;
  int64_t token_to_id(const std::string& token) const override;
  std::string id_to_token(int64_t id) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  const SpecialTokenIds& special_ids() const override { return special_; }

  // The vocabulary file's tokens (len(tokenizer.vocab)), without the added special tokens.
  int64_t base_vocab_size() const { return static_cast<int64_t>(vocab_.size()); }
  const std::string& source() const { return source_; }

  // Words longer than this many code points become [UNK] (max_input_chars_per_word).
  static constexpr size_t kMaxCharsPerWord = 100;

 private:
  void init(const std::vector<std::string>& vocab);
  void wordpiece(const std::u32string& word, std::vector<std::string>& out) const;

  std::string source_;
  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<std::string, int64_t> added_;  // special tokens absent from the vocabulary
  std::unordered_map<int64_t, std::string> ids_to_tokens_;
  std::vector<std::u32string> special_names_;       // all_special_tokens, matched in raw text
  SpecialTokenIds special_;
  int64_t vocab_size_ = 0;
  size_t longest_piece_ = 0;  // code points of the longest vocabulary entry (without "##")
};

}  // namespace blip::text
