// Which matrix kernels a benchmark ran on: OpenBLAS's core name (found at run time, so that a
// build against another BLAS still links) and whether oneDNN (used by torch for bf16 matmul on
// CPU) is compiled in.
#pragma once

#include <ATen/Context.h>
#include <dlfcn.h>

#include <string>

namespace blip::bench {

// openblas_get_corename() ("Prescott", "SkylakeX", ...), or "" when the process has no OpenBLAS.
inline std::string openblas_corename() {
  using Fn = char* (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* name = fn ? fn() : nullptr;
  return name ? name : "";
}

// openblas_get_config() (version, build options), or "".
inline std::string openblas_config() {
  using Fn = char* (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  const char* config = fn ? fn() : nullptr;
  return config ? config : "";
}

inline bool has_onednn() { return at::hasMKLDNN(); }

}  // namespace blip::bench
