// Mixed precision for training: LibTorch's counterpart of `with torch.autocast(device, dtype)`.
//
// Inside the guard, ops on the chosen device that autocast lists as lower-precision (linear,
// matmul, conv, ...) run in `dtype`; others keep or promote to fp32 as torch decides. Like
// torch.autocast, the guard saves the device's previous autocast state (enabled flag and dtype)
// and restores it on exit, and the outermost guard clears the cache of weight casts on exit.
// Autocast state is thread-local: the guard affects the constructing thread only.
//
// Wrap the forward pass and the loss only; call backward() after the guard is gone (backward
// ops then run in the dtypes the forward pass chose, as torch recommends).
#pragma once

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace blip::train {

class AutocastGuard {
 public:
  // dtype kFloat disables autocast inside the guard (torch.autocast(enabled=False));
  // kBFloat16 is allowed on CPU and CUDA, kHalf on CUDA only. Any other device or dtype throws
  // blip::Error.
  AutocastGuard(c10::DeviceType device, at::ScalarType dtype);
  ~AutocastGuard();

  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool prev_enabled_;
  at::ScalarType prev_dtype_;
};

// Whether autocast is on for `device` in this thread, and the dtype it casts to (the dtype is
// reported even when autocast is off). CPU and CUDA only; other devices throw blip::Error.
bool autocast_enabled(c10::DeviceType device);
at::ScalarType autocast_dtype(c10::DeviceType device);

}  // namespace blip::train
