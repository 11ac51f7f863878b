// Precision and device names, and the guards that give a caller's model back unchanged.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <functional>
#include <stdexcept>
#include <string>

#include "blip/error.h"
#include "blip/retrieval/model_guards.h"
#include "blip/retrieval/precision.h"

using namespace blip::retrieval;

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const blip::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no blip::Error";
  return {};
}

// linear -> sequential(linear, dropout) -> embedding, with an integer buffer like BERT's.
struct TinyNet : torch::nn::Module {
  TinyNet() {
    a = register_module("a", torch::nn::Linear(3, 4));
    inner = register_module("inner", torch::nn::Sequential(torch::nn::Linear(4, 2), torch::nn::Dropout(0.5)));
    emb = register_module("emb", torch::nn::Embedding(5, 2));
    ids = register_buffer("ids", at::arange(5, at::kLong));
  }
  torch::nn::Linear a{nullptr};
  torch::nn::Sequential inner{nullptr};
  torch::nn::Embedding emb{nullptr};
  at::Tensor ids;
};

}  // namespace

TEST(Precision, NamesRoundTrip) {
  int checked = 0;
  for (const char* name : {"fp32", "bf16", "fp16"}) {
    EXPECT_STREQ(precision_name(parse_precision(name)), name);
    ++checked;
  }
  EXPECT_EQ(checked, 3);
  EXPECT_EQ(parse_precision("bf16"), at::kBFloat16);
  EXPECT_NE(error_of([] { parse_precision("fp8"); }).find("precision 'fp8': expected fp32, bf16 or fp16"),
            std::string::npos);
  EXPECT_STREQ(precision_name(at::kDouble), "Double");
}

TEST(Precision, CheckPrecisionForDevice) {
  EXPECT_NO_THROW(check_precision(at::kFloat, at::Device(at::kCPU)));
  EXPECT_NO_THROW(check_precision(at::kBFloat16, at::Device(at::kCPU)));
  EXPECT_NE(error_of([] { check_precision(at::kHalf, at::Device(at::kCPU)); }).find("precision fp16: needs a CUDA device"),
            std::string::npos);
  EXPECT_NE(error_of([] { check_precision(at::kDouble, at::Device(at::kCPU)); }).find("expected fp32, bf16 or fp16"),
            std::string::npos);
}

TEST(Precision, ParseDevice) {
  EXPECT_EQ(parse_device("cpu"), at::Device(at::kCPU));
  const std::string bad = error_of([] { parse_device("tpu", "--device"); });
  EXPECT_EQ(bad.rfind("--device tpu: ", 0), 0u) << bad;
  EXPECT_NE(error_of([] { parse_device("cuda:x"); }).find("device cuda:x"), std::string::npos);
  if (torch::cuda::is_available()) {
    EXPECT_EQ(parse_device("cuda", "device", 0), at::Device(at::kCUDA, 0));
  } else {
    const std::string msg = error_of([] { parse_device("cuda"); });
    EXPECT_NE(msg.find("device cuda: "), std::string::npos) << msg;
    EXPECT_TRUE(msg.find("without CUDA") != std::string::npos || msg.find("no CUDA device") != std::string::npos) << msg;
  }
}

TEST(Precision, CastFloatingWeightsKeepsIntegerBuffers) {
  TinyNet net;
  EXPECT_EQ(module_device(net), at::Device(at::kCPU));
  cast_floating_weights(net, at::kBFloat16);
  EXPECT_EQ(net.a->weight.scalar_type(), at::kBFloat16);
  EXPECT_EQ(net.emb->weight.scalar_type(), at::kBFloat16);
  EXPECT_EQ(net.ids.scalar_type(), at::kLong);
}

TEST(ModelGuards, ScopedModelDtypeRestoresBitwise) {
  TinyNet net;
  const at::Tensor before = net.a->weight.clone();
  const void* data_before = net.a->weight.data_ptr();
  try {
    const ScopedModelDtype guard(net, at::kBFloat16);
    EXPECT_EQ(net.a->weight.scalar_type(), at::kBFloat16);
    EXPECT_EQ(net.ids.scalar_type(), at::kLong);
    throw std::runtime_error("the guarded call fails");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(net.a->weight.data_ptr(), data_before);  // the original storage, not a copy
  EXPECT_EQ(net.a->weight.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(net.a->weight, before));
}

TEST(ModelGuards, ScopedEvalModeRestoresEachFlag) {
  auto net = std::make_shared<TinyNet>();
  net->train();
  net->inner->eval();          // a frozen part: stays in eval mode
  net->inner[1]->train(true);  // ... except its dropout, switched back on by the caller
  {
    const ScopedEvalMode guard(*net);
    int in_eval = 0;
    for (const auto& m : net->modules()) {
      EXPECT_FALSE(m->is_training()) << m->name();
      ++in_eval;
    }
    EXPECT_EQ(in_eval, 6);  // net, a, inner, inner[0], inner[1], emb
  }
  EXPECT_TRUE(net->is_training());
  EXPECT_TRUE(net->a->is_training());
  EXPECT_TRUE(net->emb->is_training());
  EXPECT_FALSE(net->inner->is_training());
  EXPECT_FALSE(net->inner[0]->is_training());
  EXPECT_TRUE(net->inner[1]->is_training());
}
