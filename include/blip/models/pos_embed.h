// Resizing ViT position embeddings to another patch grid (models/vit.py interpolate_pos_embed).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace blip::models {

// pos_embed [1, extra + g*g, D] -> [1, extra + G*G, D] with G*G = num_patches: the first
// `num_extra_tokens` (the CLS token) are kept, the g x g grid is resized with bicubic
// interpolation (align_corners = false), as BLIP does when loading a checkpoint made for another
// image size. Returned unchanged when g == G. A grid that is not square, or num_patches that is
// not a square, throws blip::Error naming `what`.
at::Tensor interpolate_pos_embed(const at::Tensor& pos_embed, int64_t num_patches,
                                 int64_t num_extra_tokens = 1,
                                 const std::string& what = "pos_embed");

}  // namespace blip::models
