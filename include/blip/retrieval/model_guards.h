// Guards that change a caller's model for one call and put it back: library entry points
// (evaluation, feature extraction, search) must leave the model as they found it.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <utility>
#include <vector>

namespace torch::nn {
class Module;
}

namespace blip::retrieval {

// Casts the module's floating parameters and buffers to `dtype` for the guard's lifetime and
// puts the original tensors back afterwards (bitwise; also when the guarded call throws).
// Tensors already in `dtype` are not copied. Construct it outside c10::InferenceMode: the cast
// replaces the parameters' data.
class ScopedModelDtype {
 public:
  ScopedModelDtype(torch::nn::Module& module, at::ScalarType dtype);
  ~ScopedModelDtype();
  ScopedModelDtype(const ScopedModelDtype&) = delete;
  ScopedModelDtype& operator=(const ScopedModelDtype&) = delete;

 private:
  std::vector<std::pair<at::Tensor, at::Tensor>> saved_;  // (parameter, original data)
};

// Switches the module and all its submodules to eval mode (module.eval()) for the guard's
// lifetime, then restores each submodule's own training flag (a partly frozen model keeps its
// mix of train and eval submodules).
class ScopedEvalMode {
 public:
  explicit ScopedEvalMode(torch::nn::Module& module);
  ~ScopedEvalMode();
  ScopedEvalMode(const ScopedEvalMode&) = delete;
  ScopedEvalMode& operator=(const ScopedEvalMode&) = delete;

 private:
  std::vector<std::pair<torch::nn::Module*, bool>> saved_;  // pre-order, the module first
};

}  // namespace blip::retrieval
