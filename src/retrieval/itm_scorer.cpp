#include "blip/retrieval/itm_scorer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <numeric>
#include <string>

#include "blip/error.h"
#include "blip/models/blip_retrieval.h"
#include "blip/retrieval/precision.h"

namespace blip::retrieval {

using models::BlipRetrievalImpl;

// ---- ItmTexts --------------------------------------------------------------------------------

ItmTexts::ItmTexts(const TextTensors& tokens, std::int64_t enc_token_id)
    : ids_(BlipRetrievalImpl::with_enc_token(tokens.input_ids, enc_token_id)), mask_(tokens.attention_mask) {
  const at::Tensor lengths = mask_.sum(1).to(at::kLong).contiguous();
  lengths_.assign(lengths.data_ptr<std::int64_t>(), lengths.data_ptr<std::int64_t>() + lengths.numel());
}

ItmTexts ItmTexts::select(const at::Tensor& rows) const {
  ItmTexts out;
  out.ids_ = ids_.index_select(0, rows);
  out.mask_ = mask_.index_select(0, rows);
  const at::Tensor r = rows.to(at::kLong).contiguous();
  const std::int64_t* p = r.data_ptr<std::int64_t>();
  out.lengths_.reserve(static_cast<std::size_t>(r.numel()));
  for (std::int64_t k = 0; k < r.numel(); ++k) out.lengths_.push_back(length(p[k]));
  return out;
}

// ---- batching --------------------------------------------------------------------------------

std::vector<std::pair<std::int64_t, std::int64_t>> itm_batch_spans(const std::vector<std::int64_t>& lengths,
                                                                   const ItmScorerOptions& options) {
  const auto n = static_cast<std::int64_t>(lengths.size());
  std::vector<std::pair<std::int64_t, std::int64_t>> spans;
  std::int64_t begin = 0, width = 0;
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t length = lengths[static_cast<std::size_t>(k)];
    const std::int64_t count = k - begin;
    // Texts come shortest first: a longer one widens the batch, so close it there once it has
    // enough token rows for efficient matrix products.
    const bool full = count == options.itm_batch;
    const bool widens =
        options.trim_padding && count > 0 && length > width && count * width >= options.min_batch_tokens;
    if (full || widens) {
      spans.emplace_back(begin, k);
      begin = k;
      width = 0;
    }
    width = std::max(width, length);
  }
  if (begin < n) spans.emplace_back(begin, n);
  return spans;
}

// ---- ItmScorer -------------------------------------------------------------------------------

ItmScorer::ItmScorer(models::BlipRetrievalImpl& model, const ItmScorerOptions& options)
    : model_(model), options_(options) {
  if (options_.itm_batch < 1) fail("itm_batch", "must be positive, got " + std::to_string(options_.itm_batch));
  if (options_.min_batch_tokens < 0)
    fail("ITM min_batch_tokens", "must not be negative, got " + std::to_string(options_.min_batch_tokens));
  check_precision(options_.precision, options_.device);
}

