// Loading a checkpoint skips BLIP's random initialisation (NoRandomInit) and gives exactly the
// model that initialising and then loading gives; our Linear draws torch.nn.Linear's numbers.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/nn/modules/linear.h>

#include "blip/io/checkpoint.h"
#include "blip/models/factory.h"
#include "blip/models/linear.h"
#include "blip/models/random_init.h"
#include "blip/models/state_dict.h"
#include "common/fixtures.h"
#include "model_test_util.h"

namespace {

TEST(Linear, InitialisesAndComputesAsTorchLinear) {
  for (const bool bias : {true, false}) {
    at::manual_seed(11);
    torch::nn::Linear theirs(torch::nn::LinearOptions(24, 40).bias(bias));
    const float after_theirs = at::rand({1}).item<float>();
    at::manual_seed(11);
    blip::models::Linear ours(torch::nn::LinearOptions(24, 40).bias(bias));
    const float after_ours = at::rand({1}).item<float>();
    EXPECT_TRUE(at::equal(ours->weight, theirs->weight)) << "bias " << bias;
    ASSERT_EQ(ours->bias.defined(), bias);
    if (bias) {
      EXPECT_TRUE(at::equal(ours->bias, theirs->bias));
    }
    EXPECT_EQ(after_ours, after_theirs) << "the two drew different amounts of random numbers";
    const at::Tensor x = at::randn({3, 5, 24});
    EXPECT_TRUE(at::equal(ours->forward(x), theirs->forward(x)));
    EXPECT_EQ(ours->named_parameters().size(), theirs->named_parameters().size());
    EXPECT_TRUE(ours->weight.requires_grad());
  }
}

TEST(NoRandomInit, SkipsBlipsInitAndKeepsDeterministicValues) {
  BLIP_REQUIRE_FIXTURES();
  const auto config = blip::load_retrieval_config(blip::test::tiny_config_path());
  at::manual_seed(5);
  auto initialised = blip::models::make_blip_retrieval(config, /*with_momentum=*/true);
  const float after_init = at::rand({1}).item<float>();
  at::manual_seed(5);
  blip::models::BlipRetrieval model{nullptr};
  {
    blip::models::NoRandomInit no_init;
    EXPECT_FALSE(blip::models::random_init_enabled());
    model = blip::models::make_blip_retrieval(config, /*with_momentum=*/true);
  }
  EXPECT_TRUE(blip::models::random_init_enabled());
  // Far fewer random numbers were drawn (only torch's own Embedding and Conv2d init remain).
  EXPECT_NE(at::rand({1}).item<float>(), after_init);
  EXPECT_TRUE(at::equal(model->text_encoder->embeddings->position_ids, initialised->text_encoder->embeddings->position_ids));
  EXPECT_TRUE(at::equal(model->idx_queue, initialised->idx_queue));
  EXPECT_EQ(model->ptr_queue.item<int64_t>(), 0);
  EXPECT_TRUE(at::equal(model->temp, initialised->temp));
  EXPECT_TRUE(at::equal(model->visual_encoder->norm->weight, initialised->visual_encoder->norm->weight));
  for (const auto& p : model->visual_encoder_m->parameters()) EXPECT_FALSE(p.requires_grad());
}

TEST(NoRandomInit, LoadingLeavesTheRandomGeneratorAsItWas) {
  BLIP_REQUIRE_FIXTURES();
  const auto config = blip::load_retrieval_config(blip::test::tiny_config_path());
  at::manual_seed(5);
  const float first_draw = at::rand({1}).item<float>();
  at::manual_seed(5);
  auto model = blip::models::load_blip_retrieval(config, blip::test::tiny_checkpoint_path());
  EXPECT_EQ(at::rand({1}).item<float>(), first_draw);
}

TEST(NoRandomInit, LoadedModelEqualsInitialisedThenLoaded) {
  BLIP_REQUIRE_FIXTURES();
  const auto config = blip::load_retrieval_config(blip::test::tiny_config_path());
  const std::string ckpt = blip::test::tiny_checkpoint_path();
  for (const bool momentum : {true, false}) {
    auto loaded = blip::models::load_blip_retrieval(config, ckpt, {}, momentum);
    auto reference = blip::models::make_blip_retrieval(config, momentum);
    blip::models::LoadOptions options;
    if (!momentum) options.ignore_prefixes = blip::models::momentum_state_prefixes();
    blip::models::load_weights(*reference, blip::io::load_model_tensors(ckpt), options);
    const auto mine = blip::models::named_state(*loaded), want = blip::models::named_state(*reference);
    ASSERT_EQ(mine.size(), want.size());
    ASSERT_GT(mine.size(), 90u);
    for (size_t i = 0; i < mine.size(); ++i)
      EXPECT_TRUE(at::equal(mine[i].second, want[i].second)) << mine[i].first << " momentum " << momentum;
  }
}

TEST(NoRandomInit, WhatACheckpointLacksKeepsBlipsInit) {
  BLIP_REQUIRE_FIXTURES();
  const auto config = blip::load_retrieval_config(blip::test::tiny_config_path());
  blip::io::NamedTensors partial;
  for (auto& [name, t] : blip::io::load_model_tensors(blip::test::tiny_checkpoint_path()))
    if (name.rfind("itm_head.", 0) != 0) partial.emplace_back(name, t);
  ASSERT_GT(partial.size(), 100u);
  const std::string path = blip::test::temp_dir() + "/no_itm_head.pth";
  blip::io::save_pth(path, partial, nlohmann::json::object());

  at::manual_seed(9);
  auto initialised = blip::models::make_blip_retrieval(config);
  blip::models::LoadOptions options;
  options.strict = false;
  at::manual_seed(9);
  blip::models::LoadReport report;
  auto loaded = blip::models::load_blip_retrieval(config, path, options, true, &report);
  ASSERT_EQ(report.missing, (std::vector<std::string>{"itm_head.weight", "itm_head.bias"}));
  EXPECT_TRUE(at::equal(loaded->itm_head->weight, initialised->itm_head->weight));
  EXPECT_TRUE(at::equal(loaded->itm_head->bias, initialised->itm_head->bias));
  for (const auto& [name, t] : partial)
    if (name == "text_proj.weight") {
      EXPECT_TRUE(at::equal(loaded->text_proj->weight, t));
    }
}

}  // namespace
