#include "blip/blas_kernels.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace blip {
namespace {

constexpr const char* kCoretypeVar = "OPENBLAS_CORETYPE";
constexpr const char* kSkylakeX = "SkylakeX";
constexpr const char* kHaswell = "Haswell";

// OpenBLAS's exported "char* f(void)" getters, found at run time so that libblip links against
// any BLAS; "" when absent.
std::string openblas_string(const char* symbol) {
  using Getter = char* (*)();
  auto fn = reinterpret_cast<Getter>(dlsym(RTLD_DEFAULT, symbol));
  const char* text = fn ? fn() : nullptr;
  return text ? text : "";
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

CpuFeatures cpu_features() {
  CpuFeatures f;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  // The compiler runtime's CPUID reading also checks that the OS saves the AVX/AVX-512 registers.
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512cd = __builtin_cpu_supports("avx512cd");
#endif
  return f;
}

std::string best_openblas_coretype(const CpuFeatures& f) {
  const bool avx2 = f.avx2 && f.fma;
  if (avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512cd) return kSkylakeX;
  if (avx2) return kHaswell;
  return "";
}

int openblas_core_level(const std::string& core) {
  // The names of OpenBLAS's x86 cores (driver/others/dynamic.c), by the widest vector unit their
  // kernels use. "Unknown" and anything newer or non-x86 stay 0: not judged.
  static const struct {
    const char* name;
    int level;
  } kCores[] = {
      {"katmai", 1},      {"coppermine", 1}, {"northwood", 1},    {"prescott", 1},   {"banias", 1},
      {"atom", 1},        {"core2", 1},      {"penryn", 1},       {"dunnington", 1}, {"nehalem", 1},
      {"athlon", 1},      {"opteron", 1},    {"opteron_sse3", 1}, {"barcelona", 1},  {"nano", 1},
      {"bobcat", 1},      {"sandybridge", 2}, {"bulldozer", 2},   {"piledriver", 2}, {"steamroller", 2},
      {"haswell", 3},     {"excavator", 3},  {"zen", 3},          {"dhyana", 3},     {"skylakex", 4},
      {"cooperlake", 4},  {"sapphirerapids", 4},
  };
  const std::string key = lower(core);
  for (const auto& c : kCores)
    if (key == c.name) return c.level;
  return 0;
}

bool BlasKernels::dynamic_arch() const { return config.find("DYNAMIC_ARCH") != std::string::npos; }

bool BlasKernels::below_cpu() const {
  const int have = openblas_core_level(core);
  const int best = openblas_core_level(cpu_best);
  return have > 0 && best > 0 && have < best;
}

BlasKernels blas_kernels() {
  BlasKernels k;
  k.config = openblas_string("openblas_get_config");
  k.core = openblas_string("openblas_get_corename");
  k.cpu_best = best_openblas_coretype(cpu_features());
  k.env_value = env(kCoretypeVar);
  return k;
}

std::string blas_coretype_to_set(const BlasKernels& k, bool already_reexecuted) {
  if (already_reexecuted || !k.env_value.empty() || !k.dynamic_arch() || !k.below_cpu()) return "";
  return k.cpu_best;
}

std::string blas_kernel_warning(const BlasKernels& k) {
  if (!k.below_cpu()) return "";
  std::string s = "OpenBLAS runs its " + k.core + " kernels on a CPU that supports its " + k.cpu_best +
                  " kernels, so matrix products can be several times slower than they need be; ";
  if (!k.dynamic_arch())
    return s + "this OpenBLAS is built for one CPU type (no DYNAMIC_ARCH), so use one built for this CPU or "
               "with DYNAMIC_ARCH";
  if (!k.env_value.empty())
    return s + "they are the ones OPENBLAS_CORETYPE=" + k.env_value + " asks for: set OPENBLAS_CORETYPE=" +
           k.cpu_best + " instead before the program starts";
  return s + "set OPENBLAS_CORETYPE=" + k.cpu_best +
         " in the environment before the program starts (OpenBLAS reads it only when it is loaded)";
}

std::vector<std::pair<std::string, std::string>> thread_env_to_set() {
  // OpenBLAS's minimum timeout (2^4 cycles of its wait loop): its workers go to sleep at once.
  const std::pair<const char*, const char*> wanted[] = {{"OMP_WAIT_POLICY", "PASSIVE"},
                                                        {"OPENBLAS_THREAD_TIMEOUT", "4"}};
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, value] : wanted)
    if (env(name).empty()) out.emplace_back(name, value);
  return out;
}

bool reexec_with_best_blas_kernels(int argc, char** argv) {
#ifdef __linux__
  if (argc < 1 || argv == nullptr || argv[0] == nullptr) return false;
  const bool reexecuted = std::getenv(kBlasReexecGuardVar) != nullptr;
  const std::string core = blas_coretype_to_set(blas_kernels(), reexecuted);
  const auto threads = reexecuted ? std::vector<std::pair<std::string, std::string>>{} : thread_env_to_set();
  if (core.empty() && threads.empty()) return false;
  std::vector<std::string> changed;
  bool ok = setenv(kBlasReexecGuardVar, core.empty() ? "threads" : core.c_str(), 1) == 0;
  if (!core.empty()) {
    ok = ok && setenv(kCoretypeVar, core.c_str(), 1) == 0;
    changed.push_back(kCoretypeVar);
  }
  for (const auto& [name, value] : threads) {
    ok = ok && setenv(name.c_str(), value.c_str(), 1) == 0;
    changed.push_back(name);
  }
  if (ok) {
    std::fflush(nullptr);  // nothing buffered may be lost or printed twice
    execv("/proc/self/exe", argv);
  }
  // Still here: run on with what we have, and leave the environment as it was.
  for (const auto& name : changed) unsetenv(name.c_str());
  unsetenv(kBlasReexecGuardVar);
#else
  (void)argc;
  (void)argv;
#endif
  return false;
}

}  // namespace blip
