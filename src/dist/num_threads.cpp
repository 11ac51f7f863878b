#include "blip/dist/num_threads.h"

#include "dist/env_parse.h"

#include <sched.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <thread>

namespace blip::dist {

namespace {

// Upper bound for thread and task counts read from the environment.
constexpr int kMaxCount = 1 << 16;

// The leading integer of `value` (of variable `name`): "4,2" -> 4, "2(x3),1" -> 2.
int leading_count(const char* name, const std::string& value) {
  std::size_t digits = 0;
  while (digits < value.size() && std::isdigit(static_cast<unsigned char>(value[digits]))) ++digits;
  return detail::parse_int_env(name, value.substr(0, digits == 0 ? value.size() : digits).c_str(),
                               1, kMaxCount);
}

}  // namespace

int available_cores() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

int default_num_threads(const LaunchInfo& info, const EnvLookup& lookup, int cores) {
  const EnvLookup env = detail::env_or_getenv(lookup);
  if (const std::string omp = detail::env_or(env, "OMP_NUM_THREADS", ""); !omp.empty()) {
    // An OpenMP list ("4,2") gives one count per nesting level; the first is ours.
    const std::string first = omp.substr(0, omp.find(','));
    return detail::parse_int_env("OMP_NUM_THREADS", first.c_str(), 1, kMaxCount);
  }
  if (cores <= 0) cores = available_cores();
  if (info.world_size <= 1) return cores;
  int per_host = info.world_size;
  if (info.launcher == "slurm") {
    if (const std::string cpt = detail::env_or(env, "SLURM_CPUS_PER_TASK", ""); !cpt.empty())
      return detail::parse_int_env("SLURM_CPUS_PER_TASK", cpt.c_str(), 1, kMaxCount);
    if (const std::string n = detail::env_or(env, "SLURM_NTASKS_PER_NODE", ""); !n.empty())
      per_host = detail::parse_int_env("SLURM_NTASKS_PER_NODE", n.c_str(), 1, kMaxCount);
    else if (const std::string t = detail::env_or(env, "SLURM_TASKS_PER_NODE", ""); !t.empty())
      per_host = leading_count("SLURM_TASKS_PER_NODE", t);
  } else if (info.launcher == "torchrun") {
    if (const std::string n = detail::env_or(env, "LOCAL_WORLD_SIZE", ""); !n.empty())
      per_host = detail::parse_int_env("LOCAL_WORLD_SIZE", n.c_str(), 1, kMaxCount);
  }
  return std::max(1, cores / per_host);
}

}  // namespace blip::dist
