// The ITM rescoring step of BLIP's retrieval (train_retrieval.py evaluation()): a (image, text)
// pair's score is itm_head(text_encoder(ids with [ENC], mask, image tokens, mode='multimodal')
// [:, 0])[:, 1], the raw logit of "match", and the ranking score is that logit plus the ITC
// similarity. Evaluation, feature extraction and search all score through ItmScorer.
//
// Speed: for one image against many texts the image's cross-attention keys/values are computed
// once (models::BlipRetrievalImpl::cross_attention_kv) and shared by all its texts; with
// trim_padding the texts are scored shortest first, at most itm_batch at a time, and each batch is
// cut to its longest caption (padded positions get exactly zero attention weight, so only float
// rounding changes). A batch is also closed where the next caption is longer, once it holds
// min_batch_tokens token rows: the padding stays a few percent (a fixed 256 texts of COCO-like
// captions, 10-22 tokens, pads ~27% of the rows) while the matrix products stay large.
//
// The model must already be in eval mode, on options.device, with its floating weights in
// options.precision (see model_guards.h). Calls run without autograd. Not thread-safe: one
// scorer, and its model, per thread.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "blip/retrieval/text_tensors.h"

namespace blip::models {
class BlipRetrievalImpl;
}

namespace blip::retrieval {

// (image, text) pairs per ITM forward when one image is scored against many texts.
inline constexpr std::int64_t kDefaultItmBatch = 256;
// Token rows at which a batch may end early to avoid padding (see ItmScorerOptions); measured
// with bench_eval_stages --itm-min-tokens.
inline constexpr std::int64_t kDefaultItmMinBatchTokens = 1024;

struct ItmScorerOptions {
  std::int64_t itm_batch = kDefaultItmBatch;
  // Score texts shortest first and drop each batch's all-padding columns (faster; the same
  // values up to float rounding). false: texts in the order given, at full width.
  bool trim_padding = true;
  // With trim_padding: a batch may end before itm_batch texts where the captions get longer,
  // once it has this many token rows (texts x width). 0: one caption length per batch.
  std::int64_t min_batch_tokens = kDefaultItmMinBatchTokens;
  c10::Device device = c10::Device(c10::kCPU);
  // The type of the model's floating weights; image tokens are cast to it.
  at::ScalarType precision = at::kFloat;
};

// Captions prepared for the ITM head: the tokenizer's ids with [ENC] in column 0 (evaluation()
// overwrites [CLS]), the attention mask, and each caption's token count.
class ItmTexts {
 public:
  ItmTexts() = default;
  // `tokens` as tokenize_to_tensors returns them ([CLS] first); enc_token_id = tokenizer.enc_id().
  ItmTexts(const TextTensors& tokens, std::int64_t enc_token_id);

  // Rows `rows` (int64 indices) of this set, in that order.
  ItmTexts select(const at::Tensor& rows) const;

  std::int64_t size() const { return ids_.defined() ? ids_.size(0) : 0; }
  const at::Tensor& ids() const { return ids_; }             // [T, L] int64 CPU, [ENC] first
  const at::Tensor& attention_mask() const { return mask_; }  // [T, L] int64 CPU
  std::int64_t length(std::int64_t row) const {  // mask.sum(1)[row]
    return lengths_[static_cast<std::size_t>(row)];
  }

 private:
  at::Tensor ids_, mask_;
  std::vector<std::int64_t> lengths_;
};

// How ItmScorer splits texts into forwards: `lengths` are the token counts in scoring order
// (ascending with trim_padding); returns [begin, end) of each batch: at most itm_batch texts, and
// with trim_padding also ending before a longer text once the batch holds min_batch_tokens rows.
std::vector<std::pair<std::int64_t, std::int64_t>> itm_batch_spans(const std::vector<std::int64_t>& lengths,
                                                                   const ItmScorerOptions& options);

class ItmScorer {
 public:
  // Throws blip::Error for itm_batch < 1 or a precision the device cannot run.
  explicit ItmScorer(models::BlipRetrievalImpl& model, const ItmScorerOptions& options = {});

  const ItmScorerOptions& options() const { return options_; }

  // One image (tokens [N, D] or [1, N, D], the ViT output) against texts `rows` of `texts` (any
  // order, repeats allowed): ITM logits [rows.size(), 2], float32 CPU, row k for text rows[k].
  at::Tensor image_logits(const at::Tensor& image_tokens, const ItmTexts& texts,
                          const std::vector<std::int64_t>& rows) const;
  // ... against every text of `texts`, in order: [texts.size(), 2].
  at::Tensor image_logits(const at::Tensor& image_tokens, const ItmTexts& texts) const;
  // itm_logit[:, 1] of image_logits: [rows.size()] float32 CPU.
  at::Tensor image_scores(const at::Tensor& image_tokens, const ItmTexts& texts,
                          const std::vector<std::int64_t>& rows) const;

  // One text (row `text` of `texts`) against k images, image_tokens [k, N, D]: itm_logit[:, 1]
  // [k] float32 CPU, itm_batch images per forward (evaluation()'s text-to-image call: the text
  // repeated, an all-ones image mask).
  at::Tensor text_scores(const ItmTexts& texts, std::int64_t text, const at::Tensor& image_tokens) const;

  // BLIP's call for aligned pairs, in one forward as evaluation() makes it: text row b
  // (ids_with_enc / attention_mask [B, L]) with image b (image_tokens [B, N, D]), all-ones image
  // mask. itm_logit[:, 1]: [B] float32 CPU.
  at::Tensor pair_scores(const at::Tensor& ids_with_enc, const at::Tensor& attention_mask,
                         const at::Tensor& image_tokens) const;

 private:
  models::BlipRetrievalImpl& model_;
  ItmScorerOptions options_;
};

// BLIP's ranking score, as evaluation() fills its score matrices: itm_logit[:, 1] + ITC
// similarity, added in float32.
inline float combined_score(float itm_score, float itc_sim) { return itm_score + itc_sim; }
// The same elementwise: float32 tensors of one shape (CPU or not).
at::Tensor combined_scores(const at::Tensor& itm_scores, const at::Tensor& itc_sims);

}  // namespace blip::retrieval
