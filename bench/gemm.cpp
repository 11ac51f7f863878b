// Measures matmul throughput as libblip sees it (the BLAS torch is linked against here), and says
// which OpenBLAS kernels ran. Like the tools, it first re-executes itself with the CPU's best
// OpenBLAS kernels when OpenBLAS chose generic ones (BLIP_BLAS_REEXEC=1 turns that off, to measure
// OpenBLAS's own choice).
// Usage: bench_gemm [n=2048]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>

#include "blas_info.h"
#include "blip/blas_kernels.h"
#include "gemm_reference.h"

namespace {

// The kernels being timed must also be right: fp32 and bf16 products of one 256^2 pair against
// float64, relative to the largest entry (bf16 keeps 8 mantissa bits).
constexpr int64_t kCheckSize = 256;
constexpr double kFp32Tolerance = 1e-5;
constexpr double kBf16Tolerance = 3e-2;

double relative_error(const at::Tensor& product, const at::Tensor& exact) {
  return (product.to(at::kDouble) - exact).abs().max().item<double>() / exact.abs().max().item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  blip::reexec_with_best_blas_kernels(argc, argv);
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 2048;
  if (n < 1) {
    std::fprintf(stderr, "bench_gemm: n: expected a positive size, got '%s'\n", argv[1]);
    return 1;
  }
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

  const at::Tensor a = at::randn({kCheckSize, kCheckSize}), b = at::randn({kCheckSize, kCheckSize});
  const at::Tensor exact = at::matmul(a.to(at::kDouble), b.to(at::kDouble));
  const double e32 = relative_error(at::matmul(a, b), exact);
  const double e16 = relative_error(at::matmul(a.to(at::kBFloat16), b.to(at::kBFloat16)), exact);
  std::printf("check %lld^2 vs float64: fp32 %.2e (limit %.0e), bf16 %.2e (limit %.0e)\n",
              static_cast<long long>(kCheckSize), e32, kFp32Tolerance, e16, kBf16Tolerance);
  if (!(e32 <= kFp32Tolerance) || !(e16 <= kBf16Tolerance)) {
    std::fprintf(stderr, "bench_gemm: FAILED: a matrix product is wrong beyond its tolerance\n");
    return 1;
  }
  return 0;
}
