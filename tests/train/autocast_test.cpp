// AutocastGuard: bf16 autocast on CPU, restoring the previous state, nesting, bad dtypes.
#include "blip/train/autocast.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>

#include <stdexcept>

#include "common/expect_error.h"

namespace {

using blip::train::autocast_dtype;
using blip::train::autocast_enabled;
using blip::train::AutocastGuard;
constexpr auto kCpu = c10::DeviceType::CPU;
constexpr auto kCuda = c10::DeviceType::CUDA;

TEST(Autocast, Bf16LinearOnCpuAndStateRestored) {
  torch::nn::Linear linear(8, 4);
  const at::Tensor x = at::randn({3, 8});
  ASSERT_FALSE(autocast_enabled(kCpu));
  const at::ScalarType before = autocast_dtype(kCpu);
  at::Tensor inside;
  {
    AutocastGuard guard(kCpu, at::kBFloat16);
    EXPECT_TRUE(autocast_enabled(kCpu));
    EXPECT_EQ(autocast_dtype(kCpu), at::kBFloat16);
    EXPECT_FALSE(autocast_enabled(kCuda));  // only the named device
    inside = linear->forward(x);
    EXPECT_EQ(inside.scalar_type(), at::kBFloat16);
    EXPECT_EQ(linear->weight.scalar_type(), at::kFloat);  // weights are cast, not converted
  }
  EXPECT_FALSE(autocast_enabled(kCpu));
  EXPECT_EQ(autocast_dtype(kCpu), before);
  const at::Tensor outside = linear->forward(x);
  EXPECT_EQ(outside.scalar_type(), at::kFloat);
  // The bf16 result is the fp32 one to bf16 precision (8 bits of mantissa, inputs rounded too).
  EXPECT_TRUE(at::allclose(inside.to(at::kFloat), outside, /*rtol=*/3e-2, /*atol=*/3e-2));
  EXPECT_FALSE(at::equal(inside.to(at::kFloat), outside));
}

TEST(Autocast, NestedGuardsRestoreTheOuterState) {
  torch::nn::Linear linear(4, 4);
  const at::Tensor x = at::randn({2, 4});
  {
    AutocastGuard outer(kCpu, at::kBFloat16);
    EXPECT_EQ(linear->forward(x).scalar_type(), at::kBFloat16);
    {
      AutocastGuard inner(kCpu, at::kFloat);  // torch.autocast(enabled=False) inside
      EXPECT_FALSE(autocast_enabled(kCpu));
      EXPECT_EQ(linear->forward(x).scalar_type(), at::kFloat);
      {
        AutocastGuard innermost(kCpu, at::kBFloat16);
        EXPECT_EQ(linear->forward(x).scalar_type(), at::kBFloat16);
      }
      EXPECT_FALSE(autocast_enabled(kCpu));
      EXPECT_EQ(linear->forward(x).scalar_type(), at::kFloat);
    }
    EXPECT_TRUE(autocast_enabled(kCpu));
    EXPECT_EQ(linear->forward(x).scalar_type(), at::kBFloat16);
  }
  EXPECT_FALSE(autocast_enabled(kCpu));
  EXPECT_EQ(linear->forward(x).scalar_type(), at::kFloat);
}

// Autocast caches the bf16 copy of each weight (a leaf that requires grad and is not a view) until
// the outermost guard ends, so an in-place weight change shows only after that.
TEST(Autocast, WeightCastsAreCachedUntilTheOutermostGuardEnds) {
  const at::Tensor w = at::randn({8, 4}).requires_grad_(true);
  const at::Tensor x = at::randn({3, 8});
  auto double_weight = [&] {
    at::NoGradGuard no_grad;
    w.mul_(2);
  };
  at::Tensor y1, y2, y3;
  {
    AutocastGuard outer(kCpu, at::kBFloat16);
    y1 = at::mm(x, w);
    ASSERT_EQ(y1.scalar_type(), at::kBFloat16);
    {
      AutocastGuard inner(kCpu, at::kBFloat16);
      double_weight();
      y2 = at::mm(x, w);  // the cached (old) cast
    }
    EXPECT_TRUE(at::equal(y1, y2));
    y3 = at::mm(x, w);  // the inner guard's end did not clear the cache
    EXPECT_TRUE(at::equal(y1, y3));
  }
  {
    AutocastGuard again(kCpu, at::kBFloat16);
    const at::Tensor y4 = at::mm(x, w);  // a fresh cast of the doubled weight
    EXPECT_TRUE(at::allclose(y4.to(at::kFloat), 2 * y1.to(at::kFloat), 1e-2, 1e-2));
    EXPECT_FALSE(at::equal(y4, y1));
  }
}

TEST(Autocast, CudaStateIsSeparateFromCpu) {
  // Only thread-local flags change, so this runs without a GPU.
  const at::ScalarType cuda_before = autocast_dtype(kCuda);
  {
    AutocastGuard guard(kCuda, at::kHalf);
    EXPECT_TRUE(autocast_enabled(kCuda));
    EXPECT_EQ(autocast_dtype(kCuda), at::kHalf);
    EXPECT_FALSE(autocast_enabled(kCpu));
    EXPECT_EQ(torch::nn::Linear(4, 2)->forward(at::randn({1, 4})).scalar_type(), at::kFloat);  // CPU tensors
  }
  EXPECT_FALSE(autocast_enabled(kCuda));
  EXPECT_EQ(autocast_dtype(kCuda), cuda_before);
}

TEST(Autocast, RestoresStateWhenUnwinding) {
  try {
    AutocastGuard guard(kCpu, at::kBFloat16);
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(autocast_enabled(kCpu));
}

TEST(Autocast, BackwardAfterTheGuardGivesFp32Gradients) {
  torch::nn::Linear linear(8, 2);
  const at::Tensor x = at::randn({5, 8});
  at::Tensor loss;
  {
    AutocastGuard guard(kCpu, at::kBFloat16);
    loss = linear->forward(x).to(at::kFloat).pow(2).sum();
  }
  loss.backward();
  ASSERT_TRUE(linear->weight.grad().defined());
  EXPECT_EQ(linear->weight.grad().scalar_type(), at::kFloat);
  // Close to the fp32 gradient.
  const at::Tensor w = linear->weight.detach().clone().requires_grad_(true);
  const at::Tensor b = linear->bias.detach().clone().requires_grad_(true);
  at::linear(x, w, b).pow(2).sum().backward();
  EXPECT_TRUE(at::allclose(linear->weight.grad(), w.grad(), 5e-2, 5e-2));
}

TEST(Autocast, RejectsUnsupportedDtypesAndDevices) {
  blip::test::expect_error([] { AutocastGuard g(kCpu, at::kHalf); }, {"autocast", "Half", "cpu"});
  blip::test::expect_error([] { AutocastGuard g(kCpu, at::kDouble); }, {"autocast", "Double"});
  blip::test::expect_error([] { AutocastGuard g(kCuda, at::kInt); }, {"autocast", "Int"});
  blip::test::expect_error([] { AutocastGuard g(c10::DeviceType::Meta, at::kBFloat16); }, {"autocast", "device"});
  EXPECT_FALSE(autocast_enabled(kCpu));  // a refused guard changes nothing
  EXPECT_FALSE(autocast_enabled(kCuda));
}

}  // namespace
