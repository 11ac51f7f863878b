// The models' entry to the fused attention kernels (include/blip/models/fused_attention.h):
// choosing a kernel for the CPU, checking that a call fits it, and splitting the work into
// blocks of query rows run in parallel.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace blip::models {

// score = ((q * q_scale) . k) / score_divisor * score_multiplier, so that each model keeps its
// own order of operations (1 where unused). q_scale must be exact (a power of two).
struct AttentionScale {
  float q_scale = 1.0f, score_divisor = 1.0f, score_multiplier = 1.0f;
};

// True where fused_attention can compute this attention: the kernel is enabled, all tensors
// float32 on the CPU, none needing a gradient, and the shapes those of fused_attention.
//   q [B, Lq, heads * d] and k, v [Bk, N, heads * d] (Bk = B, or 1 for keys shared by every
//   query batch), each with a dense last dimension (views into a wider projection are fine);
//   key_bias [Bb, N] (Bb = B or 1) added to every query's scores, or undefined.
bool fused_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& key_bias, std::int64_t heads);

// softmax(score + key_bias) v for every batch and head: [B, Lq, heads * d], heads side by side
// as BLIP's context layer has them. Only where fused_attention_applies.
at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& key_bias, std::int64_t heads, const AttentionScale& scale);

// While one lives, this thread runs the named kernel ("avx512" or "avx2") where the fused path
// applies, so that the tests check every kernel this CPU can run, not only the widest.
// Throws std::invalid_argument for a kernel that was not built or that the CPU cannot run.
class FusedKernelChoice {
 public:
  explicit FusedKernelChoice(const char* name);
  ~FusedKernelChoice();
  FusedKernelChoice(const FusedKernelChoice&) = delete;
  FusedKernelChoice& operator=(const FusedKernelChoice&) = delete;

 private:
  const void* previous_;
};

// The kernels this CPU can run, widest first.
std::vector<std::string> runnable_fused_kernels();

}  // namespace blip::models
