#include "blip/retrieval/model_guards.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/nn/module.h>

namespace blip::retrieval {

ScopedModelDtype::ScopedModelDtype(torch::nn::Module& module, at::ScalarType dtype) {
  c10::NoGradGuard no_grad;
  auto cast = [&](at::Tensor& t) {
    if (!t.defined() || !t.is_floating_point() || t.scalar_type() == dtype) return;
    at::Tensor original = t.detach();
    t.set_data(original.to(dtype));
    saved_.emplace_back(t, original);
  };
  for (at::Tensor& p : module.parameters(/*recurse=*/true)) cast(p);
  for (at::Tensor& b : module.buffers(/*recurse=*/true)) cast(b);
}

ScopedModelDtype::~ScopedModelDtype() {
  c10::NoGradGuard no_grad;
  for (auto& [t, original] : saved_) t.set_data(original);
}

ScopedEvalMode::ScopedEvalMode(torch::nn::Module& module) {
  // modules() lists the module itself first, then its descendants in pre-order.
  for (const auto& m : module.modules(/*include_self=*/false)) saved_.emplace_back(m.get(), m->is_training());
  saved_.insert(saved_.begin(), {&module, module.is_training()});
  module.eval();
}

ScopedEvalMode::~ScopedEvalMode() {
  // train(flag) also sets every descendant; restoring in pre-order lets each submodule's own
  // flag win over its parent's.
  for (auto& [m, training] : saved_) m->train(training);
}

}  // namespace blip::retrieval
