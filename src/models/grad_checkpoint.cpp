// Gradient checkpointing as a custom autograd Function (see grad_checkpoint.h).
#include "blip/models/grad_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/ivalue.h>
#include <c10/util/Optional.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <mutex>

namespace blip::models {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor rng_state(at::Generator gen) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state(at::Generator gen, const at::Tensor& state) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

// The random-number streams a recomputation must replay: the CPU generator always, and the
// generator of x's CUDA device when x lives there (what torch.utils.checkpoint preserves).
struct RngSnapshot {
  at::Tensor cpu;
  at::Tensor device;
  c10::optional<at::Device> device_id;

  static RngSnapshot take(const at::Tensor& like) {
    RngSnapshot s;
    s.cpu = rng_state(at::detail::getDefaultCPUGenerator());
    if (like.device().is_cuda()) {
      s.device_id = like.device();
      s.device = rng_state(at::globalContext().defaultGenerator(like.device()));
    }
    return s;
  }
  void restore() const {
    set_rng_state(at::detail::getDefaultCPUGenerator(), cpu);
    if (device_id) set_rng_state(at::globalContext().defaultGenerator(*device_id), device);
  }
};

// What backward needs besides the saved tensors; held by the autograd context as a capsule.
struct AutocastSnapshot {
  bool cpu = false, cuda = false;
  at::ScalarType cpu_dtype = at::kBFloat16, cuda_dtype = at::kHalf;
  static AutocastSnapshot take() {
    return {at::autocast::is_cpu_enabled(), at::autocast::is_enabled(), at::autocast::get_autocast_cpu_dtype(),
            at::autocast::get_autocast_gpu_dtype()};
  }
  void apply() const {
    at::autocast::set_cpu_enabled(cpu);
    at::autocast::set_enabled(cuda);
    at::autocast::set_autocast_cpu_dtype(cpu_dtype);
    at::autocast::set_autocast_gpu_dtype(cuda_dtype);
  }
};

struct CheckpointState : torch::CustomClassHolder {
  CheckpointedFn fn;
  RngSnapshot rng;
  AutocastSnapshot autocast;
};

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, at::TensorList params,
                            c10::intrusive_ptr<CheckpointState> state) {
    state->rng = RngSnapshot::take(x);
    state->autocast = AutocastSnapshot::take();
    std::vector<at::Tensor> to_save{x};
    to_save.insert(to_save.end(), params.begin(), params.end());
    ctx->save_for_backward(to_save);
    ctx->saved_data["state"] = at::IValue::make_capsule(state);
    // Runs with grad disabled (Function::apply), so no activations are kept.
    return state->fn(x);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    auto state = c10::static_intrusive_pointer_cast<CheckpointState>(
        ctx->saved_data.at("state").toCapsule());

    const at::Tensor& x = saved[0];
    at::Tensor x_leaf = x.detach();
    x_leaf.requires_grad_(x.requires_grad());

    // Replay the forward pass's random numbers, then put back the current stream.
    const RngSnapshot now = RngSnapshot::take(x);
    state->rng.restore();
    at::Tensor out;
    const AutocastSnapshot autocast_now = AutocastSnapshot::take();
    state->autocast.apply();
    try {
      at::AutoGradMode enable_grad(true);
      out = state->fn(x_leaf);
    } catch (...) {
      autocast_now.apply();
      now.restore();
      throw;
    }
    autocast_now.apply();
    now.restore();

    // Differentiate only with respect to what needs a gradient.
    variable_list inputs;
    std::vector<size_t> slots;  // index in `saved` of each entry of `inputs`
    for (size_t i = 0; i < saved.size(); ++i) {
      const at::Tensor& t = i == 0 ? x_leaf : saved[i];
      if (t.requires_grad()) {
        inputs.push_back(t);
        slots.push_back(i);
      }
    }
    variable_list grads(saved.size() + 1);  // + the non-tensor state argument
    if (!inputs.empty() && out.requires_grad() && grad_outputs[0].defined()) {
      variable_list g = torch::autograd::grad({out}, inputs, {grad_outputs[0]},
                                              /*retain_graph=*/false, /*create_graph=*/false,
                                              /*allow_unused=*/true);
      for (size_t k = 0; k < slots.size(); ++k) grads[slots[k]] = g[k];
    }
    return grads;
  }
};

}  // namespace

at::Tensor checkpoint(CheckpointedFn fn, const at::Tensor& x, const std::vector<at::Tensor>& params) {
  auto state = c10::make_intrusive<CheckpointState>();
  state->fn = std::move(fn);
  return CheckpointFunction::apply(x, at::TensorList(params), state);
}

}  // namespace blip::models
