// One training step of BLIP_Retrieval.forward against BLIP's own (blip_ref/train_step.safetensors,
// README section 3.7): features, similarities, targets, chosen negatives, losses, queue update,
// momentum update, gradients, and an AdamW step on top.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <map>

#include "blip/error.h"
#include "blip/models/factory.h"
#include "blip/models/state_dict.h"
#include "blip/models/train_forward.h"
#include "common/fixtures.h"
#include "model_test_util.h"

namespace {

using blip::test::expect_close;
constexpr int64_t kEncTokenId = 30523;
constexpr uint64_t kMultinomialSeed = 2;  // torch.manual_seed(seed + 2) right before forward

class TrainStep : public ::testing::Test {
 protected:
  void SetUp() override {
    BLIP_REQUIRE_FIXTURES();
    ref_ = blip::test::load_fixture(blip::test::blip_ref_dir() + "/train_step.safetensors");
    blip::RetrievalConfig config = blip::load_retrieval_config(blip::test::tiny_config_path());
    config.med.hidden_dropout_prob = 0.0;  // the fixture's train step runs without dropout
    config.med.attention_probs_dropout_prob = 0.0;
    model_ = blip::models::load_blip_retrieval(config, blip::test::tiny_checkpoint_path());
    model_->train();
    for (const auto& e : blip::models::state_entries(*model_)) state_[e.name] = e.tensor;
  }
  blip::models::TrainForward run(const blip::models::ItmNegatives* replay = nullptr) {
    at::manual_seed(kMultinomialSeed);
    return blip::models::train_forward(*model_, ref_.at("image"), ref_.at("input_ids"),
                                       ref_.at("attention_mask"), ref_.at("idx"),
                                       ref_.at("alpha").item<double>(), kEncTokenId, replay);
  }
  std::map<std::string, at::Tensor> ref_;
  std::map<std::string, at::Tensor> state_;
  blip::models::BlipRetrieval model_{nullptr};
};

TEST_F(TrainStep, ForwardBackwardAndAdamWMatchBlip) {
  for (const char* q : {"image_queue", "text_queue", "idx_queue", "ptr_queue"})
    ASSERT_TRUE(at::equal(state_.at(q), ref_.at(std::string("before.") + q))) << q;

  const auto out = run();
  // The negatives come from the same generator stream as in BLIP.
  EXPECT_TRUE(at::equal(out.negatives.image_for_text, ref_.at("neg.image_idx")))
      << out.negatives.image_for_text;
  EXPECT_TRUE(at::equal(out.negatives.text_for_image, ref_.at("neg.text_idx")))
      << out.negatives.text_for_image;
  expect_close("neg.weights_t2i", out.weights_t2i, ref_.at("neg.weights_t2i"));
  expect_close("neg.weights_i2t", out.weights_i2t, ref_.at("neg.weights_i2t"));

  expect_close("fwd.image_embeds", out.image_embeds, ref_.at("fwd.image_embeds"));
  expect_close("fwd.image_embeds_m", out.image_embeds_m, ref_.at("fwd.image_embeds_m"));
  expect_close("fwd.image_feat", out.image_feat, ref_.at("fwd.image_feat"));
  expect_close("fwd.image_feat_m", out.image_feat_m, ref_.at("fwd.image_feat_m"));
  expect_close("fwd.text_feat", out.text_feat, ref_.at("fwd.text_feat"));
  expect_close("fwd.text_feat_m", out.text_feat_m, ref_.at("fwd.text_feat_m"));
  expect_close("fwd.text_last_hidden", out.text_hidden, ref_.at("fwd.text_last_hidden"));
  expect_close("fwd.text_last_hidden_m", out.text_hidden_m, ref_.at("fwd.text_last_hidden_m"));
  expect_close("fwd.itm_pos_last_hidden", out.itm_pos_hidden, ref_.at("fwd.itm_pos_last_hidden"));
  expect_close("fwd.itm_neg_last_hidden", out.itm_neg_hidden, ref_.at("fwd.itm_neg_last_hidden"));
  expect_close("fwd.vl_output", out.vl_output, ref_.at("fwd.vl_output"));
  EXPECT_TRUE(at::equal(out.itm_labels, ref_.at("derived.itm_labels")));
  expect_close("derived.sim_targets", out.sim_targets, ref_.at("derived.sim_targets"), 0, 0);
  for (const char* n : {"sim_i2t", "sim_t2i", "sim_i2t_m", "sim_t2i_m", "sim_i2t_targets",
                        "sim_t2i_targets"}) {
    const at::Tensor mine = std::string(n) == "sim_i2t"     ? out.sim_i2t
                            : std::string(n) == "sim_t2i"   ? out.sim_t2i
                            : std::string(n) == "sim_i2t_m" ? out.sim_i2t_m
                            : std::string(n) == "sim_t2i_m" ? out.sim_t2i_m
                            : std::string(n) == "sim_i2t_targets" ? out.sim_i2t_targets
                                                                  : out.sim_t2i_targets;
    expect_close(std::string("derived.") + n, mine, ref_.at(std::string("derived.") + n));
  }
  expect_close("loss_ita", out.loss_ita, ref_.at("loss_ita"), 0, 1e-5);
  expect_close("loss_itm", out.loss_itm, ref_.at("loss_itm"), 0, 1e-5);

  // Queues written at [ptr, ptr + B), pointer wrapped; momentum parameters updated.
  expect_close("after.image_queue", model_->image_queue, ref_.at("after.image_queue"));
  expect_close("after.text_queue", model_->text_queue, ref_.at("after.text_queue"));
  EXPECT_TRUE(at::equal(model_->idx_queue, ref_.at("after.idx_queue")));
  EXPECT_TRUE(at::equal(model_->ptr_queue, ref_.at("after.ptr_queue")));
  size_t momentum = 0;
  for (const auto& [key, value] : ref_)
    if (key.rfind("after_momentum.", 0) == 0) {
      ++momentum;
      expect_close(key, state_.at(key.substr(15)), value, 1e-6, 1e-6);
    }
  EXPECT_GE(momentum, 9u);  // a renamed fixture key must not pass as "nothing to compare"


  // Gradients.
  (out.loss_ita + out.loss_itm).backward();
  size_t grads = 0;
  for (const auto& [key, value] : ref_)
    if (key.rfind("grad.", 0) == 0) {
      ++grads;
      expect_close(key, state_.at(key.substr(5)).grad(), value, 1e-4, 1e-4);
    }
  EXPECT_GE(grads, 14u);
  const at::Tensor rows = ref_.at("word_emb_rows");
  const at::Tensor word = state_.at("text_encoder.embeddings.word_embeddings.weight");
  expect_close("grad_rows.word_embeddings", word.grad().index_select(0, rows),
               ref_.at("grad_rows.text_encoder.embeddings.word_embeddings.weight"), 1e-4, 1e-4);

  // torch.optim.AdamW(lr 1e-4, weight_decay 0.05), fresh state, one step.
  torch::optim::AdamW adamw(model_->parameters(),
                            torch::optim::AdamWOptions(1e-4).weight_decay(0.05));
  adamw.step();
  size_t stepped = 0;
  for (const auto& [key, value] : ref_)
    if (key.rfind("after_step.", 0) == 0) {
      ++stepped;
      expect_close(key, state_.at(key.substr(11)), value, 1e-6, 1e-5);
    }
  EXPECT_GE(stepped, 14u);
  expect_close("after_step_rows.word_embeddings", word.index_select(0, rows),
               ref_.at("after_step_rows.text_encoder.embeddings.word_embeddings.weight"), 1e-6, 1e-5);
}

TEST_F(TrainStep, ReplayedNegativesGiveTheSameLosses) {
  const blip::models::ItmNegatives replay{ref_.at("neg.image_idx"), ref_.at("neg.text_idx")};
  const auto out = run(&replay);
  expect_close("loss_ita", out.loss_ita, ref_.at("loss_ita"), 0, 1e-5);
  expect_close("loss_itm", out.loss_itm, ref_.at("loss_itm"), 0, 1e-5);
}

TEST_F(TrainStep, OneDistinctIdxCannotDrawNegatives) {
  at::manual_seed(kMultinomialSeed);
  blip::test::expect_error(
      [&] {
        blip::models::train_forward(*model_, ref_.at("image"), ref_.at("input_ids"),
                                    ref_.at("attention_mask"), at::full({4}, 5, at::kLong), 0.4,
                                    kEncTokenId);
      },
      {"hard negative"});
}

}  // namespace

