// BLIP's VisionTransformer (models/vit.py): patch embedding, blocks, final LayerNorm.
#include "blip/models/vit.h"

#include <ATen/ATen.h>

#include <string>

#include "blip/error.h"
#include "models/init.h"
#include "models/reduced_precision.h"

namespace blip::models {

namespace {
constexpr double kTimmInitStd = 0.02;  // timm trunc_normal_(std=.02) for pos_embed, cls_token

void check_vit_config(const VitConfig& c) {
  const std::string what = "ViT config";
  if (c.width <= 0 || c.depth <= 0 || c.heads <= 0 || c.patch_size <= 0 || c.image_size <= 0 ||
      c.in_channels <= 0)
    fail(what, "sizes must be positive");
  if (c.width % c.heads != 0)
    fail(what, "width " + std::to_string(c.width) + " is not a multiple of heads " +
                   std::to_string(c.heads));
  if (c.image_size % c.patch_size != 0)
    fail(what, "image size " + std::to_string(c.image_size) + " is not a multiple of patch size " +
                   std::to_string(c.patch_size));
  if (c.ckpt_layer < 0 || c.ckpt_layer > c.depth)
    fail(what, "ckpt_layer must lie in [0, depth]");
}
}  // namespace

PatchEmbedImpl::PatchEmbedImpl(const VitConfig& config)
    : image_size_(config.image_size), in_channels_(config.in_channels) {
  proj = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(config.in_channels, config.width,
                                                         config.patch_size)
                                    .stride(config.patch_size)));
}

at::Tensor PatchEmbedImpl::forward(const at::Tensor& images) {
  if (!at::isFloatingType(images.scalar_type()))
    fail("visual_encoder", "images must be a floating-point tensor, got " +
                               std::string(c10::toString(images.scalar_type())));
  if (images.dim() != 4 || images.size(1) != in_channels_ || images.size(2) != image_size_ ||
      images.size(3) != image_size_)
    fail("visual_encoder", "expected images of shape [B, " + std::to_string(in_channels_) + ", " +
                               std::to_string(image_size_) + ", " + std::to_string(image_size_) +
                               "], got " + c10::str(images.sizes()));
  return proj->forward(images).flatten(2).transpose(1, 2);
}

VisionTransformerImpl::VisionTransformerImpl(const VitConfig& config) : config_(config) {
  check_vit_config(config);
  cls_token = register_parameter("cls_token", at::zeros({1, 1, config.width}));
  pos_embed = register_parameter("pos_embed", at::zeros({1, config.num_patches() + 1, config.width}));
  patch_embed = register_module("patch_embed", PatchEmbed(config));
  pos_drop = register_module("pos_drop", torch::nn::Dropout(config.drop_rate));
  blocks = register_module("blocks", torch::nn::ModuleList());
  // Stochastic depth decay rule, in float32 as BLIP computes it: linspace(0, rate, depth).
  const at::Tensor dprs = at::linspace(0.0, config.drop_path_rate, config.depth, at::kFloat);
  for (int64_t i = 0; i < config.depth; ++i) {
    const double dpr = static_cast<double>(dprs[i].item<float>());
    const bool ckpt = config.grad_ckpt && i >= config.depth - config.ckpt_layer;
    blocks_.push_back(VitBlock(config, dpr, ckpt));
    blocks->push_back(blocks_.back());
  }
  norm = register_module(
      "norm", torch::nn::LayerNorm(
                  torch::nn::LayerNormOptions({config.width}).eps(config.layer_norm_eps)));

  // BLIP's init: trunc_normal_(std=.02) on pos_embed, cls_token and Linear weights (bounds of
  // +-2 absolute, i.e. +-100 std: effectively a plain normal), zero Linear biases, LayerNorm 1/0;
  // the patch Conv2d keeps PyTorch's default init.
  init_normal(pos_embed, kTimmInitStd);
  init_normal(cls_token, kTimmInitStd);
  for (auto& b : blocks_) {
    init_linear_normal(*b->attn->qkv, kTimmInitStd);
    init_linear_normal(*b->attn->proj, kTimmInitStd);
    init_linear_normal(*b->mlp->fc1, kTimmInitStd);
    init_linear_normal(*b->mlp->fc2, kTimmInitStd);
  }
}

at::Tensor VisionTransformerImpl::forward(const at::Tensor& images, VitTrace* trace) {
  at::Tensor x = patch_embed->forward(images);
  if (trace) trace->patch_embed = x;
  const int64_t batch = x.size(0);
  x = at::cat({cls_token.expand({batch, -1, -1}), x}, 1);
  x = x + pos_embed.narrow(1, 0, x.size(1));
  x = pos_drop->forward(x);
  for (auto& blk : blocks_) {
    x = blk->forward(x);
    if (trace) trace->block_outputs.push_back(x);
  }
  return layer_norm_fp32(norm, x);
}

}  // namespace blip::models
