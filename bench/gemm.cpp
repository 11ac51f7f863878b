// Measures matmul throughput as libblip sees it (the BLAS torch is linked against here).
// Usage: bench_gemm [n=2048]
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>

#include "gemm_reference.h"

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 2048;
  const auto coretype = blip::bench::openblas_coretype();
  std::printf("threads=%d OPENBLAS_CORETYPE=%s n=%lld\n", at::get_num_threads(),
              coretype.empty() ? "(unset)" : coretype.c_str(), static_cast<long long>(n));
  const auto f32 = blip::bench::measure_gemm(n, at::kFloat);
  std::printf("fp32 matmul: %8.1f GFLOP/s (%.4f s per call)\n", f32.gflops, f32.seconds_per_call);
  const auto bf16 = blip::bench::measure_gemm(n, at::kBFloat16);
  std::printf("bf16 matmul: %8.1f GFLOP/s (%.4f s per call)\n", bf16.gflops, bf16.seconds_per_call);
  return 0;
}
