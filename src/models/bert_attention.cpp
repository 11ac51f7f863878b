// BLIP's BertSelfAttention / BertSelfOutput / BertAttention (models/med.py), with cross-attention
// keys/values that can be precomputed once per image.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "blip/models/bert.h"
#include "blip/models/fused_attention.h"
#include "models/attention_scale.h"
#include "models/fused_attention.h"
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
  query = register_module("query", Linear(config.hidden_size, all_head));
  key = register_module("key", Linear(kv_width, all_head));
  value = register_module("value", Linear(kv_width, all_head));
  dropout = register_module("dropout", torch::nn::Dropout(config.attention_probs_dropout_prob));
}

double BertSelfAttentionImpl::score_divisor() const { return std::sqrt(static_cast<double>(head_dim_)); }

bool BertSelfAttentionImpl::queries_scaled() const { return is_power_of_two(1.0 / score_divisor()); }

at::Tensor BertSelfAttentionImpl::split_heads(const at::Tensor& x) const {
  return x.view({x.size(0), x.size(1), heads_, head_dim_}).permute({0, 2, 1, 3});
}

CrossAttentionKV BertSelfAttentionImpl::project_kv(const at::Tensor& states) {
  return {split_heads(key->forward(states)), split_heads(value->forward(states))};
}

// Keys/values shared by every text of the batch (one image's cached cross-attention K/V):
// at::matmul would broadcast them by copying K and V once per text (450 MB per layer for 256
// texts at 577 image tokens) and multiply [L, 64] x [64, 577] blocks. Instead all texts' query
// rows of a head form one matrix, multiplied with that head's K and V, a block of rows at a
// time so that the score block stays in cache through the softmax: the same sums per score,
// ~4x faster at BLIP's sizes. Only for an additive mask that is the same for every text, and
// only where the fused kernel does not apply (bf16, a GPU, a CPU without AVX2; fused_attention.h).
at::Tensor BertSelfAttentionImpl::attend_shared_kv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                   const at::Tensor& mask) const {
  const int64_t batch = q.size(0), len = q.size(2), keys = k.size(2);
  const at::Tensor rows = q.permute({1, 0, 2, 3}).reshape({heads_, batch * len, head_dim_});  // [heads, B*L, d]
  const at::Tensor k_t = k[0].transpose(-1, -2);                                            // [heads, d, N]
  const at::Tensor v0 = v[0];                                                               // [heads, N, d]
  const at::Tensor row_mask = mask.defined() ? mask.reshape({1, 1, keys}) : at::Tensor();
  at::Tensor context = at::empty({heads_, batch * len, head_dim_}, q.options());
  for (int64_t a = 0; a < batch * len; a += kSharedKvRowBlock) {
    const int64_t e = std::min(batch * len, a + kSharedKvRowBlock);
    at::Tensor scores = at::bmm(rows.slice(1, a, e), k_t);
    if (!queries_scaled()) scores.div_(score_divisor());
    if (row_mask.defined()) scores.add_(row_mask);
    at::Tensor block = context.slice(1, a, e);
    at::bmm_out(block, scores.softmax(-1), v0);
  }
  // [heads, B*L, d] -> [B, L, heads * d]
  return context.view({heads_, batch, len, head_dim_}).permute({1, 2, 0, 3}).reshape({batch, len, heads_ * head_dim_});
}

// [B, heads, N, head_dim] (split_heads) -> [B, N, heads * head_dim]: a view of the projection.
at::Tensor BertSelfAttentionImpl::merge_heads(const at::Tensor& x) const {
  return x.permute({0, 2, 1, 3}).reshape({x.size(0), x.size(2), heads_ * head_dim_});
}

at::Tensor BertSelfAttentionImpl::attend(const at::Tensor& hidden, const at::Tensor& k,
                                         const at::Tensor& v, const at::Tensor& mask) {
  const at::Tensor projected = query->forward(hidden);
  // The fused kernel takes a mask that is the same for every query ([B, 1, 1, N]) as a bias per key.
  const bool per_key_mask = !mask.defined() || (mask.dim() == 4 && mask.size(1) == 1 && mask.size(2) == 1 &&
                                                mask.size(3) == k.size(2));
  if (!is_training() && per_key_mask && fused_attention_enabled()) {
    const at::Tensor keys = merge_heads(k), values = merge_heads(v);
    const at::Tensor bias = mask.defined() ? mask.reshape({mask.size(0), mask.size(3)}) : at::Tensor();
    if (fused_attention_applies(projected, keys, values, bias, heads_)) {
      AttentionScale scale;
      if (queries_scaled())
        scale.q_scale = static_cast<float>(1.0 / score_divisor());
      else
        scale.score_divisor = static_cast<float>(score_divisor());
      return fused_attention(projected, keys, values, bias, heads_, scale);
    }
  }
  at::Tensor q = split_heads(projected);
  if (queries_scaled()) q = q / score_divisor();  // the same bits (attention_scale.h)
  const bool mask_shared = !mask.defined() || mask.numel() == k.size(2);
  if (k.size(0) == 1 && q.size(0) > 1 && mask_shared && !is_training()) return attend_shared_kv(q, k, v, mask);
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2));
  if (!queries_scaled()) scores = scores / score_divisor();
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

at::Tensor BertSelfAttentionImpl::forward_queries(const at::Tensor& queries, const at::Tensor& states,
                                                  const at::Tensor& mask) {
  return attend(queries, split_heads(key->forward(states)), split_heads(value->forward(states)), mask);
}

BertResidualOutputImpl::BertResidualOutputImpl(int64_t in_features, const BertConfig& config) {
  dense = register_module("dense", Linear(in_features, config.hidden_size));
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

at::Tensor BertAttentionImpl::forward_queries(const at::Tensor& queries, const at::Tensor& states,
                                              const at::Tensor& mask) {
  return output->forward(self->forward_queries(queries, states, mask), queries);
}

}  // namespace blip::models
