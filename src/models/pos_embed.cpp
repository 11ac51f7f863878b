// Bicubic resizing of ViT position embeddings (models/vit.py interpolate_pos_embed).
#include "blip/models/pos_embed.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/upsampling.h>

#include <cmath>

#include "blip/error.h"

namespace blip::models {

namespace {
// The side of a square grid of n tokens, or -1 when n is not a perfect square.
int64_t square_side(int64_t n) {
  if (n < 0) return -1;
  int64_t side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  return side * side == n ? side : -1;
}
}  // namespace

at::Tensor interpolate_pos_embed(const at::Tensor& pos_embed, int64_t num_patches,
                                 int64_t num_extra_tokens, const std::string& what) {
  if (pos_embed.dim() != 3 || pos_embed.size(0) != 1 || pos_embed.size(1) < num_extra_tokens)
    fail(what, "position embedding must be [1, tokens, D], got " + c10::str(pos_embed.sizes()));
  const int64_t dim = pos_embed.size(2);
  const int64_t orig = square_side(pos_embed.size(1) - num_extra_tokens);
  const int64_t target = square_side(num_patches);
  if (orig < 0)
    fail(what, "position embedding has " + std::to_string(pos_embed.size(1) - num_extra_tokens) +
                   " patch tokens, which is not a square grid");
  if (target < 0)
    fail(what, "the model's " + std::to_string(num_patches) + " patches are not a square grid");
  if (orig == target) return pos_embed;

  const at::Tensor extra = pos_embed.narrow(1, 0, num_extra_tokens);
  at::Tensor grid = pos_embed.narrow(1, num_extra_tokens, orig * orig)
                        .reshape({-1, orig, orig, dim})
                        .permute({0, 3, 1, 2});
  namespace F = torch::nn::functional;
  grid = F::interpolate(grid, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{target, target})
                                  .mode(torch::kBicubic)
                                  .align_corners(false));
  grid = grid.permute({0, 2, 3, 1}).flatten(1, 2);
  return at::cat({extra, grid}, 1);
}

}  // namespace blip::models