at::Tensor ItmScorer::image_logits(const at::Tensor& image_tokens, const ItmTexts& texts,
                                   const std::vector<std::int64_t>& rows) const {
  c10::NoGradGuard no_grad;
  const auto n = static_cast<std::int64_t>(rows.size());
  at::Tensor out = at::empty({n, 2}, at::kFloat);
  if (n == 0) return out;
  for (std::int64_t t : rows)
    if (t < 0 || t >= texts.size())
      fail("ITM scorer", "text " + std::to_string(t) + " out of range (" + std::to_string(texts.size()) + " texts)");

  // Positions into `rows` in scoring order: shortest caption first (stable, so equal lengths
  // keep the caller's order), which lets each batch drop its all-padding columns.
  std::vector<std::int64_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  if (options_.trim_padding)
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
      return texts.length(rows[a]) < texts.length(rows[b]);
    });

  const at::Tensor tokens = image_tokens.dim() == 2 ? image_tokens.unsqueeze(0) : image_tokens;
  const models::CrossAttentionCache kv = model_.cross_attention_kv(tokens.to(options_.device, options_.precision));
  const std::int64_t full_width = texts.ids().size(1);
  std::vector<std::int64_t> lengths(order.size());
  for (std::size_t k = 0; k < order.size(); ++k) lengths[k] = texts.length(rows[order[k]]);
  for (const auto& [c, end] : itm_batch_spans(lengths, options_)) {
    const std::int64_t size = end - c;
    std::vector<std::int64_t> chunk(static_cast<std::size_t>(size));
    std::int64_t width = 0;
    for (std::int64_t k = 0; k < size; ++k) {
      chunk[k] = rows[order[c + k]];
      width = std::max(width, texts.length(chunk[k]));
    }
    if (!options_.trim_padding) width = full_width;
    const at::Tensor text_rows = at::tensor(chunk, at::kLong);
    const at::Tensor ids = texts.ids().index_select(0, text_rows).narrow(1, 0, width);
    const at::Tensor mask = texts.attention_mask().index_select(0, text_rows).narrow(1, 0, width);
    const at::Tensor logits =
        model_.itm_logits(ids.to(options_.device), mask.to(options_.device), kv).to(at::kCPU, at::kFloat);
    const std::vector<std::int64_t> positions(order.begin() + c, order.begin() + c + size);
    out.index_copy_(0, at::tensor(positions, at::kLong), logits);
  }
  return out;
}

at::Tensor ItmScorer::image_logits(const at::Tensor& image_tokens, const ItmTexts& texts) const {
  std::vector<std::int64_t> all(static_cast<std::size_t>(texts.size()));
  std::iota(all.begin(), all.end(), 0);
  return image_logits(image_tokens, texts, all);
}

at::Tensor ItmScorer::image_scores(const at::Tensor& image_tokens, const ItmTexts& texts,
                                   const std::vector<std::int64_t>& rows) const {
  return BlipRetrievalImpl::itm_score(image_logits(image_tokens, texts, rows)).contiguous();
}

at::Tensor ItmScorer::pair_scores(const at::Tensor& ids_with_enc, const at::Tensor& attention_mask,
                                  const at::Tensor& image_tokens) const {
  c10::NoGradGuard no_grad;
  const c10::Device& device = options_.device;
  const at::Tensor image_mask =
      at::ones({image_tokens.size(0), image_tokens.size(1)}, at::TensorOptions(at::kLong).device(device));
  return BlipRetrievalImpl::itm_score(model_.itm_logits(ids_with_enc.to(device), attention_mask.to(device),
                                                        image_tokens.to(device, options_.precision), image_mask))
      .to(at::kCPU, at::kFloat);
}

at::Tensor ItmScorer::text_scores(const ItmTexts& texts, std::int64_t text, const at::Tensor& image_tokens) const {
  if (text < 0 || text >= texts.size())
    fail("ITM scorer", "text " + std::to_string(text) + " out of range (" + std::to_string(texts.size()) + " texts)");
  const std::int64_t k = image_tokens.size(0);
  const std::int64_t width = options_.trim_padding ? texts.length(text) : texts.ids().size(1);
  const at::Tensor ids = texts.ids()[text].narrow(0, 0, width);
  const at::Tensor mask = texts.attention_mask()[text].narrow(0, 0, width);
  std::vector<at::Tensor> parts;
  for (std::int64_t c = 0; c < k; c += options_.itm_batch) {
    const std::int64_t size = std::min(k - c, options_.itm_batch);
    parts.push_back(pair_scores(ids.repeat({size, 1}), mask.repeat({size, 1}), image_tokens.narrow(0, c, size)));
  }
  return parts.empty() ? at::empty({0}, at::kFloat) : at::cat(parts, 0);
}

at::Tensor combined_scores(const at::Tensor& itm_scores, const at::Tensor& itc_sims) {
  return itm_scores + itc_sims;
}

}  // namespace blip::retrieval
