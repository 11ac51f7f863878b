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
  std::vector<at::Tensor> parts;
  for (std::int64_t i = begin; i < end; i += o.chunk) {
    const std::int64_t n = std::min(o.chunk, end - i);
    const at::Tensor embeds =
        model.text_embeds(input_ids.narrow(0, i, n).to(o.device), attention_mask.narrow(0, i, n).to(o.device));
    parts.push_back(itc_text_feat(model, embeds).to(at::kCPU));
    if (on_chunk) on_chunk(n);
  }
  // An empty range (e.g. a rank with no texts) still has the feature width, for all_gather.
  return parts.empty() ? at::empty({0, model.spec().embed_dim}) : at::cat(parts, 0);
}

}  // namespace blip::retrieval
