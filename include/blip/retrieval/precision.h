// Where and in what type the retrieval model computes: the names tools and configs use for a
// precision ("fp32|bf16|fp16") and a device ("cpu|cuda|cuda:<n>"), and the checks that a
// combination can run. Shared by evaluation, feature extraction and search.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace torch::nn {
class Module;
}

namespace blip::retrieval {

// "fp32" / "bf16" / "fp16" -> kFloat / kBFloat16 / kHalf; anything else throws blip::Error.
at::ScalarType parse_precision(const std::string& name);
// The inverse ("fp32", "bf16", "fp16"); other types give c10's name.
const char* precision_name(at::ScalarType dtype);

// Throws blip::Error unless `dtype` is fp32, bf16 or fp16, and fp16 runs on a CUDA device
// (LibTorch's CPU half matmul is not usable).
void check_precision(at::ScalarType dtype, const c10::Device& device);

// "cpu", "cuda" or "cuda:<n>" -> the device, CUDA only where it is available (built in and a GPU
// visible). A bare "cuda" becomes cuda:<default_cuda_index> when that is >= 0 (e.g. the rank's
// LOCAL_RANK, as BLIP's torch.cuda.set_device). Errors read "<what> <name>: <reason>", so a tool
// passes its flag name as `what`.
c10::Device parse_device(const std::string& name, const std::string& what = "device",
                         int default_cuda_index = -1);

// The device of the module's first parameter or buffer (CPU for a module without tensors).
c10::Device module_device(const torch::nn::Module& module);

// Casts the module's floating parameters and buffers to `dtype` in place (integer buffers such
// as BERT's position_ids are left alone, which torch::nn::Module::to(dtype) would not do).
// For a cast that is undone afterwards, see ScopedModelDtype (model_guards.h).
void cast_floating_weights(torch::nn::Module& module, at::ScalarType dtype);

}  // namespace blip::retrieval
