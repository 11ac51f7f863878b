// GradScaler: torch.cuda.amp.GradScaler's stages (ready -> unscaled -> stepped -> update).
#include "blip/train/grad_scaler.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "blip/error.h"

namespace blip::train {

namespace {

const char* kWhat = "GradScaler";

void check_options(double init_scale, double growth_factor, double backoff_factor, int64_t growth_interval) {
  if (!(init_scale > 0) || !std::isfinite(init_scale)) fail(kWhat, "the scale must be a positive finite number");
  if (!(growth_factor > 1.0)) fail(kWhat, "growth_factor must be > 1");
  if (!(backoff_factor > 0.0 && backoff_factor < 1.0)) fail(kWhat, "backoff_factor must lie in (0, 1)");
  if (growth_interval < 1) fail(kWhat, "growth_interval must be >= 1");
}

// Gradients to unscale, grouped by device and dtype (one fused call per group on CUDA).
using GradGroups = std::map<std::pair<std::string, at::ScalarType>, std::vector<at::Tensor>>;

GradGroups collect_grads(torch::optim::Optimizer& optimizer) {
  GradGroups groups;
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (p.grad().scalar_type() == at::kHalf)
        fail(kWhat, "attempting to unscale fp16 gradients (keep the parameters in fp32 and use autocast)");
      at::Tensor g = p.grad();
      if (g.is_sparse()) {
        // Coalescing sums duplicate indices, so that each value is checked and scaled once.
        p.mutable_grad() = g.coalesce();
        g = p.grad()._values();
      }
      groups[{g.device().str(), g.scalar_type()}].push_back(g);
    }
  }
  return groups;
}

}  // namespace

ScaleUpdate next_scale(float scale, int64_t growth_tracker, bool found_inf, const GradScalerOptions& options) {
  if (found_inf) return {static_cast<float>(scale * options.backoff_factor), 0};
  const int64_t successful = growth_tracker + 1;
  if (successful < options.growth_interval) return {scale, successful};
  const auto grown = static_cast<float>(scale * options.growth_factor);
  return {std::isfinite(grown) ? grown : scale, 0};
}

GradScaler::GradScaler(GradScalerOptions options) : options_(options) {
  if (options_.enabled)
    check_options(options_.init_scale, options_.growth_factor, options_.backoff_factor, options_.growth_interval);
}

at::Tensor GradScaler::scale(const at::Tensor& loss) {
  if (!options_.enabled) return loss;
  if (!scale_.defined()) {
    const auto on = at::TensorOptions().device(loss.device());
    scale_ = at::full({1}, options_.init_scale, on.dtype(at::kFloat));
    growth_tracker_ = at::full({1}, init_growth_tracker_, on.dtype(at::kInt));
  }
  return loss * scale_.to(loss.device());
}

GradScaler::OptimizerState& GradScaler::state_of(torch::optim::Optimizer& optimizer) {
  return per_optimizer_[&optimizer];
}

void GradScaler::unscale_(torch::optim::Optimizer& optimizer) {
  if (!options_.enabled) return;
  if (!scale_.defined()) fail(kWhat, "unscale_() before scale(): the loss was never scaled in this iteration");
  OptimizerState& state = state_of(optimizer);
  if (state.stage == Stage::Unscaled)
    fail(kWhat, "unscale_() has already been called on this optimizer since the last update()");
  if (state.stage == Stage::Stepped) fail(kWhat, "unscale_() is being called after step()");

  at::NoGradGuard no_grad;
  // 1/scale computed in double, as torch does, so that the reciprocal of a power of two is exact.
  const at::Tensor inv_scale = scale_.to(at::kDouble).reciprocal().to(at::kFloat);
  at::Tensor found_inf = at::zeros({1}, scale_.options().dtype(at::kFloat));
  const GradGroups groups = collect_grads(optimizer);
  if (groups.empty()) fail(kWhat, "no inf checks were recorded for this optimizer (no parameter has a gradient)");
  for (const auto& [key, grads] : groups) {
    const at::Device device = grads.front().device();
    at::Tensor inv = inv_scale.to(device);
    at::Tensor found = at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(device));
    if (device.is_cuda()) {
      at::_amp_foreach_non_finite_check_and_unscale_(grads, found, inv);
    } else {
      // The fused kernel's semantics with ordinary ops: flag any inf/NaN, scale every gradient.
      for (const auto& g : grads) {
        found = at::maximum(found, at::logical_not(at::isfinite(g)).any().to(at::kFloat).reshape({1}));
        g.mul_(inv.to(g.scalar_type()));
      }
    }
    found_inf.add_(found.to(found_inf.device()));
  }
  state.found_inf = found_inf;
  state.stage = Stage::Unscaled;
}

bool GradScaler::step(torch::optim::Optimizer& optimizer) {
  if (!options_.enabled) {
    optimizer.step();
    return true;
  }
  OptimizerState& state = state_of(optimizer);
  if (state.stage == Stage::Stepped) fail(kWhat, "step() has already been called since the last update()");
  if (state.stage == Stage::Ready) unscale_(optimizer);
  const bool finite = state.found_inf.item<double>() == 0.0;
  if (finite) optimizer.step();
  state.stage = Stage::Stepped;
  return finite;
}

void GradScaler::update() {
  if (!options_.enabled) return;
  at::Tensor found;
  for (const auto& [opt, state] : per_optimizer_) {
    if (state.stage == Stage::Ready || !state.found_inf.defined()) continue;
    found = found.defined() ? found + state.found_inf : state.found_inf.clone();
  }
  if (!found.defined()) fail(kWhat, "update() without an unscale_() or step() since the last update()");
  at::NoGradGuard no_grad;
  if (scale_.is_cuda()) {
    at::_amp_update_scale_(scale_, growth_tracker_, found, options_.growth_factor, options_.backoff_factor,
                           options_.growth_interval);
  } else {
    const ScaleUpdate u = next_scale(scale_.item<float>(), growth_tracker_.item<int64_t>(),
                                     found.item<double>() != 0.0, options_);
    scale_.fill_(u.scale);
    growth_tracker_.fill_(u.growth_tracker);
  }
  per_optimizer_.clear();
}

double GradScaler::get_scale() const {
  if (!options_.enabled) return 1.0;
  return scale_.defined() ? scale_.item<double>() : options_.init_scale;
}

int64_t GradScaler::get_growth_tracker() const {
  if (!options_.enabled) return 0;
  return growth_tracker_.defined() ? growth_tracker_.item<int64_t>() : init_growth_tracker_;
}

GradScalerState GradScaler::state_dict() const {
  return {get_scale(), options_.growth_factor, options_.backoff_factor, options_.growth_interval,
          get_growth_tracker()};
}

void GradScaler::load_state_dict(const GradScalerState& state) {
  if (!options_.enabled) fail(kWhat, "load_state_dict on a disabled GradScaler");
  check_options(state.scale, state.growth_factor, state.backoff_factor, state.growth_interval);
  if (state.growth_tracker < 0) fail(kWhat, "growth tracker must be >= 0");
  options_.init_scale = state.scale;
  options_.growth_factor = state.growth_factor;
  options_.backoff_factor = state.backoff_factor;
  options_.growth_interval = state.growth_interval;
  init_growth_tracker_ = state.growth_tracker;
  if (scale_.defined()) {
    scale_.fill_(state.scale);
    growth_tracker_.fill_(state.growth_tracker);
  }
}

}  // namespace blip::train
