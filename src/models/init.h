// BLIP's random initialisation helpers (private to the models area).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/embedding.h>
#include "blip/models/linear.h"

namespace blip::models {

// t ~ N(0, std^2), in place, without recording autograd history.
void init_normal(at::Tensor& t, double std);
// weight ~ N(0, std^2), bias = 0 (timm _init_weights / BERT _init_weights for nn.Linear).
void init_linear_normal(LinearImpl& linear, double std);
// weight ~ N(0, std^2); BLIP's BERT init does not zero the padding row.
void init_embedding_normal(torch::nn::Embedding& embedding, double std);

}  // namespace blip::models
