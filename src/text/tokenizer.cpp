#include "blip/text/tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "blip/error.h"
#include "blip/text/wordpiece_tokenizer.h"
#ifdef BLIP_WITH_SENTENCEPIECE
#include "blip/text/sentencepiece_tokenizer.h"
#endif

namespace blip::text {

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& token : tokenize(text)) ids.push_back(token_to_id(token));
  return ids;
}

std::vector<int64_t> Tokenizer::encode_with_specials(const std::string& text, int max_length,
                                                     bool truncation) const {
  if (truncation && max_length < 2)
    fail("max_length", "must be at least 2 to hold [CLS] and [SEP], got " + std::to_string(max_length));
  std::vector<int64_t> ids = encode(text);
  // truncation=True ('longest_first' on one sequence) drops pieces from the end.
  if (truncation && ids.size() > static_cast<size_t>(max_length - 2)) ids.resize(static_cast<size_t>(max_length - 2));
  std::vector<int64_t> row;
  row.reserve(ids.size() + 2);
  row.push_back(cls_id());
  row.insert(row.end(), ids.begin(), ids.end());
  row.push_back(sep_id());
  return row;
}

Encoding Tokenizer::encode_batch(const std::vector<std::string>& texts, int max_length, Padding padding,
                                 bool truncation) const {
  if (padding == Padding::MaxLength && max_length < 2)
    fail("max_length", "must be at least 2 to hold [CLS] and [SEP], got " + std::to_string(max_length));
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(texts.size());
  size_t longest = 0;
  for (const auto& text : texts) {
    rows.push_back(encode_with_specials(text, max_length, truncation));
    longest = std::max(longest, rows.back().size());
  }
  Encoding enc;
  enc.rows = static_cast<int64_t>(rows.size());
  enc.cols = static_cast<int64_t>(padding == Padding::MaxLength ? std::max(longest, static_cast<size_t>(max_length))
                                                                : longest);
  enc.input_ids.assign(static_cast<size_t>(enc.rows * enc.cols), pad_id());
  enc.attention_mask.assign(enc.input_ids.size(), 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    const size_t base = r * static_cast<size_t>(enc.cols);
    std::copy(rows[r].begin(), rows[r].end(), enc.input_ids.begin() + static_cast<std::ptrdiff_t>(base));
    std::fill_n(enc.attention_mask.begin() + static_cast<std::ptrdiff_t>(base), rows[r].size(), 1);
  }
  return enc;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return std::make_unique<WordPieceTokenizer>((fs::path(path) / "vocab.txt").string());
  if (fs::path(path).extension() == ".model") {
#ifdef BLIP_WITH_SENTENCEPIECE
    return std::make_unique<SentencePieceTokenizer>(path);
#else
    fail(path, "SentencePiece models need libblip built with BLIP_WITH_SENTENCEPIECE");
#endif
  }
  return std::make_unique<WordPieceTokenizer>(path);
}

}  // namespace blip::text
