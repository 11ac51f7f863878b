#include "blip/blas_kernels.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <regex>
#include <string>
#include <vector>

#include "common/run_command.h"

namespace {

constexpr const char* kDynamicConfig = "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Prescott MAX_THREADS=64";

blip::CpuFeatures avx2_cpu() {
  blip::CpuFeatures f;
  f.avx2 = f.fma = true;
  return f;
}

blip::CpuFeatures avx512_cpu() {
  blip::CpuFeatures f = avx2_cpu();
  f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512cd = true;
  return f;
}

blip::BlasKernels kernels(const std::string& core, const blip::CpuFeatures& cpu, const std::string& env = "",
                          const std::string& config = kDynamicConfig) {
  return {config, core, blip::best_openblas_coretype(cpu), env};
}

}  // namespace

TEST(BlasKernels, BestCoretypeFollowsCpuFeatures) {
  EXPECT_EQ(blip::best_openblas_coretype(avx512_cpu()), "SkylakeX");
  EXPECT_EQ(blip::best_openblas_coretype(avx2_cpu()), "Haswell");
  EXPECT_EQ(blip::best_openblas_coretype(blip::CpuFeatures{}), "");
  // AVX-512 without all five subsets OpenBLAS's SkylakeX kernels use (Xeon Phi has F+CD only).
  blip::CpuFeatures phi = avx2_cpu();
  phi.avx512f = phi.avx512cd = true;
  EXPECT_EQ(blip::best_openblas_coretype(phi), "Haswell");
  blip::CpuFeatures no_fma = avx512_cpu();
  no_fma.fma = false;
  EXPECT_EQ(blip::best_openblas_coretype(no_fma), "");
}

