#include "models/init.h"

#include <torch/csrc/autograd/grad_mode.h>

#include "blip/models/random_init.h"

namespace blip::models {

void init_normal(at::Tensor& t, double std) {
  if (!random_init_enabled()) return;
  torch::NoGradGuard no_grad;
  t.normal_(0.0, std);
}

void init_linear_normal(LinearImpl& linear, double std) {
  torch::NoGradGuard no_grad;
  if (random_init_enabled()) linear.weight.normal_(0.0, std);
  if (linear.bias.defined()) linear.bias.zero_();
}

void init_embedding_normal(torch::nn::Embedding& embedding, double std) {
  if (!random_init_enabled()) return;
  torch::NoGradGuard no_grad;
  embedding->weight.normal_(0.0, std);
}

}  // namespace blip::models
