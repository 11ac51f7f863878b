// nn.Linear with the same state-dict names ("weight" [out, in], "bias" [out]), forward and random
// initialisation as torch's, except that its initialisation can be skipped (random_init.h) when a
// checkpoint will overwrite every weight: drawing ~200 M random numbers took most of a model load.
// The forward is Python's (at::linear: one addmm with the bias); LibTorch 1.13's C++ nn::Linear
// does a matmul and then adds the bias for 3-D inputs, which rounds differently (README, demo).
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/options/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <ostream>

namespace blip::models {

class LinearImpl : public torch::nn::Cloneable<LinearImpl> {
 public:
  LinearImpl(std::int64_t in_features, std::int64_t out_features)
      : LinearImpl(torch::nn::LinearOptions(in_features, out_features)) {}
  explicit LinearImpl(const torch::nn::LinearOptions& options);

  // Registers weight and bias and initialises them as torch.nn.Linear.reset_parameters (Kaiming
  // uniform weight, uniform bias in +-1/sqrt(in)), drawing the same random numbers in the same
  // order, unless a NoRandomInit guard is active on this thread.
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;

  at::Tensor forward(const at::Tensor& input);

  torch::nn::LinearOptions options;
  at::Tensor weight;
  at::Tensor bias;  // undefined when options.bias() is false
};
TORCH_MODULE(Linear);

}  // namespace blip::models
