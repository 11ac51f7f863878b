#include "blip/bf16_hardware.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define BLIP_X86_CPUID 1
#endif

#include <cstdint>

namespace blip {
namespace {

#ifdef BLIP_X86_CPUID
constexpr unsigned kLeafFeatures = 7;
constexpr unsigned kOsxsaveBit = 1u << 27;  // CPUID.1:ECX: XGETBV is available
constexpr unsigned kAmxBf16Bit = 1u << 22;  // CPUID.(7,0):EDX
constexpr unsigned kAmxTileBit = 1u << 24;  // CPUID.(7,0):EDX
constexpr unsigned kAvx512Bf16Bit = 1u << 5;  // CPUID.(7,1):EAX
constexpr std::uint64_t kXcr0TileState = (1u << 17) | (1u << 18);  // XTILECFG, XTILEDATA

std::uint64_t read_xcr0() {
  std::uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}
#endif

}  // namespace

Bf16Hardware bf16_hardware() {
  Bf16Hardware h;
#ifdef BLIP_X86_CPUID
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < kLeafFeatures) return h;
  __cpuid(1, eax, ebx, ecx, edx);
  const bool osxsave = (ecx & kOsxsaveBit) != 0;
  __cpuid_count(kLeafFeatures, 0, eax, ebx, ecx, edx);
  const unsigned sub_leaves = eax;  // the highest subleaf of leaf 7
  h.amx_bf16 = (edx & kAmxBf16Bit) != 0;
  h.amx_tile = (edx & kAmxTileBit) != 0;
  if (sub_leaves >= 1) {
    __cpuid_count(kLeafFeatures, 1, eax, ebx, ecx, edx);
    // The compiler runtime's AVX-512 check includes the OS's register saving.
    __builtin_cpu_init();
    h.avx512_bf16 = (eax & kAvx512Bf16Bit) != 0 && __builtin_cpu_supports("avx512f");
  }
  h.os_amx_state = osxsave && (read_xcr0() & kXcr0TileState) == kXcr0TileState;
#endif
  return h;
}

std::string cpu_bf16_warning(const Bf16Hardware& h) {
  if (h.amx_usable()) return "";
  std::string why;
  if (h.amx_tile && h.amx_bf16)
    why = "this CPU has AMX but the operating system does not enable its tile state";
  else if (h.avx512_bf16)
    why = "this CPU has no AMX, only AVX512_BF16 (no more multiply-adds per cycle than fp32 FMAs)";
  else
    why = "this CPU has no bf16 matrix instructions (bf16 is widened to fp32 first)";
  return why + ": bf16 is not faster than fp32 here, and less precise";
}

}  // namespace blip
