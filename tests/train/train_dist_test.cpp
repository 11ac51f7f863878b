// The training step on 2 ranks over Gloo (spawned processes on 127.0.0.1): every rank starts from
// rank 0's weights, the averaged gradients are the mean of each rank's single-process gradients,
// every rank holds the same weights after the step, and negative_all_rank draws negatives from
// the global batch with the gradient flowing back through the gather.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>

#include <fstream>

#include "blip/dist/distributed.h"
#include "blip/io/safetensors.h"
#include "blip/models/factory.h"
#include "blip/models/train_forward.h"
#include "blip/retrieval/text_tensors.h"
#include "blip/text/tokenizer.h"
#include "blip/train/train_step.h"
#include "common/fixtures.h"
#include "common/worker_process.h"

namespace {

using namespace blip::test;

struct Batch {
  at::Tensor images, idx;
  std::vector<std::string> captions;
};

// The fixture's 4-image step split in two halves: rank r trains on images 2r, 2r+1.
Batch half_batch(int rank) {
  std::map<std::string, at::Tensor> ref;
  for (auto& [n, t] : blip::io::load_safetensors(blip_ref_dir() + "/train_step.safetensors")) ref[n] = t;
  std::ifstream f(blip_ref_dir() + "/train_step.json");
  const std::vector<std::string> captions = nlohmann::json::parse(f).at("captions");
  Batch b;
  b.images = ref.at("image").narrow(0, 2 * rank, 2).contiguous();
  b.idx = at::tensor({int64_t{100 + 2 * rank}, int64_t{101 + 2 * rank}});  // distinct ids
  b.captions = {captions[2 * rank], captions[2 * rank + 1]};
  return b;
}

blip::RetrievalConfig tiny_config() {
  // queue 64 is a multiple of the global batch 4; no dropout so that ranks are comparable.
  auto c = blip::load_retrieval_config(blip_ref_dir() + "/tiny_config.yaml");
  c.med.hidden_dropout_prob = 0.0;
  c.med.attention_probs_dropout_prob = 0.0;
  return c;
}

at::Tensor flat_params(blip::models::BlipRetrievalImpl& m) {
  std::vector<at::Tensor> v;
  for (const auto& p : m.parameters()) v.push_back(p.detach().reshape(-1));
  return at::cat(v);
}

at::Tensor flat_grads(blip::models::BlipRetrievalImpl& m) {
  std::vector<at::Tensor> v;
  for (const auto& p : m.parameters())
    if (p.requires_grad()) v.push_back(p.grad().defined() ? p.grad().reshape(-1) : at::zeros({p.numel()}));
  return at::cat(v);
}

// Gradients of one single-process forward on `b` with fixed negatives (within the half batch).
at::Tensor single_process_grads(const Batch& b, const blip::text::Tokenizer& tok) {
  auto model = blip::models::load_blip_retrieval(tiny_config(), blip_ref_dir() + "/tiny_checkpoint.pth");
  model->train();
  const auto t = blip::retrieval::tokenize_to_tensors(tok, b.captions);
  const blip::models::ItmNegatives neg{at::tensor({int64_t{1}, int64_t{0}}), at::tensor({int64_t{1}, int64_t{0}})};
  const auto out = blip::models::train_forward(*model, b.images, t.input_ids, t.attention_mask, b.idx, 0.4,
                                               tok.enc_id(), &neg);
  (out.loss_ita + out.loss_itm).backward();
  return flat_grads(*model);
}

TEST(TrainDistWorker, StepOnTwoRanks) {
  if (!is_worker()) GTEST_SKIP() << "runs only as a spawned rank";
  blip::dist::DistOptions opt;
  opt.timeout = worker_timeout();
  const auto dist = blip::dist::init_distributed(opt);
  ASSERT_EQ(dist.world_size(), 2);
  const int rank = dist.rank();
  const auto tok = blip::text::load_tokenizer(tiny_config().tokenizer);

  auto model = blip::models::load_blip_retrieval(tiny_config(), blip_ref_dir() + "/tiny_checkpoint.pth");
  model->train();
  const at::Tensor reference = flat_params(*model);
  {  // rank 1 starts from other weights: the broadcast must replace them with rank 0's
    torch::NoGradGuard g;
    if (rank == 1)
      for (auto& p : model->parameters()) p.add_(0.5);
  }
  blip::train::broadcast_model_state(*model, dist);
  EXPECT_TRUE(at::equal(flat_params(*model), reference)) << "rank " << rank;

  torch::optim::AdamW adamw(model->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.05));
  blip::train::TrainStepper stepper(*model, adamw, *tok, blip::train::StepOptions{}, dist);
  const Batch b = half_batch(rank);
  const blip::models::ItmNegatives neg{at::tensor({int64_t{1}, int64_t{0}}), at::tensor({int64_t{1}, int64_t{0}})};
  stepper.step(blip::train::StepInputs{b.images, b.captions, b.idx, 0.4, &neg});

  // Averaged gradients = the mean of both halves' single-process gradients.
  const at::Tensor expected = (single_process_grads(half_batch(0), *tok) + single_process_grads(half_batch(1), *tok)) / 2;
  const at::Tensor got = flat_grads(*model);
  const double err = (got - expected).abs().max().item<double>();
  EXPECT_LT(err, 1e-5) << "rank " << rank;
  // Every rank holds the same weights after the step, and the queues took both ranks' features.
  const at::Tensor all = dist.all_gather(flat_params(*model).unsqueeze(0));
  EXPECT_TRUE(at::equal(all[0], all[1]));
  EXPECT_EQ(model->ptr_queue.item<int64_t>(), (60 + 4) % 64);
  EXPECT_TRUE(at::equal(model->idx_queue.narrow(1, 60, 4).reshape(-1), at::tensor({100L, 101L, 102L, 103L})))
      << model->idx_queue;

  // negative_all_rank: negatives indexed into the global batch of 4, gradient through the gather.
  blip::train::TrainStepper all_rank(*model, adamw, *tok, blip::train::StepOptions{c10::kCPU, at::kFloat, true}, dist);
  at::manual_seed(11 + rank);
  const auto r = all_rank.step(blip::train::StepInputs{b.images, b.captions, b.idx, 0.4, nullptr});
  EXPECT_EQ(r.negatives.image_for_text.numel(), 2);
  EXPECT_TRUE((r.negatives.image_for_text < 4).all().item<bool>());
  EXPECT_TRUE((r.negatives.text_for_image < 4).all().item<bool>());
  const at::Tensor after = dist.all_gather(flat_params(*model).unsqueeze(0));
  EXPECT_TRUE(at::equal(after[0], after[1]));
  std::printf("  [rank %d] grad max err %.2e, weights equal on both ranks\n", rank, err);
}

TEST(TrainDist, TwoRanksOverGloo) {
  BLIP_REQUIRE_FIXTURES();
  const int port = unused_loopback_port();
  ASSERT_GT(port, 0);
  std::vector<Child> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.push_back(spawn_worker("TrainDistWorker.StepOnTwoRanks", rank_env(r, 2, port, "", 30000)));
  EXPECT_TRUE(wait_all(ranks, 120));
}

}  // namespace
