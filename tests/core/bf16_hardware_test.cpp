#include "blip/bf16_hardware.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace {

// The "flags" of the first processor in /proc/cpuinfo: what the Linux kernel found and enabled.
bool read_cpuinfo_flags(std::set<std::string>* flags) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;) flags->insert(w);
    return true;
  }
  return false;
}

std::string expect_warning(const blip::Bf16Hardware& h, const std::string& needle) {
  const std::string w = blip::cpu_bf16_warning(h);
  EXPECT_NE(w.find(needle), std::string::npos) << w;
  EXPECT_NE(w.find("not faster than fp32"), std::string::npos) << w;
  return w;
}

}  // namespace

// CPUID and XCR0 as we read them against the kernel's flags (it clears amx_* where it does not
// enable the tile state, and a VM that hides AMX shows neither).
TEST(Bf16Hardware, AgreesWithTheKernelsCpuFlags) {
#if !defined(__linux__) || !(defined(__x86_64__) || defined(__i386__))
  GTEST_SKIP() << "the CPU flags are read from Linux's /proc/cpuinfo on x86";
#else
  std::set<std::string> flags;
  if (!read_cpuinfo_flags(&flags)) GTEST_SKIP() << "/proc/cpuinfo has no flags line";
  const blip::Bf16Hardware h = blip::bf16_hardware();
  std::printf("  avx512_bf16 %d, amx_tile %d, amx_bf16 %d, OS tile state %d\n", h.avx512_bf16, h.amx_tile,
              h.amx_bf16, h.os_amx_state);
  EXPECT_EQ(h.avx512_bf16, flags.count("avx512_bf16") == 1);
  EXPECT_EQ(h.amx_usable(), flags.count("amx_tile") == 1 && flags.count("amx_bf16") == 1);
  EXPECT_EQ(blip::cpu_bf16_warning(h).empty(), h.amx_usable());
#endif
}

TEST(Bf16Hardware, WarnsWithoutUsableAmxAndSaysWhy) {
  blip::Bf16Hardware amx;
  amx.avx512_bf16 = amx.amx_tile = amx.amx_bf16 = amx.os_amx_state = true;
  EXPECT_TRUE(amx.amx_usable());
  EXPECT_EQ(blip::cpu_bf16_warning(amx), "");

  blip::Bf16Hardware no_os = amx;
  no_os.os_amx_state = false;
  EXPECT_FALSE(no_os.amx_usable());
  expect_warning(no_os, "does not enable its tile state");

  blip::Bf16Hardware avx512_only;
  avx512_only.avx512_bf16 = true;
  expect_warning(avx512_only, "no AMX");

  expect_warning(blip::Bf16Hardware{}, "no bf16 matrix instructions");
}
