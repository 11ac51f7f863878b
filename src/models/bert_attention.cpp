// BLIP's BertSelfAttention / BertSelfOutput / BertAttention (models/med.py), with cross-attention
// keys/values that can be precomputed once per image.
#include <ATen/ATen.h>

#include <cmath>

#include "blip/models/bert.h"
#include "models/reduced_precision.h"

namespace blip::models {

namespace {
// BLIP's masking constants: get_extended_attention_mask uses -10000, transformers 4.15
// invert_attention_mask uses -1e9 for float32 (-1e4 for float16).
constexpr double kSelfMaskValue = -10000.0;
constexpr double kCrossMaskValue = -1e9;
constexpr double kCrossMaskValueHalf = -1e4;

at::Tensor broadcastable(const at::Tensor& mask) {
  if (mask.dim() == 3) return mask.unsqueeze(1);                 // [B, Lq, Lk] -> [B, 1, Lq, Lk]
  if (mask.dim() == 2) return mask.unsqueeze(1).unsqueeze(1);    // [B, L] -> [B, 1, 1, L]
  TORCH_CHECK(false, "attention mask must be [B, L] or [B, Lq, Lk], got ", mask.sizes());
}
}  // namespace

at::Tensor extended_attention_mask(const at::Tensor& mask, at::ScalarType dtype) {
  return (1.0 - broadcastable(mask).to(dtype)) * kSelfMaskValue;
}

at::Tensor inverted_encoder_mask(const at::Tensor& mask, at::ScalarType dtype) {
  const double value = dtype == at::kHalf ? kCrossMaskValueHalf : kCrossMaskValue;
  return (1.0 - broadcastable(mask).to(dtype)) * value;
}

BertSelfAttentionImpl::BertSelfAttentionImpl(const BertConfig& config, bool is_cross_attention)
    : heads_(config.num_attention_heads), head_dim_(config.head_dim()) {
  const int64_t all_head = heads_ * head_dim_;
  const int64_t kv_width = is_cross_attention ? config.encoder_width : config.hidden_size;
  query = register_module("query", torch::nn::Linear(config.hidden_size, all_head));
  key = register_module("key", torch::nn::Linear(kv_width, all_head));
  value = register_module("value", torch::nn::Linear(kv_width, all_head));
  dropout = register_module("dropout", torch::nn::Dropout(config.attention_probs_dropout_prob));
}

at::Tensor BertSelfAttentionImpl::split_heads(const at::Tensor& x) const {
  return x.view({x.size(0), x.size(1), heads_, head_dim_}).permute({0, 2, 1, 3});
}

CrossAttentionKV BertSelfAttentionImpl::project_kv(const at::Tensor& states) {
  return {split_heads(key->forward(states)), split_heads(value->forward(states))};
}

at::Tensor BertSelfAttentionImpl::attend(const at::Tensor& hidden, const at::Tensor& k,
                                         const at::Tensor& v, const at::Tensor& mask) {
  const at::Tensor q = split_heads(query->forward(hidden));
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2));
  scores = scores / std::sqrt(static_cast<double>(head_dim_));
  if (mask.defined()) scores = scores + mask;
  at::Tensor probs = dropout->forward(scores.softmax(-1));
  at::Tensor context = at::matmul(probs, v).permute({0, 2, 1, 3}).contiguous();
  return context.view({context.size(0), context.size(1), heads_ * head_dim_});
}

at::Tensor BertSelfAttentionImpl::forward(const at::Tensor& hidden, const at::Tensor& mask) {
  return attend(hidden, split_heads(key->forward(hidden)), split_heads(value->forward(hidden)), mask);
}

at::Tensor BertSelfAttentionImpl::forward(const at::Tensor& hidden, const CrossAttentionKV& kv,
                                          const at::Tensor& mask) {
  return attend(hidden, kv.key, kv.value, mask);
}

BertResidualOutputImpl::BertResidualOutputImpl(int64_t in_features, const BertConfig& config) {
  dense = register_module("dense", torch::nn::Linear(in_features, config.hidden_size));
  layer_norm = register_module(
      "LayerNorm", torch::nn::LayerNorm(
                       torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps)));
  dropout = register_module("dropout", torch::nn::Dropout(config.hidden_dropout_prob));
}

at::Tensor BertResidualOutputImpl::forward(const at::Tensor& x, const at::Tensor& residual) {
  return layer_norm_fp32(layer_norm, dropout->forward(dense->forward(x)) + residual);
}

BertAttentionImpl::BertAttentionImpl(const BertConfig& config, bool is_cross_attention) {
  self = register_module("self", BertSelfAttention(config, is_cross_attention));
  output = register_module("output", BertResidualOutput(config.hidden_size, config));
}

at::Tensor BertAttentionImpl::forward(const at::Tensor& hidden, const at::Tensor& mask) {
  return output->forward(self->forward(hidden, mask), hidden);
}

at::Tensor BertAttentionImpl::forward(const at::Tensor& hidden, const CrossAttentionKV& kv,
                                      const at::Tensor& mask) {
  return output->forward(self->forward(hidden, kv, mask), hidden);
}

}  // namespace blip::models
