#include "blip/text/wordpiece_tokenizer.h"

#include <algorithm>

#include "blip/error.h"
#include "core/utf8.h"
#include "text/bert_basic_tokenizer.h"
#include "text/caption_utf8.h"
#include "text/special_token_split.h"
#include "text/vocab_limits.h"

namespace blip::text {
namespace {

std::string read_vocab_file(const std::string& path) {
  std::string bytes = files::read_regular_file(path, kMaxVocabularyBytes, "vocabulary file");
  if (bytes.empty()) fail(path, "vocabulary file is empty");
  return bytes;
}

// Python's readlines() in text mode with universal newlines, then rstrip("\n").
std::vector<std::string> split_vocab_lines(const std::string& bytes, const std::string& path) {
  utf8::decode(bytes, path);  // load_vocab opens the file as UTF-8 and fails otherwise
  std::vector<std::string> lines;
  std::string current;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n') ++i;
      lines.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  if (!current.empty()) lines.push_back(std::move(current));
  return lines;
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(const std::string& vocab_path) : source_(vocab_path) {
  init(split_vocab_lines(read_vocab_file(vocab_path), vocab_path));
}

WordPieceTokenizer::WordPieceTokenizer(const std::vector<std::string>& vocab, const std::string& source)
    : source_(source) {
  for (const auto& token : vocab) utf8::decode(token, source);
  init(vocab);
}

void WordPieceTokenizer::init(const std::vector<std::string>& vocab) {
  if (vocab.empty()) fail(source_, "vocabulary is empty");
  for (size_t i = 0; i < vocab.size(); ++i) vocab_[vocab[i]] = static_cast<int64_t>(i);
  for (const auto& [token, id] : vocab_) {
    ids_to_tokens_[id] = token;
    const size_t chars = utf8::decode(token, source_).size();
    longest_piece_ = std::max(longest_piece_, token.rfind("##", 0) == 0 ? chars - 2 : chars);
  }
  const auto unk = vocab_.find(kUnkToken);
  if (unk == vocab_.end()) fail(source_, std::string("vocabulary has no ") + kUnkToken + " token");

  // from_pretrained's sanitize_special_tokens() adds the special tokens missing from the
  // vocabulary (in SPECIAL_TOKENS_ATTRIBUTES order), then BLIP adds [DEC] and [ENC]; added
  // tokens get ids len(vocab), len(vocab)+1, ...
  auto id_of = [&](const char* name) -> int64_t {
    if (auto it = vocab_.find(name); it != vocab_.end()) return it->second;
    if (auto it = added_.find(name); it != added_.end()) return it->second;
    const int64_t id = static_cast<int64_t>(vocab_.size() + added_.size());
    added_[name] = id;
    ids_to_tokens_[id] = name;
    return id;
  };
  special_.unk = unk->second;
  special_.sep = id_of(kSepToken);
  special_.pad = id_of(kPadToken);
  special_.cls = id_of(kClsToken);
  special_.mask = id_of(kMaskToken);
  special_.bos = id_of(kDecToken);
  special_.enc = id_of(kEncToken);
  vocab_size_ = static_cast<int64_t>(vocab_.size() + added_.size());

  for (const char* name : {kDecToken, kUnkToken, kSepToken, kPadToken, kClsToken, kMaskToken, kEncToken}) {
    const std::string s(name);
    special_names_.emplace_back(s.begin(), s.end());
  }
}

std::vector<std::string> WordPieceTokenizer::tokenize(const std::string& text) const {
  const std::u32string code_points = detail::decode_caption(text);
  const std::u32string lowered = detail::lower_outside_special_tokens(code_points, special_names_);
  std::vector<std::string> out;
  for (const auto& piece : detail::split_on_special_tokens(lowered, special_names_)) {
    if (piece.is_special) {
      out.push_back(utf8::encode(piece.text));
      continue;
    }
    for (const auto& word : detail::bert_basic_tokenize(piece.text, special_names_)) wordpiece(word, out);
  }
  return out;
}

// WordpieceTokenizer.tokenize for one word: greedy longest-match-first, "##" on continuations.
void WordPieceTokenizer::wordpiece(const std::u32string& word, std::vector<std::string>& out) const {
  if (word.size() > kMaxCharsPerWord) {
    out.emplace_back(kUnkToken);
    return;
  }
  // Byte offset of every code point, so that candidates are substrings of one UTF-8 string.
  std::string bytes;
  std::vector<size_t> offset;
  for (char32_t c : word) {
    offset.push_back(bytes.size());
    utf8::append(bytes, c);
  }
  offset.push_back(bytes.size());

  std::vector<std::string> pieces;
  size_t start = 0;
  while (start < word.size()) {
    // Candidates longer than every vocabulary entry cannot match; start below that length.
    size_t end = std::min(word.size(), start + longest_piece_);
    std::string found;
    for (; end > start; --end) {
      std::string candidate = bytes.substr(offset[start], offset[end] - offset[start]);
      if (start > 0) candidate.insert(0, "##");
      if (vocab_.count(candidate)) {
        found = std::move(candidate);
        break;
      }
    }
    if (end == start) {  // no piece matches: the whole word is unknown
      out.emplace_back(kUnkToken);
      return;
    }
    pieces.push_back(std::move(found));
    start = end;
  }
  for (auto& p : pieces) out.push_back(std::move(p));
}

int64_t WordPieceTokenizer::token_to_id(const std::string& token) const {
  if (auto it = added_.find(token); it != added_.end()) return it->second;
  if (auto it = vocab_.find(token); it != vocab_.end()) return it->second;
  return special_.unk;
}

std::string WordPieceTokenizer::id_to_token(int64_t id) const {
  if (auto it = ids_to_tokens_.find(id); it != ids_to_tokens_.end()) return it->second;
  return kUnkToken;
}

}  // namespace blip::text
