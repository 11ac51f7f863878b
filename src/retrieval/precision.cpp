#include "blip/retrieval/precision.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/cuda.h>
#include <torch/nn/module.h>

#include "blip/error.h"

namespace blip::retrieval {

at::ScalarType parse_precision(const std::string& name) {
  if (name == "fp32") return at::kFloat;
  if (name == "bf16") return at::kBFloat16;
  if (name == "fp16") return at::kHalf;
  fail("precision '" + name + "'", "expected fp32, bf16 or fp16");
}

const char* precision_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "fp32";
    case at::kBFloat16: return "bf16";
    case at::kHalf: return "fp16";
    default: return c10::toString(dtype);
  }
}

void check_precision(at::ScalarType dtype, const c10::Device& device) {
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf)
    fail(std::string("precision ") + c10::toString(dtype), "expected fp32, bf16 or fp16");
  // Library text names no command-line flag.
  if (dtype == at::kHalf && !device.is_cuda()) fail("precision fp16", "needs a CUDA device (use bf16 on the CPU)");
}

c10::Device parse_device(const std::string& name, const std::string& what, int default_cuda_index) {
  const std::string where = what + " " + name;
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(name);
  } catch (const std::exception&) {
    fail(where, "not a device name (use cpu, cuda or cuda:<n>)");
  }
  if (!device.is_cpu() && !device.is_cuda()) fail(where, "use cpu, cuda or cuda:<n>");
  if (device.is_cuda() && !torch::cuda::is_available())
    fail(where, at::hasCUDA() ? "no CUDA device is visible" : "this libtorch was built without CUDA");
  if (device.is_cuda() && !device.has_index() && default_cuda_index >= 0)
    device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(default_cuda_index));
  return device;
}

c10::Device module_device(const torch::nn::Module& module) {
  for (const at::Tensor& p : module.parameters(/*recurse=*/true))
    if (p.defined()) return p.device();
  for (const at::Tensor& b : module.buffers(/*recurse=*/true))
    if (b.defined()) return b.device();
  return c10::Device(c10::kCPU);
}

void cast_floating_weights(torch::nn::Module& module, at::ScalarType dtype) {
  c10::NoGradGuard no_grad;
  auto cast = [&](at::Tensor& t) {
    if (t.defined() && t.is_floating_point() && t.scalar_type() != dtype) t.set_data(t.detach().to(dtype));
  };
  for (at::Tensor& p : module.parameters(/*recurse=*/true)) cast(p);
  for (at::Tensor& b : module.buffers(/*recurse=*/true)) cast(b);
}

}  // namespace blip::retrieval
