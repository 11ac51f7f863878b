// GradScaler on CPU: the pass-through when disabled, the update rule, skipping non-finite steps,
// the stage errors and the state dict.
#include "blip/train/grad_scaler.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/sgd.h>

#include <cfloat>
#include <limits>

#include "common/expect_error.h"

namespace {

using blip::train::GradScaler;
using blip::train::GradScalerOptions;
using blip::train::next_scale;

// One parameter w (3 values) trained by SGD with lr 1 on loss = sum(w * x), so grad = x.
struct Problem {
  at::Tensor w = at::tensor({1.0f, 2.0f, 3.0f}).requires_grad_(true);
  at::Tensor x = at::tensor({0.5f, -1.0f, 0.25f});
  torch::optim::SGD sgd{std::vector<at::Tensor>{w}, torch::optim::SGDOptions(1.0)};
  at::Tensor loss() { return (w * x).sum(); }
};

TEST(GradScaler, DisabledIsAPassThrough) {
  GradScalerOptions o;
  o.enabled = false;
  GradScaler scaler(o);
  Problem p;
  const at::Tensor loss = p.loss();
  const at::Tensor scaled = scaler.scale(loss);
  EXPECT_TRUE(scaled.is_same(loss));
  scaled.backward();
  scaler.unscale_(p.sgd);  // nothing to do
  EXPECT_TRUE(at::equal(p.w.grad(), p.x));
  EXPECT_TRUE(scaler.step(p.sgd));
  scaler.update();
  EXPECT_TRUE(at::allclose(p.w.detach(), at::tensor({0.5f, 3.0f, 2.75f})));
  EXPECT_EQ(scaler.get_scale(), 1.0);
  EXPECT_EQ(scaler.get_growth_tracker(), 0);
}

TEST(GradScaler, UpdateRule) {
  GradScalerOptions o;  // growth 2, backoff 0.5, interval 2000
  auto u = next_scale(65536.0f, 0, false, o);
  EXPECT_EQ(u.scale, 65536.0f);
  EXPECT_EQ(u.growth_tracker, 1);
  u = next_scale(65536.0f, 1998, false, o);
  EXPECT_EQ(u.scale, 65536.0f);
  EXPECT_EQ(u.growth_tracker, 1999);
  u = next_scale(65536.0f, 1999, false, o);  // the 2000th finite step in a row
  EXPECT_EQ(u.scale, 131072.0f);
  EXPECT_EQ(u.growth_tracker, 0);
  u = next_scale(65536.0f, 1999, true, o);  // inf/NaN: back off, restart the streak
  EXPECT_EQ(u.scale, 32768.0f);
  EXPECT_EQ(u.growth_tracker, 0);
  u = next_scale(FLT_MAX, 1999, false, o);  // growing would overflow fp32: keep the scale
  EXPECT_EQ(u.scale, FLT_MAX);
  EXPECT_EQ(u.growth_tracker, 0);
}

TEST(GradScaler, ScalesUnscalesStepsAndGrowsOnCpu) {
  GradScalerOptions o;
  o.init_scale = 1024.0;
  o.growth_interval = 2;
  GradScaler scaler(o);
  Problem p;
  EXPECT_EQ(scaler.get_scale(), 1024.0);

  const at::Tensor scaled = scaler.scale(p.loss());
  EXPECT_FLOAT_EQ(scaled.item<float>(), 1024.0f * p.loss().item<float>());
  scaled.backward();
  EXPECT_TRUE(at::equal(p.w.grad(), p.x * 1024.0f));
  scaler.unscale_(p.sgd);
  EXPECT_TRUE(at::equal(p.w.grad(), p.x));  // exact: 1/1024 is a power of two
  EXPECT_TRUE(scaler.step(p.sgd));          // does not unscale again
  EXPECT_TRUE(at::equal(p.w.detach(), at::tensor({0.5f, 3.0f, 2.75f})));
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 1024.0);
  EXPECT_EQ(scaler.get_growth_tracker(), 1);

