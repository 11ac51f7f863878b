// Whether this CPU multiplies bf16 matrices faster than fp32.
//
// LibTorch sends CPU bf16 matrix products to oneDNN. With AMX (Intel Sapphire Rapids and later,
// where the operating system enables the tile state) they run several times faster than fp32.
// With AVX512_BF16 alone, one vdpbf16ps does no more multiply-adds per cycle than the fp32 FMAs
// do, and the conversions and weight reorders come on top: bench_bf16_linear measured every bf16
// Linear path of LibTorch 1.13 at 0.4-0.8x fp32 on such a CPU (a VM that hides AMX). Without
// either, bf16 is widened to fp32 first. bf16 is also less precise, so there it only costs.
#pragma once

#include <string>

namespace blip {

// The CPU's bf16 matrix instructions, each as CPUID reports it; all false off x86.
struct Bf16Hardware {
  bool avx512_bf16 = false;  // CPUID.(7,1):EAX[5], usable only with AVX-512 enabled by the OS
  bool amx_tile = false;     // CPUID.(7,0):EDX[24]
  bool amx_bf16 = false;     // CPUID.(7,0):EDX[22]
  bool os_amx_state = false;  // XCR0 bits 17-18: the OS saves the tile configuration and data

  // The tiles can run bf16 products (a process must still ask Linux for the tile data, which
  // oneDNN does).
  bool amx_usable() const { return amx_tile && amx_bf16 && os_amx_state; }
};

// This CPU's bf16 hardware.
Bf16Hardware bf16_hardware();

// One sentence for programs to show when bf16 is chosen on this CPU and will not be faster than
// fp32 (no usable AMX); "" where AMX is usable. libblip itself never prints it.
std::string cpu_bf16_warning(const Bf16Hardware& hardware);

}  // namespace blip
