// ITC embeddings as BLIP's evaluation() computes them: image -> F.normalize(vision_proj(ViT CLS)),
// text -> F.normalize(text_proj(text-encoder CLS)), texts in chunks of 256. The normalized
// features are always float32: in bf16 / fp16 the projection's output is cast to float before
// F.normalize, so that similarities and top-k are computed in fp32 (in fp32 this is exactly
// BlipRetrievalImpl::image_feat / text_feat).
//
// The model must be in eval mode with its floating weights in the compute type; calls run
// without autograd.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <functional>

#include "blip/blip_defaults.h"

namespace blip::models {
class BlipRetrievalImpl;
}

namespace blip::retrieval {

// F.normalize(x, dim=-1) as BLIP computes it: x / max(||x||_2, 1e-12).
at::Tensor normalize_rows(const at::Tensor& x);

// visual_encoder(images): images [B, 3, S, S] are moved to `device` and cast to `dtype` (the
// model's weight type); returns the ViT tokens [B, 1 + patches, vision_width] there.
at::Tensor image_tokens(models::BlipRetrievalImpl& model, const at::Tensor& images, const c10::Device& device,
                        at::ScalarType dtype);

// normalize(vision_proj(image_tokens[:, 0])) [B, embed_dim] float32, on the tokens' device.
at::Tensor itc_image_feat(models::BlipRetrievalImpl& model, const at::Tensor& image_tokens);
// normalize(text_proj(text_embeds[:, 0])) [B, embed_dim] float32, text_embeds being the text
// encoder's output (mode 'text').
at::Tensor itc_text_feat(models::BlipRetrievalImpl& model, const at::Tensor& text_embeds);

struct ItcTextOptions {
  std::int64_t chunk = kEvalTextChunk;  // texts per text-encoder forward (evaluation()'s text_bs)
  c10::Device device = c10::Device(c10::kCPU);
  // Encode the texts shortest first and cut each chunk to its longest text, rather than in the
  // order given at the tokenizer's padded width (evaluation()). Padded positions get exactly zero
  // attention weight, so only float rounding changes (~1e-6); COCO captions average ~14 of 35
  // tokens, so this does ~2.5x fewer FLOPs.
  bool trim_padding = true;
  // Compute only position 0 in the text encoder's last layer, the one the ITC projection reads
  // (OutputTokens::First; ~7% fewer FLOPs, float rounding only). false: every position, as BLIP.
  bool first_token_only = true;
};

// itc_text_feat of texts [begin, end) of input_ids / attention_mask ([T, L], [CLS] first, on
// any device), `chunk` texts per forward on options.device, in the order given (row k is text
// begin + k) whatever options.trim_padding, as CPU float32 rows
// [end - begin, embed_dim] (an empty range gives [0, embed_dim]). on_chunk(n) is called after
// each chunk of n texts (e.g. to advance a progress bar).
at::Tensor itc_text_features(models::BlipRetrievalImpl& model, const at::Tensor& input_ids,
                             const at::Tensor& attention_mask, std::int64_t begin, std::int64_t end,
                             const ItcTextOptions& options = {},
                             const std::function<void(std::int64_t)>& on_chunk = {});

}  // namespace blip::retrieval
