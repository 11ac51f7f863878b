// AutocastGuard: torch.autocast's __enter__/__exit__ on the ATen autocast state.
#include "blip/train/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <string>

#include "blip/error.h"

// LibTorch 2.4 replaced the per-device functions (set_cpu_enabled, set_autocast_gpu_dtype, ...)
// by ones taking the device type and deprecated the old ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define BLIP_AUTOCAST_DEVICE_API 1
#else
#define BLIP_AUTOCAST_DEVICE_API 0
#endif

namespace blip::train {

namespace {

const char* kWhat = "autocast";

void check_device(c10::DeviceType device) {
  if (device != c10::DeviceType::CPU && device != c10::DeviceType::CUDA)
    fail(kWhat, std::string("device ") + c10::DeviceTypeName(device, /*lower_case=*/true) + " is not supported (cpu or cuda)");
}

void set_enabled(c10::DeviceType device, bool enabled) {
#if BLIP_AUTOCAST_DEVICE_API
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == c10::DeviceType::CPU)
    at::autocast::set_cpu_enabled(enabled);
  else
    at::autocast::set_enabled(enabled);
#endif
}

void set_dtype(c10::DeviceType device, at::ScalarType dtype) {
#if BLIP_AUTOCAST_DEVICE_API
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == c10::DeviceType::CPU)
    at::autocast::set_autocast_cpu_dtype(dtype);
  else
    at::autocast::set_autocast_gpu_dtype(dtype);
#endif
}

}  // namespace

bool autocast_enabled(c10::DeviceType device) {
  check_device(device);
#if BLIP_AUTOCAST_DEVICE_API
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

at::ScalarType autocast_dtype(c10::DeviceType device) {
  check_device(device);
#if BLIP_AUTOCAST_DEVICE_API
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype()
                                        : at::autocast::get_autocast_gpu_dtype();
#endif
}

AutocastGuard::AutocastGuard(c10::DeviceType device, at::ScalarType dtype)
    : device_(device), prev_enabled_(autocast_enabled(device)), prev_dtype_(autocast_dtype(device)) {
  const bool cpu = device == c10::DeviceType::CPU;
  // torch.autocast on CPU only supports bfloat16 (it warns and disables itself for float16; we
  // refuse instead, so that a precision option never silently means fp32).
  const bool supported = dtype == at::kFloat || dtype == at::kBFloat16 || (dtype == at::kHalf && !cpu);
  if (!supported)
    fail(kWhat, std::string(c10::toString(dtype)) + " is not supported on " + c10::DeviceTypeName(device, /*lower_case=*/true) +
                    (cpu ? " (float or bfloat16)" : " (float, bfloat16 or half)"));
  const bool enable = dtype != at::kFloat;
  if (enable) set_dtype(device, dtype);
  set_enabled(device, enable);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  // The cast weights are cached for the whole outermost region (each weight is cast once per
  // forward pass); they are dropped when it ends, as torch.autocast.__exit__ does.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_enabled(device_, prev_enabled_);
  set_dtype(device_, prev_dtype_);
}

}  // namespace blip::train
