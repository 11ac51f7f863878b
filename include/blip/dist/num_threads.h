// Intra-op thread count for one rank: ranks that share a host must not each start a thread per
// core (torchrun sets OMP_NUM_THREADS=1 for that reason when it starts several ranks per host).
#pragma once

#include "blip/dist/distributed.h"

namespace blip::dist {

// CPUs this process may run on: its affinity mask (which SLURM's cgroups and task binding
// narrow), else std::thread::hardware_concurrency(); at least 1.
int available_cores();

// The thread count for at::set_num_threads under the launcher `info`, reading through `env`
// (std::getenv by default):
//   * OMP_NUM_THREADS when set (its first entry, for an OpenMP list such as "4,2"), a positive
//     integer, else blip::Error naming it;
//   * all available_cores() when not distributed (world size 1);
//   * SLURM: SLURM_CPUS_PER_TASK when set (what the job asked for each task), else
//     available_cores() / ranks on this host, with ranks on this host from SLURM_NTASKS_PER_NODE,
//     else the first count of SLURM_TASKS_PER_NODE ("2(x3),1" -> 2);
//   * torchrun: available_cores() / LOCAL_WORLD_SIZE;
//   * ranks on this host default to the world size when no variable says (never oversubscribes).
// The result is at least 1. `cores` replaces available_cores() where positive (for tests).
int default_num_threads(const LaunchInfo& info, const EnvLookup& env = {}, int cores = 0);

}  // namespace blip::dist
