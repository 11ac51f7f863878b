// A SentencePiece (.model) tokenizer with BLIP's special-token contract, for BLIP variants that
// swap the BERT vocabulary for a SentencePiece one. libsentencepiece is loaded as a plugin at run
// time (see src/sentencepiece_plugin/plugin_abi.h), so nothing of it appears here.
//
// Special-token ids, in order of preference:
//   [UNK]   the piece "[UNK]" if the model has it, else the model's unk id (e.g. "<unk>");
//   [PAD]   the piece "[PAD]", else "<pad>", else appended;
//   [CLS]   the piece "[CLS]", else "<s>", else appended;
//   [SEP]   the piece "[SEP]", else "</s>", else appended;
//   [MASK]  the piece "[MASK]", else appended;
//   [DEC]   the piece "[DEC]", else appended;   [ENC]  the piece "[ENC]", else appended.
// Appended tokens take ids piece_size(), piece_size()+1, ... in the order above, so a model
// without them ends in [DEC], [ENC] as BLIP's BERT vocabulary does; vocab_size() counts them.
// A special-token name that is its own piece or appended is matched in raw text
// (case-sensitively, whitespace around it stripped, as transformers does); other text goes to
// the model unchanged (no lower-casing: pre_caption() does that). Pieces the model encodes as its
// unk id map to unk_id(). All methods may be called from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "blip/text/tokenizer.h"

namespace blip::text {

class SentencePieceModel;

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Loads a .model file; blip::Error naming it when missing, unreadable or not a model.
  explicit SentencePieceTokenizer(const std::string& model_path);
  ~SentencePieceTokenizer() override;

  std::vector<std::string> tokenize(const std::string& text) const override;
  std::vector<int64_t> encode(const std::string& text) const override;
  int64_t token_to_id(const std::string& token) const override;
  std::string id_to_token(int64_t id) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  const SpecialTokenIds& special_ids() const override { return special_; }

  // Pieces in the model file, without appended special tokens.
  int64_t piece_size() const { return piece_size_; }

  // Trains a model with sentencepiece_trainer's command line ("--input=... --model_prefix=...");
  // blip::Error when training fails.
  static void train(const std::string& args);

 private:
  int64_t model_id(const std::string& piece) const;  // -1 when the model lacks the piece

  std::string path_;
  std::unique_ptr<SentencePieceModel> model_;
  mutable std::mutex encode_mutex_;  // the plugin model keeps one output buffer
  int64_t piece_size_ = 0;
  int64_t model_unk_ = 0;
  std::unordered_map<std::string, int64_t> added_;
  std::unordered_map<int64_t, std::string> added_names_;
  std::vector<std::u32string> text_specials_;  // names matched in raw text
  std::unordered_map<std::string, int64_t> text_special_ids_;
  SpecialTokenIds special_;
  int64_t vocab_size_ = 0;
};

}  // namespace blip::text
