// A GEMM measured in the same run as a benchmark, so that achieved GFLOP/s can be compared with
// what this machine's BLAS delivers right now (the machines are noisy; never compare across runs).
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <cstdlib>
#include <string>

namespace blip::bench {

struct GemmResult {
  double gflops = 0;
  double seconds_per_call = 0;
};

// Best-of-`reps` throughput of an n×n×n matmul in `dtype`.
inline GemmResult measure_gemm(int64_t n, at::ScalarType dtype, int reps = 5) {
  auto a = at::randn({n, n}).to(dtype);
  auto b = at::randn({n, n}).to(dtype);
  at::mm(a, b);  // warm-up (thread pools, packing buffers)
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto c = at::mm(a, b);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return {2.0 * n * n * n / best / 1e9, best};
}

// The OpenBLAS core type forced through the environment ("" when OpenBLAS picks its own).
inline std::string openblas_coretype() {
  const char* v = std::getenv("OPENBLAS_CORETYPE");
  return v ? v : "";
}

}  // namespace blip::bench
