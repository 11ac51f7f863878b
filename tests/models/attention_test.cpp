// The attention modules against BLIP's order of operations, bit for bit: BLIP scales the scores
// (timm: (q @ k^T) * scale; med.py: (q @ k^T) / sqrt(head_dim)); ours scales the queries when the
// scale is a power of two (head_dim 64), which must give exactly the same output, and keeps
// BLIP's order otherwise (head_dim 48). These run ATen's operators (UnfusedAttention); the fused
// kernel computes the same sums in another order (fused_attention_test.cpp).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "blip/config.h"
#include "blip/models/bert.h"
#include "blip/models/fused_attention.h"
#include "blip/models/vit.h"
#include "models/attention_scale.h"

namespace {

using blip::models::is_power_of_two;

TEST(AttentionScale, PowerOfTwoDetection) {
  EXPECT_TRUE(is_power_of_two(1.0 / 8));
  EXPECT_TRUE(is_power_of_two(std::pow(64.0, -0.5)));
  EXPECT_TRUE(is_power_of_two(1.0));
  EXPECT_FALSE(is_power_of_two(1.0 / std::sqrt(48.0)));
  EXPECT_FALSE(is_power_of_two(0.0));
  EXPECT_FALSE(is_power_of_two(-0.125));
  EXPECT_FALSE(is_power_of_two(INFINITY));
}

// [B, L, H] -> [B, heads, L, d]
at::Tensor heads_of(const at::Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, x.size(2) / heads}).permute({0, 2, 1, 3});
}

class AttentionOrder : public ::testing::TestWithParam<int64_t> {};  // parameter: head_dim

TEST_P(AttentionOrder, BertSelfAttentionEqualsBlipBitForBit) {
  torch::NoGradGuard no_grad;
  blip::models::UnfusedAttention unfused;  // ATen's path; the fused kernel: fused_attention_test.cpp
  at::manual_seed(3);
  blip::BertConfig c;
  c.num_attention_heads = 2;
  c.hidden_size = 2 * GetParam();
  blip::models::BertSelfAttention attn(c, /*is_cross_attention=*/false);
  attn->eval();
  const at::Tensor x = at::randn({3, 7, c.hidden_size});
  const at::Tensor mask = blip::models::extended_attention_mask(at::tensor({1, 1, 1, 1, 1, 0, 0}).repeat({3, 1}), at::kFloat);

  // med.py BertSelfAttention.forward, eval mode.
  const at::Tensor q = heads_of(attn->query->forward(x), 2), k = heads_of(attn->key->forward(x), 2),
                   v = heads_of(attn->value->forward(x), 2);
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(GetParam()));
  scores = scores + mask;
  const at::Tensor ctx = at::matmul(scores.softmax(-1), v).permute({0, 2, 1, 3}).contiguous().view({3, 7, c.hidden_size});

  EXPECT_TRUE(at::equal(attn->forward(x, mask), ctx)) << "max |diff| " << (attn->forward(x, mask) - ctx).abs().max().item<double>();
}

TEST_P(AttentionOrder, VitAttentionEqualsBlipBitForBit) {
  torch::NoGradGuard no_grad;
  blip::models::UnfusedAttention unfused;
  at::manual_seed(4);
  blip::VitConfig c;
  c.heads = 2;
  c.width = 2 * GetParam();
  blip::models::VitAttention attn(c);
  attn->eval();
  const at::Tensor x = at::randn({2, 9, c.width});

  // timm / BLIP vit.py Attention.forward.
  const at::Tensor qkv = attn->qkv->forward(x).reshape({2, 9, 3, 2, GetParam()}).permute({2, 0, 3, 1, 4});
  at::Tensor a = at::matmul(qkv[0], qkv[1].transpose(-2, -1)) * std::pow(static_cast<double>(GetParam()), -0.5);
  a = a.softmax(-1);
  const at::Tensor want = attn->proj->forward(at::matmul(a, qkv[2]).transpose(1, 2).reshape({2, 9, c.width}));

  EXPECT_TRUE(at::equal(attn->forward(x), want)) << "max |diff| " << (attn->forward(x) - want).abs().max().item<double>();
}

INSTANTIATE_TEST_SUITE_P(HeadDims, AttentionOrder, ::testing::Values(64, 48),
                         [](const ::testing::TestParamInfo<int64_t>& info) {
                           return "head_dim_" + std::to_string(info.param);
                         });

}  // namespace
