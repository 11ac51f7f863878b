// Measures matmul throughput as libblip sees it (the BLAS torch is linked against here), and says
// which OpenBLAS kernels ran. Like the tools, it first re-executes itself with the CPU's best
// OpenBLAS kernels when OpenBLAS chose generic ones (BLIP_BLAS_REEXEC=1 turns that off, to measure
// OpenBLAS's own choice).
// Usage: bench_gemm [n=2048]
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>

#include "blas_info.h"
#include "blip/blas_kernels.h"
#include "gemm_reference.h"

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 2048;
  const auto coretype = blip::bench::openblas_coretype();
  const auto blas = blip::blas_kernels();
  std::printf("threads=%d OPENBLAS_CORETYPE=%s n=%lld\n", at::get_num_threads(),
              coretype.empty() ? "(unset)" : coretype.c_str(), static_cast<long long>(n));
  std::printf("openblas core: %s (cpu supports: %s)\n", blas.core.empty() ? "(no OpenBLAS)" : blas.core.c_str(),
              blas.cpu_best.empty() ? "(none)" : blas.cpu_best.c_str());
  if (const auto warning = blip::blas_kernel_warning(blas); !warning.empty()) std::printf("warning: %s\n", warning.c_str());
  const auto f32 = blip::bench::measure_gemm(n, at::kFloat);
  std::printf("fp32 matmul: %8.1f GFLOP/s (%.4f s per call)\n", f32.gflops, f32.seconds_per_call);
  const auto bf16 = blip::bench::measure_gemm(n, at::kBFloat16);
  std::printf("bf16 matmul: %8.1f GFLOP/s (%.4f s per call)\n", bf16.gflops, bf16.seconds_per_call);
  return 0;
}