  p.sgd.zero_grad();
  scaler.scale(p.loss()).backward();
  EXPECT_TRUE(scaler.step(p.sgd));  // unscales itself
  EXPECT_TRUE(at::equal(p.w.detach(), at::tensor({0.0f, 4.0f, 2.5f})));
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 2048.0);  // two finite steps in a row
  EXPECT_EQ(scaler.get_growth_tracker(), 0);
}

TEST(GradScaler, SkipsTheStepAndBacksOffOnInfOrNan) {
  for (const float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    GradScaler scaler;
    Problem p;
    scaler.scale(p.loss()).backward();
    p.w.mutable_grad()[1] = bad;
    const at::Tensor before = p.w.detach().clone();
    EXPECT_FALSE(scaler.step(p.sgd));
    EXPECT_TRUE(at::equal(p.w.detach(), before)) << bad;
    scaler.update();
    EXPECT_EQ(scaler.get_scale(), 32768.0) << bad;
    EXPECT_EQ(scaler.get_growth_tracker(), 0);
    // The next finite iteration steps again.
    p.sgd.zero_grad();
    scaler.scale(p.loss()).backward();
    EXPECT_TRUE(scaler.step(p.sgd));
    scaler.update();
    EXPECT_EQ(scaler.get_growth_tracker(), 1);
  }
}

TEST(GradScaler, StageErrors) {
  GradScaler scaler;
  Problem p;
  blip::test::expect_error([&] { scaler.unscale_(p.sgd); }, {"GradScaler", "before scale()"});
  scaler.scale(p.loss()).backward();
  blip::test::expect_error([&] { scaler.update(); }, {"GradScaler", "update()"});
  scaler.unscale_(p.sgd);
  blip::test::expect_error([&] { scaler.unscale_(p.sgd); }, {"GradScaler", "already been called"});
  scaler.step(p.sgd);
  blip::test::expect_error([&] { scaler.step(p.sgd); }, {"GradScaler", "step() has already been called"});
  blip::test::expect_error([&] { scaler.unscale_(p.sgd); }, {"GradScaler", "after step()"});
  scaler.update();
  EXPECT_EQ(scaler.get_growth_tracker(), 1);

  at::Tensor h = at::ones({2}, at::kHalf).requires_grad_(true);
  torch::optim::SGD half_sgd({h}, torch::optim::SGDOptions(0.1));
  h.mutable_grad() = at::ones({2}, at::kHalf);
  scaler.scale(p.loss());
  blip::test::expect_error([&] { scaler.unscale_(half_sgd); }, {"GradScaler", "fp16 gradients"});

  GradScalerOptions bad;
  bad.backoff_factor = 1.5;
  blip::test::expect_error([&] { GradScaler s(bad); }, {"GradScaler", "backoff_factor"});
  bad = {};
  bad.growth_factor = 1.0;
  blip::test::expect_error([&] { GradScaler s(bad); }, {"GradScaler", "growth_factor"});
}

TEST(GradScaler, StateDictRoundTrip) {
  GradScalerOptions o;
  o.growth_interval = 3;
  GradScaler a(o);
  Problem p;
  for (int i = 0; i < 2; ++i) {
    p.sgd.zero_grad();
    a.scale(p.loss()).backward();
    a.step(p.sgd);
    a.update();
  }
  const auto s = a.state_dict();
  EXPECT_EQ(s.scale, 65536.0);
  EXPECT_EQ(s.growth_tracker, 2);
  EXPECT_EQ(s.growth_interval, 3);

  GradScaler b;  // default interval 2000, replaced by the state's
  b.load_state_dict(s);
  EXPECT_EQ(b.get_scale(), 65536.0);
  EXPECT_EQ(b.get_growth_tracker(), 2);
  p.sgd.zero_grad();
  b.scale(p.loss()).backward();
  b.step(p.sgd);
  b.update();  // third finite step: grows
  EXPECT_EQ(b.get_scale(), 131072.0);
  EXPECT_EQ(b.get_growth_tracker(), 0);

  auto broken = s;
  broken.scale = -1;
  blip::test::expect_error([&] { b.load_state_dict(broken); }, {"GradScaler", "scale"});
  GradScalerOptions off;
  off.enabled = false;
  GradScaler disabled(off);
  blip::test::expect_error([&] { disabled.load_state_dict(s); }, {"GradScaler", "disabled"});
}

}  // namespace
