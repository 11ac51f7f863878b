// Which matrix kernels a benchmark ran on: OpenBLAS's core name (found at run time, so that a
// build against another BLAS still links) and whether oneDNN (used by torch for bf16 matmul on
// CPU) is compiled in.
#pragma once

#include <ATen/Context.h>

#include <string>

#include "blip/bf16_hardware.h"
#include "blip/blas_kernels.h"

namespace blip::bench {

// openblas_get_corename() ("Prescott", "SkylakeX", ...), or "" when the process has no OpenBLAS.
inline std::string openblas_corename() { return blip::blas_kernels().core; }

// openblas_get_config() (version, build options), or "".
inline std::string openblas_config() { return blip::blas_kernels().config; }

inline bool has_onednn() { return at::hasMKLDNN(); }

// What a bf16 figure ran on: "AMX" or why bf16 cannot beat fp32 on this CPU (blip/bf16_hardware.h).
inline std::string bf16_hardware_summary() {
  const blip::Bf16Hardware h = blip::bf16_hardware();
  return h.amx_usable() ? "AMX" : blip::cpu_bf16_warning(h);
}

}  // namespace blip::bench
