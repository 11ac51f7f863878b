#ifdef BLIP_WITH_SENTENCEPIECE

#include "blip/text/sentencepiece_tokenizer.h"

#include "blip/error.h"
#include "core/utf8.h"
#include "text/caption_utf8.h"
#include "text/sentencepiece_plugin.h"
#include "text/special_token_split.h"

namespace blip::text {

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path)
    : path_(model_path), model_(std::make_unique<SentencePieceModel>(model_path)) {
  piece_size_ = model_->piece_size();
  if (piece_size_ <= 0) fail(path_, "SentencePiece model has no pieces");
  model_unk_ = model_->unk_id();

  auto append = [&](const char* name) {
    const int64_t id = piece_size_ + static_cast<int64_t>(added_.size());
    added_[name] = id;
    added_names_[id] = name;
    return id;
  };
  // The model's own piece of that name, else a conventional SentencePiece piece, else appended.
  auto resolve = [&](const char* name, const char* fallback_piece) {
    if (const int64_t id = model_id(name); id >= 0) return id;
    if (fallback_piece != nullptr)
      if (const int64_t id = model_id(fallback_piece); id >= 0) return id;
    return append(name);
  };
  const int64_t own_unk = model_id(kUnkToken);
  special_.unk = own_unk >= 0 ? own_unk : model_unk_;
  special_.pad = resolve(kPadToken, "<pad>");
  special_.cls = resolve(kClsToken, "<s>");
  special_.sep = resolve(kSepToken, "</s>");
  special_.mask = resolve(kMaskToken, nullptr);
  special_.bos = resolve(kDecToken, nullptr);
  special_.enc = resolve(kEncToken, nullptr);
  vocab_size_ = piece_size_ + static_cast<int64_t>(added_.size());

  const std::pair<const char*, int64_t> named[] = {
      {kUnkToken, special_.unk}, {kPadToken, special_.pad}, {kClsToken, special_.cls}, {kSepToken, special_.sep},
      {kMaskToken, special_.mask}, {kDecToken, special_.bos}, {kEncToken, special_.enc}};
  for (const auto& [name, id] : named) {
    if (id_to_token(id) != name) continue;  // e.g. [CLS] served by "<s>": plain text in captions
    const std::string s(name);
    text_specials_.emplace_back(s.begin(), s.end());
    text_special_ids_[s] = id;
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

int64_t SentencePieceTokenizer::model_id(const std::string& piece) const {
  const int id = model_->piece_to_id(piece);
  return model_->id_to_piece(id) == piece ? id : -1;
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  const std::u32string code_points = detail::decode_caption(text);
  std::vector<int64_t> ids;
  for (const auto& piece : detail::split_on_special_tokens(code_points, text_specials_)) {
    const std::string piece_utf8 = utf8::encode(piece.text);
    if (piece.is_special) {
      ids.push_back(text_special_ids_.at(piece_utf8));
      continue;
    }
    std::vector<int> piece_ids;
    {
      std::lock_guard<std::mutex> lock(encode_mutex_);
      piece_ids = model_->encode(piece_utf8);
    }
    for (int id : piece_ids) ids.push_back(id == model_unk_ ? special_.unk : id);
  }
  return ids;
}

std::vector<std::string> SentencePieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> tokens;
  for (int64_t id : encode(text)) tokens.push_back(id_to_token(id));
  return tokens;
}

int64_t SentencePieceTokenizer::token_to_id(const std::string& token) const {
  if (auto it = added_.find(token); it != added_.end()) return it->second;
  const int64_t id = model_->piece_to_id(token);
  return id == model_unk_ ? special_.unk : id;
}

std::string SentencePieceTokenizer::id_to_token(int64_t id) const {
  if (id >= 0 && id < piece_size_) return model_->id_to_piece(static_cast<int>(id));
  if (auto it = added_names_.find(id); it != added_names_.end()) return it->second;
  return model_->id_to_piece(static_cast<int>(special_.unk));
}

void SentencePieceTokenizer::train(const std::string& args) { SentencePieceModel::train(args); }

}  // namespace blip::text

#endif  // BLIP_WITH_SENTENCEPIECE
