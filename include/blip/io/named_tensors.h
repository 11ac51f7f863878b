// An ordered list of named tensors: a state dict as checkpoints store it (order preserved, so that
// what we write lists keys in the order BLIP's state_dict() does).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace blip::io {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

}  // namespace blip::io
