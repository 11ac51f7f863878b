// Activation (gradient) checkpointing for LibTorch, which has no torch.utils.checkpoint.
//
// checkpoint(fn, x, params) returns fn(x) computed without recording the graph. It saves only x
// and the RNG state(s) (CPU, and the CUDA device of x when x is on CUDA). In backward it restores
// that RNG state, recomputes fn(x) with grad enabled, backpropagates the incoming gradient through
// the recomputed graph and restores the RNG state it found. Dropout masks are therefore the same
// in the recomputation as in the forward pass, and gradients equal those of fn(x) run normally.
//
// `params` must list every tensor fn reads that needs a gradient (the module's parameters):
// they become inputs of the checkpoint node so that their gradients flow through it.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

namespace blip::models {

using CheckpointedFn = std::function<at::Tensor(const at::Tensor&)>;

at::Tensor checkpoint(CheckpointedFn fn, const at::Tensor& x, const std::vector<at::Tensor>& params);

}  // namespace blip::models
