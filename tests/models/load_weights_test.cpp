// Strict and non-strict loading: every missing, unexpected and shape-mismatched key is named;
// strict loading changes nothing on error; non-strict follows BLIP's load_checkpoint.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "blip/error.h"
#include "blip/io/checkpoint.h"
#include "blip/models/factory.h"
#include "blip/models/state_dict.h"
#include "common/fixtures.h"
#include "model_test_util.h"

namespace {

using blip::models::LoadOptions;
using blip::test::expect_error;

// The tiny checkpoint's state, edited: one key dropped, one added, one with another shape.
blip::io::NamedTensors edited_state(const blip::models::BlipRetrieval& source) {
  blip::io::NamedTensors state;
  for (auto& [name, t] : blip::models::named_state(*source)) {
    if (name == "text_encoder.encoder.layer.1.output.dense.bias") continue;  // missing
    if (name == "vision_proj.weight") {
      state.emplace_back(name, at::zeros({3, 3}));  // mismatched
      continue;
    }
    state.emplace_back(name, t.clone());
  }
  state.emplace_back("text_encoder.pooler.dense.weight", at::zeros({2, 2}));  // unexpected
  state.emplace_back("visual_encoder.head.bias", at::zeros({2}));             // unexpected
  return state;
}

class LoadWeights : public ::testing::Test {
 protected:
  void SetUp() override {
    BLIP_REQUIRE_FIXTURES();
    config_ = blip::load_retrieval_config(blip::test::tiny_config_path());
    reference_ = blip::test::load_tiny_model();
  }
  blip::RetrievalConfig config_;
  blip::models::BlipRetrieval reference_{nullptr};
};

TEST_F(LoadWeights, TinyCheckpointLoadsCompletelyAndStrictly) {
  blip::models::LoadReport report;
  auto model = blip::models::load_blip_retrieval(config_, blip::test::tiny_checkpoint_path(), {},
                                                 true, &report);
  EXPECT_TRUE(report.complete()) << report.describe();
  EXPECT_EQ(report.loaded, 189u);
  EXPECT_TRUE(report.interpolated.empty());
  // Spot checks of values the checkpoint holds (README 3.1).
  EXPECT_NEAR(model->temp.item<float>(), 0.0501f, 5e-5);
  EXPECT_EQ(model->ptr_queue.item<int64_t>(), config_.queue_size - 4);
  EXPECT_EQ(model->idx_queue.scalar_type(), at::kLong);
  EXPECT_TRUE(at::equal(model->text_encoder->embeddings->position_ids,
                        at::arange(512, at::kLong).unsqueeze(0)));
  // Momentum parameters stay frozen after loading.
  for (const auto& p : model->visual_encoder_m->parameters()) EXPECT_FALSE(p.requires_grad());
  for (const auto& p : model->visual_encoder->parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST_F(LoadWeights, NamedStateListsKeysInCheckpointOrder) {
  // BLIP's state_dict() order, as torch.save wrote it.
  const auto ckpt = blip::io::load_model_tensors(blip::test::tiny_checkpoint_path());
  const auto mine = blip::models::named_state(*reference_);
  ASSERT_EQ(mine.size(), ckpt.size());
  for (size_t i = 0; i < mine.size(); ++i) {
    EXPECT_EQ(mine[i].first, ckpt[i].first) << "entry " << i;
    EXPECT_EQ(mine[i].second.scalar_type(), ckpt[i].second.scalar_type()) << ckpt[i].first;
    EXPECT_TRUE(at::equal(mine[i].second, ckpt[i].second)) << ckpt[i].first;
  }
}

TEST_F(LoadWeights, StrictErrorListsEveryProblemAndLoadsNothing) {
  auto model = blip::models::make_blip_retrieval(config_);
  const at::Tensor before = model->text_proj->weight.clone();
  LoadOptions options;
  options.source = "edited_checkpoint.pth";
  expect_error([&] { blip::models::load_weights(*model, edited_state(reference_), options); },
               {"edited_checkpoint.pth", "strict", "missing keys (1)",
                "text_encoder.encoder.layer.1.output.dense.bias", "unexpected keys (2)",
                "text_encoder.pooler.dense.weight", "visual_encoder.head.bias",
                "shape mismatches (1)", "vision_proj.weight (checkpoint [3, 3], model [16, 64])"});
  EXPECT_TRUE(at::equal(model->text_proj->weight, before));  // nothing was copied
}

TEST_F(LoadWeights, NonStrictReportsAndDropsLikeBlip) {
  auto model = blip::models::make_blip_retrieval(config_);
  const at::Tensor vision_proj_before = model->vision_proj->weight.clone();
  const at::Tensor bias_before = model->text_encoder->encoder->layers[1]->output->dense->bias.clone();
  LoadOptions options;
  options.strict = false;
  options.source = "edited_checkpoint.pth";
  const auto report = blip::models::load_weights(*model, edited_state(reference_), options);
  EXPECT_FALSE(report.complete());
  EXPECT_EQ(report.missing, std::vector<std::string>{"text_encoder.encoder.layer.1.output.dense.bias"});
  EXPECT_EQ(report.unexpected, (std::vector<std::string>{"text_encoder.pooler.dense.weight",
                                                         "visual_encoder.head.bias"}));
  ASSERT_EQ(report.mismatched.size(), 1u);
  EXPECT_EQ(report.mismatched[0].name, "vision_proj.weight");
  EXPECT_EQ(report.mismatched[0].checkpoint_shape, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(report.mismatched[0].model_shape, (std::vector<int64_t>{16, 64}));
  EXPECT_EQ(report.loaded, 189u - 2u);
  const std::string text = report.describe();
  for (const char* needle : {"edited_checkpoint.pth", "missing (1)", "unexpected (2)",
                             "shape mismatch (1)", "vision_proj.weight"})
    EXPECT_NE(text.find(needle), std::string::npos) << text;
  // Dropped and missing keys keep their values; the rest is the checkpoint's.
  EXPECT_TRUE(at::equal(model->vision_proj->weight, vision_proj_before));
  EXPECT_TRUE(at::equal(model->text_encoder->encoder->layers[1]->output->dense->bias, bias_before));
  EXPECT_TRUE(at::equal(model->text_proj->weight, reference_->text_proj->weight));
  EXPECT_TRUE(at::equal(model->image_queue, reference_->image_queue));
}

TEST_F(LoadWeights, InferenceOnlyModelIgnoresMomentumState) {
  blip::models::LoadReport report;
  auto model = blip::models::load_blip_retrieval(config_, blip::test::tiny_checkpoint_path(), {},
                                                 /*with_momentum=*/false, &report);
  EXPECT_TRUE(report.complete()) << report.describe();
  EXPECT_FALSE(report.ignored.empty());
  EXPECT_EQ(report.loaded + report.ignored.size(), 189u);
  EXPECT_FALSE(model->visual_encoder_m);
  EXPECT_TRUE(at::equal(model->itm_head->weight, reference_->itm_head->weight));
}

TEST_F(LoadWeights, BadCheckpointPathsAreErrors) {
  expect_error([&] { blip::models::load_blip_retrieval(config_, "/nonexistent/model.pth"); },
               {"/nonexistent/model.pth", "not found"});
  expect_error(
      [&] { blip::models::load_blip_retrieval(config_, "https://example.com/model_base.pth"); },
      {"https://example.com/model_base.pth", "download"});
  blip::RetrievalConfig no_ckpt = config_;
  no_ckpt.pretrained.clear();
  expect_error([&] { blip::models::load_blip_retrieval(no_ckpt); }, {"pretrained"});
}

}  // namespace
