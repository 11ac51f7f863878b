// Attention in one pass on the CPU for inference: where it applies (float32 on a CPU with
// AVX-512 or AVX2+FMA, no autograd, eval mode, a mask that is the same for every query), the
// BERT and ViT attention compute softmax(q k^T / scale + mask) v a few query rows at a time with
// the scores kept in cache between the two products, instead of ATen's matmul, softmax and matmul
// over the whole score tensor. The same sums in another order and the same softmax formula:
// results agree with ATen's to float rounding (tests/models/fused_attention_test.cpp).
#pragma once

namespace blip::models {

// The fused kernel this CPU runs: "avx512", "avx2", or "none" (attention then uses ATen's ops).
const char* fused_attention_kernel();

// While one lives, attention on this thread uses ATen's operators in BLIP's order (matmul,
// softmax, matmul) even where the fused kernel applies: the reference mode of the evaluation
// (which stands in for BLIP's Python) and the tests comparing the two.
class UnfusedAttention {
 public:
  UnfusedAttention();
  ~UnfusedAttention();
  UnfusedAttention(const UnfusedAttention&) = delete;
  UnfusedAttention& operator=(const UnfusedAttention&) = delete;

 private:
  bool previous_;
};

// False while an UnfusedAttention guard lives on this thread, or where the CPU has no kernel.
bool fused_attention_enabled();

// The threads the kernel's blocks are spread over: torch's intra-op threads
// (at::get_num_threads()) where libblip was compiled with OpenMP, 1 where it was not (ATen's
// parallel_for is a header template and runs serially in code built without -fopenmp).
int fused_attention_threads();

}  // namespace blip::models
