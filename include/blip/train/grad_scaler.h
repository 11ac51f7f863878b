// Dynamic loss scaling for fp16 training: torch.cuda.amp.GradScaler in LibTorch.
//
//   GradScaler scaler;                       // enabled, init_scale 2^16
//   scaler.scale(loss).backward();           // gradients are scaled by get_scale()
//   scaler.unscale_(optimizer);              // optional (e.g. before clipping gradients)
//   scaler.step(optimizer);                  // unscales if needed; skips the step on inf/NaN
//   scaler.update();                         // backs off after inf/NaN, grows after a streak
//
// On CUDA this uses torch's fused kernels (_amp_foreach_non_finite_check_and_unscale_,
// _amp_update_scale_). On other devices (LibTorch 1.13 has those kernels for CUDA only) the same
// arithmetic runs as ordinary tensor ops and plain C++ (see next_scale), so the scaler also works,
// and is tested, on CPU. Disabled, every call is a pass-through: scale() returns the loss, step()
// steps, the rest does nothing.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <map>

namespace blip::train {

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;  // successive finite steps before the scale grows
  bool enabled = true;
};

// What torch's GradScaler.state_dict() holds, as plain numbers.
struct GradScalerState {
  double scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  int64_t growth_tracker = 0;  // "_growth_tracker"
};

// _amp_update_scale_'s rule: after inf/NaN the scale is multiplied by backoff_factor and the
// tracker resets; otherwise the tracker counts up and, on reaching growth_interval, resets and
// the scale is multiplied by growth_factor (unless that overflows fp32). The scale is an fp32
// value, as in torch's kernel.
struct ScaleUpdate {
  float scale;
  int64_t growth_tracker;
};
ScaleUpdate next_scale(float scale, int64_t growth_tracker, bool found_inf, const GradScalerOptions& options);

class GradScaler {
 public:
  // Throws blip::Error unless init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 and
  // growth_interval >= 1 (torch asserts the two factor bounds).
  explicit GradScaler(GradScalerOptions options = {});

  bool is_enabled() const { return options_.enabled; }

  // loss * scale (the scale lives on the loss's device from the first call on).
  at::Tensor scale(const at::Tensor& loss);

  // Divides the optimizer's gradients by the scale in place and records whether any is inf/NaN.
  // Throws blip::Error when called twice for one optimizer before update(), after step(), when a
  // gradient is fp16 (unscaling fp16 gradients loses them; keep fp32 master weights), or before
  // scale() was ever called.
  void unscale_(torch::optim::Optimizer& optimizer);

  // optimizer.step() unless the (unscaled) gradients held an inf/NaN; unscale_ first when the
  // caller has not. Returns whether the optimizer stepped.
  bool step(torch::optim::Optimizer& optimizer);

  // Adjusts the scale from the inf/NaN checks of this iteration (all optimizers) and resets the
  // per-optimizer state. Throws blip::Error when no optimizer was stepped or unscaled since the
  // last update.
  void update();

  double get_scale() const;           // the current scale (init_scale before the first scale())
  int64_t get_growth_tracker() const;  // finite steps in a row since the last change

  // Disabled: scale 1 and tracker 0 (torch returns an empty dict there).
  GradScalerState state_dict() const;
  // Takes scale and growth tracker from `state` (and the factors and interval); throws
  // blip::Error when they are out of range.
  void load_state_dict(const GradScalerState& state);

 private:
  enum class Stage { Ready, Unscaled, Stepped };
  struct OptimizerState {
    Stage stage = Stage::Ready;
    at::Tensor found_inf;  // float [1] on the scale's device: 1 when an inf/NaN was seen
  };

  OptimizerState& state_of(torch::optim::Optimizer& optimizer);

  GradScalerOptions options_;
  at::Tensor scale_;           // float [1], created by the first scale()
  at::Tensor growth_tracker_;  // int32 [1], alongside scale_
  int64_t init_growth_tracker_ = 0;
  std::map<const torch::optim::Optimizer*, OptimizerState> per_optimizer_;
};

}  // namespace blip::train
