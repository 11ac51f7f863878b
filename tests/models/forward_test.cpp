// The tiny model loaded from tiny_checkpoint.pth reproduces BLIP's forward pass
// (blip_ref/forward.safetensors, README section 3.5).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "blip/models/blip_retrieval.h"
#include "common/fixtures.h"
#include "model_test_util.h"

namespace {

using blip::test::expect_close;
constexpr int64_t kEncTokenId = 30523;  // [ENC] in BLIP's tokenizer

class TinyForward : public ::testing::Test {
 protected:
  void SetUp() override {
    BLIP_REQUIRE_FIXTURES();
    model_ = blip::test::load_tiny_model();
    ref_ = blip::test::load_fixture(blip::test::blip_ref_dir() + "/forward.safetensors");
  }
  blip::models::BlipRetrieval model_{nullptr};
  std::map<std::string, at::Tensor> ref_;
  torch::NoGradGuard no_grad_;
};

TEST_F(TinyForward, ImageEncoderMatchesReference) {
  blip::models::VitTrace trace;
  const at::Tensor embeds = model_->image_embeds(ref_.at("image"), &trace);
  expect_close("vit.patch_embed", trace.patch_embed, ref_.at("vit.patch_embed"));
  ASSERT_EQ(trace.block_outputs.size(), 2u);
  for (size_t i = 0; i < trace.block_outputs.size(); ++i)
    expect_close("vit.block" + std::to_string(i), trace.block_outputs[i],
                 ref_.at("vit.block" + std::to_string(i)));
  expect_close("vit.out", embeds, ref_.at("vit.out"));
  expect_close("image_proj", model_->vision_proj->forward(embeds.select(1, 0)), ref_.at("image_proj"));
  expect_close("image_feat", model_->image_feat(embeds), ref_.at("image_feat"));
}

TEST_F(TinyForward, TextEncoderMatchesReference) {
  blip::models::BertTrace trace;
  const at::Tensor hidden =
      model_->text_embeds(ref_.at("text.input_ids"), ref_.at("text.attention_mask"), &trace);
  expect_close("text.embeddings", trace.embeddings, ref_.at("text.embeddings"));
  ASSERT_EQ(trace.layers.size(), 2u);
  for (size_t i = 0; i < trace.layers.size(); ++i)
    expect_close("text.layer" + std::to_string(i), trace.layers[i],
                 ref_.at("text.layer" + std::to_string(i)));
  expect_close("text.last_hidden_state", hidden, ref_.at("text.last_hidden_state"));
  expect_close("text_proj", model_->text_proj->forward(hidden.select(1, 0)), ref_.at("text_proj"));
  const at::Tensor text_feat = model_->text_feat(hidden);
  expect_close("text_feat", text_feat, ref_.at("text_feat"));
  const at::Tensor image_feat = model_->image_feat(model_->image_embeds(ref_.at("image")));
  expect_close("sim_i2t", at::matmul(image_feat, text_feat.t()), ref_.at("sim_i2t"));
}

TEST_F(TinyForward, ItmMatchesReference) {
  const at::Tensor ids = ref_.at("text.input_ids"), mask = ref_.at("text.attention_mask");
  const at::Tensor ids_enc = blip::models::BlipRetrievalImpl::with_enc_token(ids, kEncTokenId);
  EXPECT_TRUE(at::equal(ids_enc, ref_.at("itm.input_ids")));
  EXPECT_FALSE(at::equal(ids, ids_enc));  // the input is not modified in place

  const at::Tensor image_embeds = model_->image_embeds(ref_.at("image"));
  const int64_t n_img = image_embeds.size(0), n_txt = ids.size(0);

  // BLIP's call: image i repeated for every caption, with an all-ones image mask.
  blip::models::BertTrace trace;
  const at::Tensor img0 = image_embeds.narrow(0, 0, 1).repeat({n_txt, 1, 1});
  const at::Tensor ones = at::ones({n_txt, img0.size(1)}, at::kLong);
  const at::Tensor hidden0 = model_->text_encoder->forward(
      ids_enc, mask, blip::models::TextMode::Multimodal, img0, ones, &trace);
  expect_close("itm.img0.embeddings", trace.embeddings, ref_.at("itm.img0.embeddings"));
  for (size_t i = 0; i < trace.layers.size(); ++i)
    expect_close("itm.img0.layer" + std::to_string(i), trace.layers[i],
                 ref_.at("itm.img0.layer" + std::to_string(i)));
  expect_close("itm.img0.last_hidden_state", hidden0, ref_.at("itm.img0.last_hidden_state"));

  std::vector<at::Tensor> cls, logits, logits_cached;
  for (int64_t i = 0; i < n_img; ++i) {
    const at::Tensor img = image_embeds.narrow(0, i, 1);
    const at::Tensor h = model_->text_encoder->forward(
        ids_enc, mask, blip::models::TextMode::Multimodal, img.repeat({n_txt, 1, 1}), ones);
    cls.push_back(h.select(1, 0));
    logits.push_back(model_->itm_logits(ids_enc, mask, img.repeat({n_txt, 1, 1}), ones));
    // The K/V of the image computed once and broadcast over all captions.
    const auto kv = model_->cross_attention_kv(img);
    logits_cached.push_back(model_->itm_logits(ids_enc, mask, kv));
  }
  expect_close("itm.cls", at::stack(cls), ref_.at("itm.cls"));
  expect_close("itm.logits", at::stack(logits), ref_.at("itm.logits"));
  expect_close("itm.logits (cached K/V)", at::stack(logits_cached), ref_.at("itm.logits"));
  expect_close("itm.score", blip::models::BlipRetrievalImpl::itm_score(at::stack(logits_cached)),
               ref_.at("itm.score"));
  // Plain and cached paths agree far below the reference tolerance (gemm shapes differ).
  expect_close("cached vs plain", at::stack(logits_cached), at::stack(logits), 1e-5, 1e-5);
  // A batch-1 image broadcast without repeat and without a mask gives the same logits.
  expect_close("broadcast image, no mask",
               model_->itm_logits(ids_enc, mask, image_embeds.narrow(0, 2, 1)), logits[2], 1e-6,
               1e-6);
}

TEST_F(TinyForward, BadInputsAreErrors) {
  const at::Tensor ids = ref_.at("text.input_ids"), mask = ref_.at("text.attention_mask");
  blip::test::expect_error([&] { model_->image_embeds(at::zeros({1, 3, 32, 32})); },
                           {"visual_encoder", "[B, 3, 64, 64]"});
  blip::test::expect_error([&] { model_->image_embeds(at::zeros({1, 3, 64, 64}, at::kByte)); },
                           {"visual_encoder", "floating-point"});
  blip::test::expect_error([&] { model_->text_embeds(ids.to(at::kInt), mask); },
                           {"text_encoder", "int64"});
  blip::test::expect_error([&] { model_->text_embeds(at::zeros({1, 600}, at::kLong), {}); },
                           {"text_encoder", "600", "512"});
  blip::test::expect_error([&] { model_->text_embeds(at::full({1, 3}, 40000, at::kLong), {}); },
                           {"text_encoder", "out of range"});
  blip::test::expect_error([&] { model_->text_embeds(ids, mask.narrow(1, 0, 10)); },
                           {"text_encoder", "attention_mask"});
  const at::Tensor images = model_->image_embeds(ref_.at("image"));  // batch 4, texts 6
  blip::test::expect_error([&] { model_->itm_logits(ids, mask, images); },
                           {"text_encoder", "batch 4"});
  blip::test::expect_error([&] { model_->itm_logits(ids, mask, at::zeros({6, 17, 10})); },
                           {"text_encoder", "encoder_hidden_states"});
}

}  // namespace
