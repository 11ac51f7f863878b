#include "models/init.h"

#include <torch/csrc/autograd/grad_mode.h>

namespace blip::models {

void init_normal(at::Tensor& t, double std) {
  torch::NoGradGuard no_grad;
  t.normal_(0.0, std);
}

void init_linear_normal(torch::nn::LinearImpl& linear, double std) {
  torch::NoGradGuard no_grad;
  linear.weight.normal_(0.0, std);
  if (linear.bias.defined()) linear.bias.zero_();
}

void init_embedding_normal(torch::nn::Embedding& embedding, double std) {
  torch::NoGradGuard no_grad;
  embedding->weight.normal_(0.0, std);
}

}  // namespace blip::models
