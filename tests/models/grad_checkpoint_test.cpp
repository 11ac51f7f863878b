// Gradient checkpointing gives the same gradients as the plain model, with dropout active.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "blip/models/grad_checkpoint.h"
#include "blip/models/state_dict.h"
#include "blip/models/vit.h"
#include "model_test_util.h"

namespace {

blip::VitConfig dropout_vit(bool grad_ckpt) {
  blip::VitConfig c;
  c.image_size = 32;
  c.patch_size = 16;
  c.width = 16;
  c.depth = 3;
  c.heads = 2;
  c.drop_rate = 0.2;
  c.attn_drop_rate = 0.2;
  c.drop_path_rate = 0.3;
  c.grad_ckpt = grad_ckpt;
  c.ckpt_layer = 2;  // the last two blocks
  return c;
}

struct StepResult {
  at::Tensor out, input_grad;
  std::vector<at::Tensor> grads;
};

StepResult train_step(blip::models::VisionTransformer& vit, const at::Tensor& images, uint64_t seed) {
  vit->train();
  for (auto& p : vit->parameters()) p.mutable_grad() = at::Tensor();
  at::Tensor x = images.clone().requires_grad_(true);
  at::manual_seed(seed);
  at::Tensor out = vit->forward(x);
  const at::Tensor weights = at::linspace(-1, 1, out.numel()).reshape(out.sizes());
  (out * weights).sum().backward();
  StepResult r{out.detach(), x.grad(), {}};
  for (auto& p : vit->parameters()) r.grads.push_back(p.grad());
  return r;
}

TEST(GradCheckpoint, VitGradientsEqualPlainModelWithDropout) {
  at::manual_seed(0);
  blip::models::VisionTransformer plain(dropout_vit(false));
  blip::models::VisionTransformer ckpt(dropout_vit(true));
  blip::models::load_weights(*ckpt, blip::models::named_state(*plain));
  ASSERT_FALSE(plain->block(1)->grad_checkpointing());
  ASSERT_FALSE(ckpt->block(0)->grad_checkpointing());
  ASSERT_TRUE(ckpt->block(1)->grad_checkpointing());
  ASSERT_TRUE(ckpt->block(2)->grad_checkpointing());

  const at::Tensor images = at::randn({3, 3, 32, 32});
  const StepResult a = train_step(plain, images, 1234);
  const StepResult b = train_step(ckpt, images, 1234);

  // Dropout really is active: another seed gives other outputs.
  const StepResult other = train_step(plain, images, 99);
  EXPECT_GT((other.out - a.out).abs().max().item<double>(), 1e-3);

  blip::test::expect_close("output", b.out, a.out, 0, 0);
  blip::test::expect_close("input grad", b.input_grad, a.input_grad, 1e-6, 1e-6);
  ASSERT_EQ(a.grads.size(), b.grads.size());
  const auto names = plain->named_parameters();
  for (size_t i = 0; i < a.grads.size(); ++i) {
    ASSERT_TRUE(b.grads[i].defined()) << names[i].key();
    blip::test::expect_close("grad " + names[i].key(), b.grads[i], a.grads[i], 1e-6, 1e-6);
  }
}

TEST(GradCheckpoint, FunctionReplaysRandomnessAndRestoresTheStream) {
  at::manual_seed(7);
  const at::Tensor w = at::randn({8, 8}).requires_grad_(true);
  const at::Tensor x0 = at::randn({4, 8});
  auto fn = [&w](const at::Tensor& t) { return at::dropout(at::matmul(t, w), 0.5, true).tanh(); };

  at::Tensor x1 = x0.clone().requires_grad_(true);
  at::manual_seed(11);
  at::Tensor plain = fn(x1);
  plain.sum().backward();

  at::Tensor x2 = x0.clone().requires_grad_(true);
  const at::Tensor w_grad = w.grad().clone();
  w.mutable_grad() = at::Tensor();
  at::manual_seed(11);
  at::Tensor ckpt = blip::models::checkpoint(fn, x2, {w});
  ASSERT_TRUE(ckpt.grad_fn());
  EXPECT_NE(ckpt.grad_fn()->name().find("CheckpointFunction"), std::string::npos)
      << ckpt.grad_fn()->name();
  const at::Tensor state_before_backward = at::detail::getDefaultCPUGenerator().get_state();
  ckpt.sum().backward();
  // Backward replays the forward's stream but leaves the caller's stream where it was.
  EXPECT_TRUE(at::equal(at::detail::getDefaultCPUGenerator().get_state(), state_before_backward));

  EXPECT_TRUE(at::equal(ckpt.detach(), plain.detach()));
  blip::test::expect_close("x grad", x2.grad(), x1.grad(), 0, 0);
  blip::test::expect_close("w grad", w.grad(), w_grad, 0, 0);

  // In no-grad mode the function simply runs.
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(blip::models::checkpoint(fn, x0, {w}).requires_grad());
}

}  // namespace

namespace {

// Under bf16 autocast the recompute in backward must run in bf16 too (torch.utils.checkpoint
// restores the autocast state): otherwise the checkpointed blocks' gradients come from an fp32
// recompute and differ from the plain model's (found by bench_train_step).
TEST(GradCheckpoint, RecomputeKeepsTheAutocastStateOfForward) {
  at::manual_seed(0);
  auto config = [](bool ckpt) {
    blip::VitConfig c = dropout_vit(ckpt);
    c.drop_rate = c.attn_drop_rate = c.drop_path_rate = 0.0;
    return c;
  };
  blip::models::VisionTransformer plain(config(false));
  blip::models::VisionTransformer ckpt(config(true));
  blip::models::load_weights(*ckpt, blip::models::named_state(*plain));
  const at::Tensor images = at::randn({2, 3, 32, 32});
  // Forward under autocast, backward after it ended, as a training loop does.
  auto forward_then_backward = [&](blip::models::VisionTransformer& vit) {
    vit->train();
    for (auto& p : vit->parameters()) p.mutable_grad() = at::Tensor();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::increment_nesting();
    at::Tensor out = vit->forward(images);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_cpu_enabled(false);
    const at::Tensor weights = at::linspace(-1, 1, out.numel()).reshape(out.sizes());
    (out.to(at::kFloat) * weights).sum().backward();
    std::vector<at::Tensor> grads;
    for (auto& p : vit->parameters()) grads.push_back(p.grad().clone());
    return grads;
  };
  const auto a = forward_then_backward(plain);
  const auto b = forward_then_backward(ckpt);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 10u);
  for (std::size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(at::equal(a[i], b[i])) << "parameter " << i << " max diff "
                                       << (a[i] - b[i]).abs().max().item<double>();
}

}  // namespace