// At temp 0.001 a row's candidates can all underflow next to the masked positive: BLIP's
// multinomial fails there. The draw takes the softmax over the candidates instead, which puts
// (almost) all the mass on the hardest negative — the limit of BLIP's distribution.
TEST(HardNegatives, UnderflowedRowIsDrawnFromTheCandidates) {
  const at::Tensor sims = at::tensor({1.0, 0.2, -0.5, 0.1, 1.0, 0.3, -1.0, 0.0, 1.0}, at::kFloat).view({3, 3});
  const at::Tensor logits = sims / 0.001;
  const at::Tensor same = at::eye(3, at::kBool);
  const at::Tensor weights = at::softmax(logits, 1).masked_fill(same, 0);
  ASSERT_EQ(weights.sum(1).eq(0).sum().item<int64_t>(), 3) << "every row must underflow: " << weights;
  at::manual_seed(0);
  const at::Tensor picks = blip::models::draw_hard_negatives(weights, logits, same);
  ASSERT_EQ(picks.numel(), 3);
  EXPECT_EQ(picks[0].item<int64_t>(), 1);  // 0.2 beats -0.5 by 700 / temp units
  EXPECT_EQ(picks[1].item<int64_t>(), 2);
  EXPECT_EQ(picks[2].item<int64_t>(), 1);
}

TEST(HardNegatives, RegularRowsDrawFromBlipsWeights) {
  // Rows that did not underflow keep BLIP's weights: a zero weight is never drawn.
  const at::Tensor weights = at::tensor({0.0, 0.0, 1.0, 0.5, 0.0, 0.5}, at::kFloat).view({2, 3});
  const at::Tensor logits = at::zeros({2, 3});
  const at::Tensor same = at::zeros({2, 3}, at::kBool);
  for (int seed = 0; seed < 20; ++seed) {
    at::manual_seed(seed);
    const at::Tensor picks = blip::models::draw_hard_negatives(weights, logits, same);
    EXPECT_EQ(picks[0].item<int64_t>(), 2);
    EXPECT_NE(picks[1].item<int64_t>(), 1);
  }
}

TEST(HardNegatives, NonFiniteWeightsNameTheDivergence) {
  const at::Tensor weights = at::tensor({0.5, NAN}, at::kFloat).view({1, 2});
  blip::test::expect_error(
      [&] { blip::models::draw_hard_negatives(weights, at::zeros({1, 2}), at::zeros({1, 2}, at::kBool)); },
      {"not finite", "diverged"});
}
