// OutputTokens::First: the last layer computes position 0 only (all the ITM head and the ITC
// projection read). Its output must be that position of the full forward, with the fused
// attention kernel and with ATen's operators, for per-text padding masks.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <optional>

#include "blip/config.h"
#include "blip/models/bert.h"
#include "blip/models/fused_attention.h"

namespace {

class FirstToken : public ::testing::TestWithParam<bool> {};  // parameter: fused attention allowed

TEST_P(FirstToken, LastLayerGivesPositionZeroOfTheFullForward) {
  torch::NoGradGuard no_grad;
  std::optional<blip::models::UnfusedAttention> unfused;
  if (!GetParam()) unfused.emplace();
  at::manual_seed(21);
  blip::BertConfig c;
  c.vocab_size = 100;
  c.hidden_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 256;
  c.max_position_embeddings = 64;
  c.encoder_width = 64;
  blip::models::BertModel bert(c);
  bert->eval();
  const at::Tensor ids = at::randint(1, 100, {5, 9}, at::kLong);
  at::Tensor mask = at::ones({5, 9}, at::kLong);
  for (int64_t b = 0; b < 5; ++b) mask[b].narrow(0, 9 - b, b).zero_();  // text b has b padding tokens
  const blip::models::CrossAttentionCache image = bert->cross_attention_kv(at::randn({1, 20, 64}));

  const at::Tensor full = bert->forward_with_cross_kv(ids, mask, image, {}, nullptr, blip::models::OutputTokens::All);
  const at::Tensor first =
      bert->forward_with_cross_kv(ids, mask, image, {}, nullptr, blip::models::OutputTokens::First);
  ASSERT_EQ(first.sizes(), (at::IntArrayRef{5, 1, 128}));
  EXPECT_LE((first.select(1, 0) - full.select(1, 0)).abs().max().item<double>(), 1e-5);
  // Text mode (the ITC pass) likewise.
  const at::Tensor text_full =
      bert->forward(ids, mask, blip::models::TextMode::Text, {}, {}, nullptr, blip::models::OutputTokens::All);
  const at::Tensor text_first =
      bert->forward(ids, mask, blip::models::TextMode::Text, {}, {}, nullptr, blip::models::OutputTokens::First);
  ASSERT_EQ(text_first.sizes(), (at::IntArrayRef{5, 1, 128}));
  EXPECT_LE((text_first.select(1, 0) - text_full.select(1, 0)).abs().max().item<double>(), 1e-5);
  // Position 0 depends on the other positions (as keys): changing one changes it.
  at::Tensor other = ids.clone();
  other[0][1] = (other[0][1].item<int64_t>() % 99) + 1;
  const at::Tensor moved =
      bert->forward_with_cross_kv(other, mask, image, {}, nullptr, blip::models::OutputTokens::First);
  EXPECT_GT((moved[0][0] - first[0][0]).abs().max().item<double>(), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Attention, FirstToken, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "fused" : "aten"; });

}  // namespace