TEST(BlasKernels, CoreLevelsRankOpenBlasNames) {
  for (const char* name : {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Barcelona"})
    EXPECT_EQ(blip::openblas_core_level(name), 1) << name;
  for (const char* name : {"Sandybridge", "Bulldozer", "Piledriver", "Steamroller"})
    EXPECT_EQ(blip::openblas_core_level(name), 2) << name;
  for (const char* name : {"Haswell", "Zen", "Excavator"}) EXPECT_EQ(blip::openblas_core_level(name), 3) << name;
  for (const char* name : {"SkylakeX", "Cooperlake", "SapphireRapids", "SKYLAKEX", "skylakex"})
    EXPECT_EQ(blip::openblas_core_level(name), 4) << name;
  for (const char* name : {"", "Unknown", "NEOVERSEN1", "Skylake"}) EXPECT_EQ(blip::openblas_core_level(name), 0) << name;
}

TEST(BlasKernels, CoretypeToSetDecisionTable) {
  struct Case {
    const char* what;
    blip::BlasKernels k;
    bool reexecuted;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"Prescott on an AVX-512 CPU", kernels("Prescott", avx512_cpu()), false, "SkylakeX"},
      {"Prescott on an AVX2 CPU", kernels("Prescott", avx2_cpu()), false, "Haswell"},
      {"Sandybridge on an AVX-512 CPU", kernels("Sandybridge", avx512_cpu()), false, "SkylakeX"},
      {"Zen on an AVX-512 CPU", kernels("Zen", avx512_cpu()), false, "SkylakeX"},
      {"Haswell on an AVX2 CPU", kernels("Haswell", avx2_cpu()), false, ""},
      {"SkylakeX on an AVX-512 CPU", kernels("SkylakeX", avx512_cpu()), false, ""},
      {"Cooperlake on an AVX-512 CPU", kernels("Cooperlake", avx512_cpu()), false, ""},
      {"SapphireRapids (newer OpenBLAS)", kernels("SapphireRapids", avx512_cpu()), false, ""},
      {"Prescott on a CPU without AVX2", kernels("Prescott", blip::CpuFeatures{}), false, ""},
      {"user set OPENBLAS_CORETYPE", kernels("Haswell", avx512_cpu(), "Haswell"), false, ""},
      {"user set a generic core", kernels("Prescott", avx512_cpu(), "Prescott"), false, ""},
      {"already re-executed, still low", kernels("Prescott", avx512_cpu()), true, ""},
      {"not OpenBLAS", kernels("", avx512_cpu(), "", ""), false, ""},
      {"single-target OpenBLAS", kernels("PRESCOTT", avx512_cpu(), "", "OpenBLAS 0.3.21 NO_AFFINITY PRESCOTT"), false,
       ""},
      {"core name not known", kernels("Unknown", avx512_cpu()), false, ""},
  };
  ASSERT_EQ(cases.size(), 15u);
  for (const auto& c : cases) EXPECT_EQ(blip::blas_coretype_to_set(c.k, c.reexecuted), c.expected) << c.what;
}

TEST(BlasKernels, WarningOnlyWhenBelowCpu) {
  const auto low = kernels("Prescott", avx512_cpu());
  ASSERT_TRUE(low.below_cpu());
  const std::string w = blip::blas_kernel_warning(low);
  EXPECT_NE(w.find("Prescott"), std::string::npos) << w;
  EXPECT_NE(w.find("OPENBLAS_CORETYPE=SkylakeX"), std::string::npos) << w;
  EXPECT_EQ(w.find('\n'), std::string::npos) << w;

  const std::string forced = blip::blas_kernel_warning(kernels("Haswell", avx512_cpu(), "Haswell"));
  EXPECT_NE(forced.find("OPENBLAS_CORETYPE=Haswell asks for: set OPENBLAS_CORETYPE=SkylakeX"), std::string::npos) << forced;

  const std::string fixed = blip::blas_kernel_warning(kernels("PRESCOTT", avx512_cpu(), "", "OpenBLAS 0.3.21 PRESCOTT"));
  EXPECT_NE(fixed.find("DYNAMIC_ARCH"), std::string::npos) << fixed;

  EXPECT_EQ(blip::blas_kernel_warning(kernels("SkylakeX", avx512_cpu())), "");
  EXPECT_EQ(blip::blas_kernel_warning(kernels("Haswell", avx2_cpu())), "");
  EXPECT_EQ(blip::blas_kernel_warning(kernels("", avx512_cpu(), "", "")), "");
}

// Sets a variable for one test and puts the old state back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_.c_str(), old_.c_str(), 1);
    else unsetenv(name_.c_str());
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

TEST(BlasKernels, ThisProcessHasNoOpenBlasAndNothingToDo) {
  // test_core links no BLAS: the lookups find nothing; with the thread settings already in the
  // environment the re-execution is a no-op.
  const ScopedEnv wait("OMP_WAIT_POLICY", "ACTIVE"), timeout("OPENBLAS_THREAD_TIMEOUT", "8");
  const auto k = blip::blas_kernels();
  EXPECT_EQ(k.core, "");
  EXPECT_EQ(blip::blas_coretype_to_set(k, false), "");
  EXPECT_TRUE(blip::thread_env_to_set().empty());
  char arg0[] = "test_core";
  char* argv[] = {arg0, nullptr};
  EXPECT_FALSE(blip::reexec_with_best_blas_kernels(1, argv));
}

TEST(BlasKernels, ThreadSettingsOnlyWhereUnset) {
  {
    const ScopedEnv wait("OMP_WAIT_POLICY", nullptr), timeout("OPENBLAS_THREAD_TIMEOUT", nullptr);
    const auto set = blip::thread_env_to_set();
    ASSERT_EQ(set.size(), 2u);
    EXPECT_EQ(set[0], (std::pair<std::string, std::string>{"OMP_WAIT_POLICY", "PASSIVE"}));
    EXPECT_EQ(set[1], (std::pair<std::string, std::string>{"OPENBLAS_THREAD_TIMEOUT", "4"}));
  }
  const ScopedEnv wait("OMP_WAIT_POLICY", "ACTIVE"), timeout("OPENBLAS_THREAD_TIMEOUT", nullptr);
  const auto set = blip::thread_env_to_set();
  ASSERT_EQ(set.size(), 1u);  // the user's OMP_WAIT_POLICY is kept
  EXPECT_EQ(set[0].first, "OPENBLAS_THREAD_TIMEOUT");
}

// End to end: a tool re-executes itself with the CPU's best kernels, and respects the user's value.
namespace {

std::string tool() { return std::string(BLIP_BINARY_DIR) + "/tools/blip_convert"; }

struct ToolReport {
  std::string core;      // "openblas core: <core> (...)"
  std::string coretype;  // OPENBLAS_CORETYPE as the tool saw it, "" when unset
  std::string cpu_best;  // "cpu supports: <name>"
  std::string output;
};

ToolReport blas_info(const std::string& env) {
  const auto r = blip::test::run_command("env -u OPENBLAS_CORETYPE -u " + std::string(blip::kBlasReexecGuardVar) +
                                         " " + env + " " + blip::test::quote(tool()) + " --blas-info");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ToolReport t;
  t.output = r.output;
  std::smatch m;
  if (std::regex_search(r.output, m, std::regex(R"(openblas core: (\S*) \((?:OPENBLAS_CORETYPE=([^),]*)|OPENBLAS_CORETYPE unset))")))
    t.core = m[1], t.coretype = m[2];
  else
    ADD_FAILURE() << "no 'openblas core:' line in: " << r.output;
  if (std::regex_search(r.output, m, std::regex(R"(cpu supports: (\S*))"))) t.cpu_best = m[1];
  return t;
}

// Skips (saying why) where the check cannot apply; else returns the CPU's best core type.
std::string require_dynamic_openblas_and_avx2(const ToolReport& t) {
  if (t.core == "(none)") return "the tools' BLAS is not OpenBLAS";
  if (t.output.find("DYNAMIC_ARCH") == std::string::npos) return "OpenBLAS is not built with DYNAMIC_ARCH";
  if (t.cpu_best.empty() || t.cpu_best == "(none)") return "the CPU has no AVX2";
  return "";
}

bool tool_built() {
  struct stat st {};
  return stat(tool().c_str(), &st) == 0;
}

}  // namespace

TEST(BlasKernelsTool, UnsetCoretypeRunsTheCpusBestKernels) {
  if (!tool_built()) GTEST_SKIP() << tool() << " is not built (BLIP_BUILD_TOOLS=OFF)";
  const auto t = blas_info("");
  if (const auto why = require_dynamic_openblas_and_avx2(t); !why.empty()) GTEST_SKIP() << why;
  EXPECT_EQ(t.cpu_best, blip::blas_kernels().cpu_best) << t.output;
  // Either OpenBLAS chose kernels at least as good by itself (OPENBLAS_CORETYPE stays unset) or the
  // tool re-executed itself with the CPU's best.
  EXPECT_GE(blip::openblas_core_level(t.core), blip::openblas_core_level(t.cpu_best)) << t.output;
  if (!t.coretype.empty()) {
    EXPECT_EQ(t.coretype, t.cpu_best) << t.output;
    EXPECT_EQ(t.core, t.cpu_best) << t.output;
  }
  std::printf("unset OPENBLAS_CORETYPE: tool runs %s (cpu supports %s, OPENBLAS_CORETYPE=%s)\n", t.core.c_str(),
              t.cpu_best.c_str(), t.coretype.empty() ? "(unset)" : t.coretype.c_str());
}

TEST(BlasKernelsTool, UserCoretypeIsRespected) {
  if (!tool_built()) GTEST_SKIP() << tool() << " is not built (BLIP_BUILD_TOOLS=OFF)";
  const auto probe = blas_info("");
  if (const auto why = require_dynamic_openblas_and_avx2(probe); !why.empty()) GTEST_SKIP() << why;
  const auto t = blas_info("OPENBLAS_CORETYPE=Haswell");
  EXPECT_EQ(t.core, "Haswell") << t.output;
  EXPECT_EQ(t.coretype, "Haswell") << t.output;
}

TEST(BlasKernelsTool, ToolsRunWithSleepingIdleThreadsUnlessTheUserSaysOtherwise) {
  if (!tool_built()) GTEST_SKIP() << tool() << " is not built (BLIP_BUILD_TOOLS=OFF)";
  auto r = blip::test::run_command("env -u OMP_WAIT_POLICY -u OPENBLAS_THREAD_TIMEOUT -u " +
                                   std::string(blip::kBlasReexecGuardVar) + " " + blip::test::quote(tool()) +
                                   " --blas-info");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("OMP_WAIT_POLICY: PASSIVE"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("OPENBLAS_THREAD_TIMEOUT: 4"), std::string::npos) << r.output;
  r = blip::test::run_command("env -u " + std::string(blip::kBlasReexecGuardVar) +
                              " OMP_WAIT_POLICY=ACTIVE OPENBLAS_THREAD_TIMEOUT=10 " + blip::test::quote(tool()) +
                              " --blas-info");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("OMP_WAIT_POLICY: ACTIVE"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("OPENBLAS_THREAD_TIMEOUT: 10"), std::string::npos) << r.output;
}

TEST(BlasKernelsTool, GuardVariableTurnsReexecutionOff) {
  if (!tool_built()) GTEST_SKIP() << tool() << " is not built (BLIP_BUILD_TOOLS=OFF)";
  const auto t = blas_info(std::string(blip::kBlasReexecGuardVar) + "=1");
  EXPECT_EQ(t.coretype, "") << t.output;  // OpenBLAS's own choice, whatever it is
}
