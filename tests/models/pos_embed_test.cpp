// Position-embedding interpolation when the image size differs from the checkpoint's
// (blip_ref/posembed, README section 3.8).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "blip/error.h"
#include "blip/models/factory.h"
#include "blip/models/pos_embed.h"
#include "common/fixtures.h"
#include "model_test_util.h"

namespace {

using blip::test::expect_close;

TEST(PosEmbed, LoadingAtAnotherImageSizeInterpolatesLikeBlip) {
  BLIP_REQUIRE_FIXTURES();
  const auto ref = blip::test::load_fixture(blip::test::blip_ref_dir() + "/posembed/posembed.safetensors");
  const blip::RetrievalConfig config =
      blip::load_retrieval_config(blip::test::tiny_config_path(), {{"image_size", "96"}});
  for (bool strict : {true, false}) {
    SCOPED_TRACE(strict ? "strict" : "non-strict");
    blip::models::LoadOptions options;
    options.strict = strict;
    blip::models::LoadReport report;
    auto model = blip::models::load_blip_retrieval(config, blip::test::tiny_checkpoint_path(),
                                                   options, true, &report);
    model->eval();
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(report.complete()) << report.describe();
    EXPECT_EQ(report.interpolated,
              (std::vector<std::string>{"visual_encoder.pos_embed", "visual_encoder_m.pos_embed"}));
    expect_close("pos_embed_interp", model->visual_encoder->pos_embed, ref.at("pos_embed_interp"));
    expect_close("pos_embed_m_interp", model->visual_encoder_m->pos_embed,
                 ref.at("pos_embed_m_interp"));
    const at::Tensor out = model->image_embeds(ref.at("image"));
    expect_close("vit_out", out, ref.at("vit_out"));
    expect_close("image_feat", model->image_feat(out), ref.at("image_feat"));
  }
}

TEST(PosEmbed, SameGridIsUnchangedAndCheckpointEmbeddingIsKept) {
  BLIP_REQUIRE_FIXTURES();
  const auto ref = blip::test::load_fixture(blip::test::blip_ref_dir() + "/posembed/posembed.safetensors");
  const at::Tensor ckpt = ref.at("pos_embed_ckpt");
  EXPECT_TRUE(blip::models::interpolate_pos_embed(ckpt, 16).is_same(ckpt));
  const at::Tensor resized = blip::models::interpolate_pos_embed(ckpt, 36);
  expect_close("interpolate_pos_embed(ckpt, 36)", resized, ref.at("pos_embed_interp"));
  // The CLS token is copied, not interpolated.
  EXPECT_TRUE(at::equal(resized.narrow(1, 0, 1), ckpt.narrow(1, 0, 1)));
}

TEST(PosEmbed, NonSquareGridsAreErrors) {
  const at::Tensor pe = at::zeros({1, 1 + 15, 8});
  try {
    blip::models::interpolate_pos_embed(pe, 16, 1, "ckpt.pth");
    FAIL() << "expected blip::Error";
  } catch (const blip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt.pth"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a square"), std::string::npos) << e.what();
  }
  EXPECT_THROW(blip::models::interpolate_pos_embed(at::zeros({1, 17, 8}), 15), blip::Error);
  EXPECT_THROW(blip::models::interpolate_pos_embed(at::zeros({17, 8}), 16), blip::Error);
}

}  // namespace
