// Which matrix kernels OpenBLAS runs, and getting the best ones this CPU supports.
//
// A DYNAMIC_ARCH OpenBLAS picks its kernels once, in a constructor that runs when the library is
// loaded, from the CPU model — and older releases (Debian 12's 0.3.21) fall back to their generic
// Prescott kernels on CPU models newer than they know, 4–9× slower than the AVX-512 kernels the
// CPU could run. The only way to change the choice is the OPENBLAS_CORETYPE environment variable,
// read at load time: setting it inside main() is too late, so tools re-execute themselves once
// with it set. Nothing here needs OpenBLAS at build time: its functions are looked up at run time,
// so a process with another BLAS (or none) just reports "" and nothing happens.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace blip {

// The environment variable that marks a process re-executed by reexec_with_best_blas_kernels()
// (its value is the core type it set). Set it to anything to turn the re-execution off.
constexpr const char* kBlasReexecGuardVar = "BLIP_BLAS_REEXEC";

// The instruction-set features that decide which OpenBLAS kernel family a CPU can run (each one
// usable, i.e. also enabled by the operating system). All false off x86.
struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512cd = false;
};

// This CPU's features.
CpuFeatures cpu_features();

// The best OpenBLAS core type (an OPENBLAS_CORETYPE value) a CPU with these features runs:
// "SkylakeX" (AVX-512 F/BW/VL/DQ/CD), "Haswell" (AVX2 + FMA), or "" (nothing worth forcing).
std::string best_openblas_coretype(const CpuFeatures& features);

// The instruction-set level of an OpenBLAS core name as openblas_get_corename() reports it
// (case-insensitive: DYNAMIC_ARCH builds say "SkylakeX", single-target builds "SKYLAKEX"):
// 1 SSE-era kernels (Prescott, Core2, Penryn, Dunnington, Nehalem, Atom, Opteron, Barcelona, ...),
// 2 AVX (Sandybridge, Bulldozer, Piledriver, Steamroller), 3 AVX2 (Haswell, Zen, Excavator,
// Dhyana), 4 AVX-512 (SkylakeX, Cooperlake, SapphireRapids); 0 for a name it does not know
// (then nothing is judged or changed).
int openblas_core_level(const std::string& core);

// What the process runs now.
struct BlasKernels {
  std::string config;     // openblas_get_config(), "" when the process has no OpenBLAS
  std::string core;       // openblas_get_corename(), "" when the process has no OpenBLAS
  std::string cpu_best;   // best_openblas_coretype(cpu_features())
  std::string env_value;  // OPENBLAS_CORETYPE as set ("" when unset or empty)

  // OpenBLAS was built with DYNAMIC_ARCH, so OPENBLAS_CORETYPE can choose its kernels.
  bool dynamic_arch() const;
  // The kernels in use are of a lower level than the CPU supports (false when either is unknown).
  bool below_cpu() const;
};

// Looks the OpenBLAS functions up in the running process (dlsym), the CPU features and the
// environment.
BlasKernels blas_kernels();

// The OPENBLAS_CORETYPE value to re-execute with, or "" to run on as is: non-empty only when a
// DYNAMIC_ARCH OpenBLAS runs kernels below what the CPU supports, the user has not set
// OPENBLAS_CORETYPE (a value the user set is always respected) and the process has not been
// re-executed for this already.
std::string blas_coretype_to_set(const BlasKernels& kernels, bool already_reexecuted);

// One sentence for applications that embed libblip to show their users when the kernels are below
// what the CPU supports (what runs, what the CPU could run, and what to set), "" otherwise.
// libblip itself never prints it.
std::string blas_kernel_warning(const BlasKernels& kernels);

// The thread-pool settings the tools run with, read (like OPENBLAS_CORETYPE) only when the
// libraries load: torch's OpenMP threads and OpenBLAS's own threads share the cores, and both
// spin after each parallel region by default, so on a small machine each pool's spinning steals
// the cores the other needs (measured on 2 cores: BLIP's ITM rerank 3.6x slower, a third of the
// time in sched_yield). OMP_WAIT_POLICY=PASSIVE and a short OPENBLAS_THREAD_TIMEOUT make idle
// threads sleep instead. Returns the (variable, value) pairs not yet in the environment (a value
// the user set is always kept).
std::vector<std::pair<std::string, std::string>> thread_env_to_set();

// For a program's main(), first thing (before anything starts threads or opens files it relies
// on): when blas_coretype_to_set() or thread_env_to_set() ask for a change, sets those variables
// and kBlasReexecGuardVar and replaces the process by a fresh run of the same executable with the
// same arguments
// (execv("/proc/self/exe", argv): same pid, same argv[0], so launchers such as torchrun see no
// difference). Returns only when it did not re-execute — nothing to do, or execv failed (then the
// environment is restored and the program goes on with the kernels it has): always false.
bool reexec_with_best_blas_kernels(int argc, char** argv);

}  // namespace blip
