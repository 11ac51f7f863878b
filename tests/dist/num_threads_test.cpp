// default_num_threads under the launchers, through a fake environment.
#include <gtest/gtest.h>

#include "blip/dist/num_threads.h"
#include "common/expect_error.h"
#include "dist/fake_env.h"

#include <algorithm>
#include <map>
#include <string>

namespace {

using namespace blip::dist;
using blip::test::expect_error;
using blip::test::fake_env;

LaunchInfo launched(const std::string& launcher, int world) {
  LaunchInfo info;
  info.launcher = launcher;
  info.world_size = world;
  info.master_addr = "127.0.0.1";
  return info;
}

TEST(NumThreads, AvailableCoresIsPositive) {
  EXPECT_GE(available_cores(), 1);
}

TEST(NumThreads, OmpNumThreadsWins) {
  EXPECT_EQ(default_num_threads(LaunchInfo{}, fake_env({{"OMP_NUM_THREADS", "3"}})), 3);
  EXPECT_EQ(default_num_threads(launched("torchrun", 8),
                                fake_env({{"OMP_NUM_THREADS", "5"}, {"LOCAL_WORLD_SIZE", "8"}})),
            5);
  EXPECT_EQ(default_num_threads(launched("slurm", 4),
                                fake_env({{"OMP_NUM_THREADS", "4,2"}, {"SLURM_CPUS_PER_TASK", "9"}})),
            4);  // an OpenMP list: the outer level
  expect_error([] { default_num_threads(LaunchInfo{}, fake_env({{"OMP_NUM_THREADS", "0"}})); },
               {"OMP_NUM_THREADS", "'0'"});
  expect_error([] { default_num_threads(LaunchInfo{}, fake_env({{"OMP_NUM_THREADS", "many"}})); },
               {"OMP_NUM_THREADS", "'many'"});
  // Empty counts as unset (as for the other launcher variables).
  EXPECT_EQ(default_num_threads(LaunchInfo{}, fake_env({{"OMP_NUM_THREADS", ""}})), available_cores());
}

TEST(NumThreads, AllCoresWhenNotDistributed) {
  const int cores = available_cores();
  EXPECT_EQ(default_num_threads(LaunchInfo{}, fake_env({})), cores);
  // torchrun with one rank, LOCAL_WORLD_SIZE notwithstanding.
  EXPECT_EQ(default_num_threads(launched("torchrun", 1), fake_env({{"LOCAL_WORLD_SIZE", "4"}})), cores);
}

// A 64-core host, so that every division shows.
constexpr int kCores = 64;

TEST(NumThreads, CoresSharedByRanksOnTheHost) {
  auto threads = [](const std::string& launcher, int world, std::map<std::string, std::string> env) {
    return default_num_threads(launched(launcher, world), fake_env(std::move(env)), kCores);
  };
  EXPECT_EQ(threads("none", 1, {}), 64);
  EXPECT_EQ(threads("torchrun", 16, {{"LOCAL_WORLD_SIZE", "2"}}), 32);
  EXPECT_EQ(threads("torchrun", 16, {{"LOCAL_WORLD_SIZE", "1"}}), 64);
  EXPECT_EQ(threads("torchrun", 16, {{"LOCAL_WORLD_SIZE", "3"}}), 21);
  // No LOCAL_WORLD_SIZE: assume every rank on this host (never oversubscribes).
  EXPECT_EQ(threads("torchrun", 4, {}), 16);
  // Far more ranks than cores: still one thread each.
  EXPECT_EQ(threads("torchrun", 4096, {{"LOCAL_WORLD_SIZE", "4096"}}), 1);
  EXPECT_EQ(threads("slurm", 8, {{"SLURM_NTASKS_PER_NODE", "4"}}), 16);
  EXPECT_EQ(threads("slurm", 8, {{"SLURM_TASKS_PER_NODE", "2(x4)"}}), 32);
  EXPECT_EQ(threads("slurm", 8, {{"SLURM_TASKS_PER_NODE", "8"}}), 8);
  EXPECT_EQ(threads("slurm", 8, {{"SLURM_NTASKS_PER_NODE", "4"}, {"SLURM_TASKS_PER_NODE", "2(x4)"}}), 16);
  EXPECT_EQ(threads("slurm", 8, {}), 8);
  // What the job asked for each task is exact.
  EXPECT_EQ(threads("slurm", 8, {{"SLURM_CPUS_PER_TASK", "6"}, {"SLURM_NTASKS_PER_NODE", "4"}}), 6);
  // torchrun ignores SLURM's variables and the other way round.
  EXPECT_EQ(threads("torchrun", 8, {{"SLURM_CPUS_PER_TASK", "6"}, {"LOCAL_WORLD_SIZE", "2"}}), 32);
  EXPECT_EQ(threads("slurm", 8, {{"LOCAL_WORLD_SIZE", "2"}, {"SLURM_NTASKS_PER_NODE", "8"}}), 8);
  // Without `cores`, the host's own count.
  EXPECT_EQ(default_num_threads(launched("torchrun", 2), fake_env({{"LOCAL_WORLD_SIZE", "2"}})),
            std::max(1, available_cores() / 2));
}

TEST(NumThreads, BadLauncherValuesNamed) {
  expect_error([] { default_num_threads(launched("torchrun", 2), fake_env({{"LOCAL_WORLD_SIZE", "0"}})); },
               {"LOCAL_WORLD_SIZE", "'0'"});
  expect_error([] { default_num_threads(launched("slurm", 2), fake_env({{"SLURM_NTASKS_PER_NODE", "x"}})); },
               {"SLURM_NTASKS_PER_NODE", "'x'"});
  expect_error([] { default_num_threads(launched("slurm", 2), fake_env({{"SLURM_TASKS_PER_NODE", "(x2)"}})); },
               {"SLURM_TASKS_PER_NODE", "'(x2)'"});
  expect_error([] { default_num_threads(launched("slurm", 2), fake_env({{"SLURM_CPUS_PER_TASK", "-1"}})); },
               {"SLURM_CPUS_PER_TASK", "'-1'"});
}

}  // namespace
