// ViT attention, MLP, block and DropPath (models/vit.py Attention, Mlp, Block; timm DropPath).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "blip/models/grad_checkpoint.h"
#include "blip/models/vit.h"
#include "models/attention_scale.h"
#include "models/fused_attention.h"
#include "models/reduced_precision.h"

namespace blip::models {

VitAttentionImpl::VitAttentionImpl(const VitConfig& config)
    : heads_(config.heads), scale_(std::pow(static_cast<double>(config.width / config.heads), -0.5)) {
  qkv = register_module(
      "qkv", Linear(torch::nn::LinearOptions(config.width, 3 * config.width)
                                   .bias(config.qkv_bias)));
  attn_drop = register_module("attn_drop", torch::nn::Dropout(config.attn_drop_rate));
  proj = register_module("proj", Linear(config.width, config.width));
  proj_drop = register_module("proj_drop", torch::nn::Dropout(config.drop_rate));
}

at::Tensor VitAttentionImpl::forward(const at::Tensor& x) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2);
  const at::Tensor projected = qkv->forward(x);  // [B, N, 3 * C]: q, k, v, each heads side by side
  if (!is_training()) {
    const at::Tensor q = projected.narrow(2, 0, C), k = projected.narrow(2, C, C), v = projected.narrow(2, 2 * C, C);
    if (fused_attention_applies(q, k, v, at::Tensor(), heads_)) {
      AttentionScale scale;
      if (is_power_of_two(scale_))
        scale.q_scale = static_cast<float>(scale_);
      else
        scale.score_multiplier = static_cast<float>(scale_);
      return proj_drop->forward(proj->forward(fused_attention(q, k, v, at::Tensor(), heads_, scale)));
    }
  }
  at::Tensor qkv_out = projected.reshape({B, N, 3, heads_, C / heads_}).permute({2, 0, 3, 1, 4});
  at::Tensor q = qkv_out[0], k = qkv_out[1], v = qkv_out[2];
  at::Tensor attn;
  if (is_power_of_two(scale_))
    attn = at::matmul(q * scale_, k.transpose(-2, -1));  // the same bits (attention_scale.h)
  else
    attn = at::matmul(q, k.transpose(-2, -1)) * scale_;
  attn = attn.softmax(-1);
  attn = attn_drop->forward(attn);
  at::Tensor out = at::matmul(attn, v).transpose(1, 2).reshape({B, N, C});
  return proj_drop->forward(proj->forward(out));
}

VitMlpImpl::VitMlpImpl(const VitConfig& config) {
  fc1 = register_module("fc1", Linear(config.width, config.mlp_hidden()));
  fc2 = register_module("fc2", Linear(config.mlp_hidden(), config.width));
  drop = register_module("drop", torch::nn::Dropout(config.drop_rate));
}

at::Tensor VitMlpImpl::forward(const at::Tensor& x) {
  at::Tensor h = at::gelu(fc1->forward(x));  // exact (erf) GELU, as nn.GELU()
  h = drop->forward(h);
  return drop->forward(fc2->forward(h));
}

at::Tensor drop_path(const at::Tensor& x, double p, bool training) {
  if (p == 0.0 || !training) return x;
  const double keep = 1.0 - p;
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  at::Tensor mask = at::rand(shape, x.options()).add_(keep).floor_();
  return x.div(keep) * mask;
}

VitBlockImpl::VitBlockImpl(const VitConfig& config, double drop_path_prob, bool grad_checkpointing)
    : drop_path_prob_(drop_path_prob), grad_checkpointing_(grad_checkpointing) {
  const auto ln = torch::nn::LayerNormOptions({config.width}).eps(config.layer_norm_eps);
  norm1 = register_module("norm1", torch::nn::LayerNorm(ln));
  attn = register_module("attn", VitAttention(config));
  norm2 = register_module("norm2", torch::nn::LayerNorm(ln));
  mlp = register_module("mlp", VitMlp(config));
}

at::Tensor VitBlockImpl::run_attn(const at::Tensor& x) {
  if (grad_checkpointing_ && is_training() && torch::GradMode::is_enabled()) {
    VitAttention m = attn;
    return checkpoint([m](const at::Tensor& t) mutable { return m->forward(t); }, x, attn->parameters());
  }
  return attn->forward(x);
}

at::Tensor VitBlockImpl::run_mlp(const at::Tensor& x) {
  if (grad_checkpointing_ && is_training() && torch::GradMode::is_enabled()) {
    VitMlp m = mlp;
    return checkpoint([m](const at::Tensor& t) mutable { return m->forward(t); }, x, mlp->parameters());
  }
  return mlp->forward(x);
}

at::Tensor VitBlockImpl::forward(const at::Tensor& input) {
  at::Tensor x = input + drop_path(run_attn(layer_norm_fp32(norm1, input)), drop_path_prob_, is_training());
  return x + drop_path(run_mlp(layer_norm_fp32(norm2, x)), drop_path_prob_, is_training());
}

}  // namespace blip::models
