#include "blip/retrieval/itc_features.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <string>
#include <vector>

#include "blip/error.h"
#include "blip/models/blip_retrieval.h"

namespace blip::retrieval {

at::Tensor normalize_rows(const at::Tensor& x) {
  constexpr double kEps = 1e-12;  // F.normalize's eps
  return x / x.norm(2, {-1}, /*keepdim=*/true).clamp_min(kEps).expand_as(x);
}

at::Tensor image_tokens(models::BlipRetrievalImpl& model, const at::Tensor& images, const c10::Device& device,
                        at::ScalarType dtype) {
  c10::NoGradGuard no_grad;
  return model.image_embeds(images.to(device, dtype));
}

// In fp32 the cast is a no-op and this is BlipRetrievalImpl::image_feat / text_feat exactly.
at::Tensor itc_image_feat(models::BlipRetrievalImpl& model, const at::Tensor& image_tokens) {
  c10::NoGradGuard no_grad;
  return normalize_rows(model.vision_proj->forward(image_tokens.select(1, 0)).to(at::kFloat));
}

at::Tensor itc_text_feat(models::BlipRetrievalImpl& model, const at::Tensor& text_embeds) {
  c10::NoGradGuard no_grad;
  return normalize_rows(model.text_proj->forward(text_embeds.select(1, 0)).to(at::kFloat));
}

at::Tensor itc_text_features(models::BlipRetrievalImpl& model, const at::Tensor& input_ids,
                             const at::Tensor& attention_mask, std::int64_t begin, std::int64_t end,
                             const ItcTextOptions& o, const std::function<void(std::int64_t)>& on_chunk) {
  if (o.chunk < 1) fail("text chunk", "must be positive, got " + std::to_string(o.chunk));
  c10::NoGradGuard no_grad;
  const std::int64_t n_texts = std::max<std::int64_t>(0, end - begin);
  // An empty range (e.g. a rank with no texts) still has the feature width, for all_gather.
  at::Tensor out = at::empty({n_texts, model.spec().embed_dim}, at::kFloat);
  if (n_texts == 0) return out;
  const at::Tensor ids = input_ids.narrow(0, begin, n_texts), mask = attention_mask.narrow(0, begin, n_texts);

  // Positions in encoding order: shortest first when trimming (a stable sort keeps equal
  // lengths in the order given), else the order given.
  at::Tensor lengths, order;
  if (o.trim_padding) {
    lengths = mask.sum(1).to(at::kCPU, at::kLong);
    order = std::get<1>(lengths.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));
  } else {
    order = at::arange(n_texts, at::kLong);
  }
  for (std::int64_t i = 0; i < n_texts; i += o.chunk) {
    const std::int64_t n = std::min(o.chunk, n_texts - i);
    const at::Tensor rows = order.narrow(0, i, n);
    at::Tensor chunk_ids = ids.index_select(0, rows.to(ids.device()));
    at::Tensor chunk_mask = mask.index_select(0, rows.to(mask.device()));
    if (o.trim_padding) {
      const std::int64_t width = std::max<std::int64_t>(1, lengths.index_select(0, rows).max().item<std::int64_t>());
      chunk_ids = chunk_ids.narrow(1, 0, width);
      chunk_mask = chunk_mask.narrow(1, 0, width);
    }
    const at::Tensor embeds =
        model.text_embeds(chunk_ids.to(o.device), chunk_mask.to(o.device), nullptr,
                          o.first_token_only ? models::OutputTokens::First : models::OutputTokens::All);
    out.index_copy_(0, rows, itc_text_feat(model, embeds).to(at::kCPU));
    if (on_chunk) on_chunk(n);
  }
  return out;
}

}  // namespace blip::retrieval
