// BLIP's vision transformer (models/vit.py, timm ViT): registered names are BLIP's state-dict keys
// (patch_embed.proj, cls_token, pos_embed, blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,
// mlp.fc2}, norm).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include "blip/models/linear.h"
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "blip/config.h"

namespace blip::models {

// timm PatchEmbed: Conv2d(kernel = stride = patch), flatten, transpose -> [B, patches, width].
// Rejects inputs whose size differs from the configured image size (as timm does).
class PatchEmbedImpl : public torch::nn::Module {
 public:
  explicit PatchEmbedImpl(const VitConfig& config);
  at::Tensor forward(const at::Tensor& images);

  torch::nn::Conv2d proj{nullptr};

 private:
  int64_t image_size_;
  int64_t in_channels_;
};
TORCH_MODULE(PatchEmbed);

// Multi-head self-attention with a fused qkv projection; scores are *multiplied* by head_dim^-0.5.
class VitAttentionImpl : public torch::nn::Module {
 public:
  explicit VitAttentionImpl(const VitConfig& config);
  at::Tensor forward(const at::Tensor& x);

  Linear qkv{nullptr};
  torch::nn::Dropout attn_drop{nullptr};
  Linear proj{nullptr};
  torch::nn::Dropout proj_drop{nullptr};

 private:
  int64_t heads_;
  double scale_;
};
TORCH_MODULE(VitAttention);

// fc1 -> exact GELU -> dropout -> fc2 -> dropout.
class VitMlpImpl : public torch::nn::Module {
 public:
  explicit VitMlpImpl(const VitConfig& config);
  at::Tensor forward(const at::Tensor& x);

  Linear fc1{nullptr};
  Linear fc2{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(VitMlp);

// Pre-norm block: x + drop_path(attn(norm1(x))), then x + drop_path(mlp(norm2(x))).
// With gradient checkpointing, attn and mlp are recomputed in backward (BLIP wraps exactly those
// two with fairscale's checkpoint_wrapper); this only applies in training mode with grad enabled.
class VitBlockImpl : public torch::nn::Module {
 public:
  VitBlockImpl(const VitConfig& config, double drop_path_prob, bool grad_checkpointing);
  at::Tensor forward(const at::Tensor& x);

  bool grad_checkpointing() const { return grad_checkpointing_; }
  void set_grad_checkpointing(bool on) { grad_checkpointing_ = on; }
  double drop_path_prob() const { return drop_path_prob_; }

  torch::nn::LayerNorm norm1{nullptr};
  VitAttention attn{nullptr};
  torch::nn::LayerNorm norm2{nullptr};
  VitMlp mlp{nullptr};

 private:
  at::Tensor run_attn(const at::Tensor& x);
  at::Tensor run_mlp(const at::Tensor& x);

  double drop_path_prob_;
  bool grad_checkpointing_;
};
TORCH_MODULE(VitBlock);

// Optional record of intermediate outputs (for comparisons with the reference).
struct VitTrace {
  at::Tensor patch_embed;                // [B, patches, width]
  std::vector<at::Tensor> block_outputs;  // each [B, 1 + patches, width], before the final norm
};

class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(const VitConfig& config);

  // images [B, C, S, S] (S = config.image_size) -> [B, 1 + (S/patch)^2, width] after the final norm.
  at::Tensor forward(const at::Tensor& images, VitTrace* trace = nullptr);

  const VitConfig& config() const { return config_; }
  int64_t num_patches() const { return config_.num_patches(); }
  VitBlock block(size_t i) const { return blocks_.at(i); }
  size_t depth() const { return blocks_.size(); }

  // Registration order mirrors Python so that state_dict order matches: own parameters
  // (cls_token, pos_embed), then patch_embed, blocks, norm.
  at::Tensor cls_token;
  at::Tensor pos_embed;
  PatchEmbed patch_embed{nullptr};
  torch::nn::Dropout pos_drop{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  VitConfig config_;
  std::vector<VitBlock> blocks_;
};
TORCH_MODULE(VisionTransformer);

// timm DropPath (stochastic depth): per sample, zero the residual branch with probability p and
// scale survivors by 1/(1-p); identity in eval mode or for p == 0. Draws its randomness exactly as
// timm does (floor(keep_prob + rand([B, 1, ...]))).
at::Tensor drop_path(const at::Tensor& x, double p, bool training);

}  // namespace blip::models
