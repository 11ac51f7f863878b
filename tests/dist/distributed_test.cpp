// Multi-process tests: this test binary re-executes itself (posix_spawn of /proc/self/exe with a
// --gtest_filter on a DistributedWorker.* test and the launcher's environment), so every rank is
// a fresh process; the parent only watches, with a hard deadline, so that no test can hang.
// Everything runs on loopback (127.0.0.1) with free / closed ports.
#include <gtest/gtest.h>

#include "blip/error.h"
#include "blip/dist/distributed.h"
#include "common/fixtures.h"
#include "common/worker_process.h"
#include "dist/fake_env.h"

#include <ATen/ATen.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace {

using namespace blip::dist;
using namespace blip::test;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

template <typename F>
void expect_error(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no blip::Error";
  } catch (const blip::Error& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what() << " lacks " << n;
  }
}


// ------------------------------------------------------------------------------------------
// Worker side (runs only in spawned children)
// ------------------------------------------------------------------------------------------

TEST(DistributedWorker, Collectives) {
  if (!is_worker()) GTEST_SKIP() << "runs only as a spawned rank";
  DistOptions opt;
  opt.timeout = worker_timeout();
  const DistContext ctx = init_distributed(opt);
  ASSERT_TRUE(ctx.distributed());
  ASSERT_EQ(ctx.world_size(), 2);
  EXPECT_EQ(ctx.backend(), "gloo");
  EXPECT_EQ(ctx.launch().launcher, "torchrun");
  const int r = ctx.rank();

  at::Tensor t = at::full({2, 3}, static_cast<float>(r + 1));
  ctx.all_reduce_sum(t);
  EXPECT_TRUE(at::equal(t, at::full({2, 3}, 3.0f))) << t;

  // Rank r contributes r + 2 rows holding r: the gather is [0,0, 1,1,1].
  const at::Tensor mine = at::full({r + 2, 4}, static_cast<double>(r), at::kDouble);
  const at::Tensor all = ctx.all_gather(mine);
  const at::Tensor expected =
      at::cat({at::full({2, 4}, 0.0, at::kDouble), at::full({3, 4}, 1.0, at::kDouble)});
  EXPECT_TRUE(at::equal(all, expected)) << all;

  at::Tensor b = at::full({5}, static_cast<float>(10 * r + 7));
  ctx.broadcast(b, 1);
  EXPECT_TRUE(at::equal(b, at::full({5}, 17.0f))) << b;

  ctx.barrier();
  std::printf("  [rank %d] all_reduce %.1f, all_gather %lld rows, broadcast %.1f: ok\n", r,
              t[0][0].item<float>(), static_cast<long long>(all.size(0)), b[0].item<float>());
}

TEST(DistributedWorker, ExpectInitError) {
  if (!is_worker()) GTEST_SKIP() << "runs only as a spawned rank";
  DistOptions opt;
  opt.timeout = worker_timeout();
  const auto start = Clock::now();
  try {
    init_distributed(opt);
    FAIL() << "init_distributed succeeded without a reachable peer/master";
  } catch (const blip::Error& e) {
    const double s = seconds_since(start);
    const std::string msg = e.what();
    std::printf("  [rank %s] error after %.1f s: %s\n", std::getenv("RANK"), s,
                msg.substr(0, msg.find('\n')).c_str());
    EXPECT_NE(msg.find("127.0.0.1:" + std::string(std::getenv("MASTER_PORT"))), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("rank " + std::string(std::getenv("RANK")) + " of 2"), std::string::npos);
    const double limit = opt.timeout.count() / 1000.0 + 10.0;
    EXPECT_LT(s, limit) << "the error took longer than timeout + 10 s";
  }
}

// Both ranks join; then one dies (role "die") or stalls past the timeout (role "stall") while
// the other (role "survivor") runs a collective that must fail with a blip::Error, not hang.
TEST(DistributedWorker, PeerFailure) {
  if (!is_worker()) GTEST_SKIP() << "runs only as a spawned rank";
  DistOptions opt;
  opt.timeout = worker_timeout();
  const DistContext ctx = init_distributed(opt);
  ASSERT_TRUE(ctx.distributed());
  if (worker_role() == "die") {
    std::fflush(stdout);
    std::printf("  [rank %d] exiting without the collective\n", ctx.rank());
    std::printf("[  PASSED  ] 1 test.\n");  // this rank's part is simply to vanish
    std::fflush(stdout);
    ::_exit(0);
  }
  if (worker_role() == "stall") {
    std::this_thread::sleep_for(opt.timeout * 2);
    std::printf("  [rank %d] stalled past the timeout\n", ctx.rank());
    return;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto start = Clock::now();
  at::Tensor t = at::ones({4});
  try {
    ctx.all_reduce_sum(t);
    ctx.barrier();
    FAIL() << "collective succeeded although the peer is gone";
  } catch (const blip::Error& e) {
    const std::string msg = e.what();
    std::printf("  [rank %d] collective failed after %.1f s: %s\n", ctx.rank(), seconds_since(start),
                msg.substr(0, msg.find('\n')).c_str());
    EXPECT_NE(msg.find("distributed all_reduce"), std::string::npos) << msg;
    EXPECT_LT(seconds_since(start), opt.timeout.count() / 1000.0 + 10.0);
  }
}

// Process groups on one store (same MASTER_PORT) each have their own keys:
//   * "train" and "eval" both rendezvous, rank 0 joining "eval" late (with shared keys, rank 1
//     would read rank 0's "train" addresses), and their collectives stay apart when interleaved;
//   * "lonely", which only rank 0 joins, counts its own ranks: its init fails with "only 1 of 2
//     ranks joined" (with shared keys, the other groups' join count would let it through).
// The parent also names Gloo's interface (GLOO_SOCKET_IFNAME=lo), which must reach LaunchInfo
// and carry both groups.
TEST(DistributedWorker, TwoGroups) {
  if (!is_worker()) GTEST_SKIP() << "runs only as a spawned rank";
  DistOptions train;
  train.timeout = worker_timeout();
  train.group_name = "train";
  DistOptions eval = train;
  eval.group_name = "eval";
  const DistContext a = init_distributed(train);
  ASSERT_TRUE(a.distributed());
  const int r = a.rank();
  if (r == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const DistContext b = init_distributed(eval);
  ASSERT_TRUE(b.distributed());
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");  // "lo", unless the parent's own wins
  ASSERT_NE(ifname, nullptr);
  EXPECT_EQ(a.launch().gloo_ifname, ifname);
  at::Tensor ta = at::full({3}, static_cast<float>(r + 1));
  at::Tensor tb = at::full({3}, static_cast<float>(10 * (r + 1)));
  b.all_reduce_sum(tb);  // the other order than the groups were created in
  a.all_reduce_sum(ta);
  EXPECT_TRUE(at::equal(ta, at::full({3}, 3.0f))) << ta;
  EXPECT_TRUE(at::equal(tb, at::full({3}, 30.0f))) << tb;
  const at::Tensor ga = a.all_gather(at::full({1}, static_cast<float>(r)));
  const at::Tensor gb = b.all_gather(at::full({r + 1}, static_cast<float>(5 + r)));
  EXPECT_TRUE(at::equal(ga, at::tensor({0.0f, 1.0f}))) << ga;
  EXPECT_TRUE(at::equal(gb, at::tensor({5.0f, 6.0f, 6.0f}))) << gb;
  b.barrier();
  if (r == 0) {
    DistOptions lonely = train;
    lonely.group_name = "lonely";
    lonely.timeout = std::chrono::milliseconds(1500);  // rank 1 waits in a.barrier() meanwhile
    expect_error([&] { init_distributed(lonely); }, {"only 1 of 2 ranks joined"});
  }
  a.barrier();
  std::printf("  [rank %d] groups train/eval on one port: all_reduce %.0f / %.0f, gathers %lld / %lld rows: ok\n",
              r, ta[0].item<float>(), tb[0].item<float>(), static_cast<long long>(ga.size(0)),
              static_cast<long long>(gb.size(0)));
}

// ------------------------------------------------------------------------------------------
// Parent side
// ------------------------------------------------------------------------------------------

class Distributed : public ::testing::Test {
 protected:
  void SetUp() override {
    if (is_worker()) GTEST_SKIP() << "parent-only test";
    if (!distributed_available()) GTEST_SKIP() << "built without c10d (BLIP_WITH_DISTRIBUTED)";
  }
};

TEST_F(Distributed, TwoRanksOverGlooOnLoopback) {
  const int port = unused_loopback_port();
  ASSERT_GT(port, 0);
  std::vector<Child> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.push_back(spawn_worker("DistributedWorker.Collectives", rank_env(r, 2, port, "", 20000)));
  EXPECT_TRUE(wait_all(ranks, 60));
}

TEST_F(Distributed, UnreachableMasterFailsWithinTimeout) {
  const int closed_port = unused_loopback_port();  // nothing listens there
  std::vector<Child> ranks{
      spawn_worker("DistributedWorker.ExpectInitError", rank_env(1, 2, closed_port, "", 2000))};
  EXPECT_TRUE(wait_all(ranks, 30));
}

TEST_F(Distributed, MissingPeerFailsWithinTimeout) {
  const int port = unused_loopback_port();
  std::vector<Child> ranks{
      spawn_worker("DistributedWorker.ExpectInitError", rank_env(0, 2, port, "", 2000))};
  EXPECT_TRUE(wait_all(ranks, 30));
}

TEST_F(Distributed, DeadPeerFailsTheCollective) {
  const int port = unused_loopback_port();
  std::vector<Child> ranks{
      spawn_worker("DistributedWorker.PeerFailure", rank_env(0, 2, port, "survivor", 3000)),
      spawn_worker("DistributedWorker.PeerFailure", rank_env(1, 2, port, "die", 3000))};
  EXPECT_TRUE(wait_all(ranks, 40));
}

TEST_F(Distributed, StalledPeerTimesOut) {
  const int port = unused_loopback_port();
  std::vector<Child> ranks{
      spawn_worker("DistributedWorker.PeerFailure", rank_env(0, 2, port, "survivor", 2000)),
      spawn_worker("DistributedWorker.PeerFailure", rank_env(1, 2, port, "stall", 2000))};
  EXPECT_TRUE(wait_all(ranks, 40));
}

TEST_F(Distributed, TwoGroupsShareOnePortOverNamedInterface) {
  const int port = unused_loopback_port();
  ASSERT_GT(port, 0);
  std::vector<Child> ranks;
  for (int r = 0; r < 2; ++r) {
    auto env = rank_env(r, 2, port, "", 10000);
    // Named explicitly (a value already in this process's environment reaches the workers first).
    if (!std::getenv("GLOO_SOCKET_IFNAME")) env["GLOO_SOCKET_IFNAME"] = "lo";
    ranks.push_back(spawn_worker("DistributedWorker.TwoGroups", env));
  }
  EXPECT_TRUE(wait_all(ranks, 60));
}

// A misspelled interface fails at once (before waiting for peers), naming it.
TEST_F(Distributed, UnknownGlooInterfaceFailsAtOnce) {
  LaunchInfo info;
  info.launcher = "torchrun";
  info.world_size = 2;
  info.master_addr = "127.0.0.1";
  info.master_port = unused_loopback_port();
  info.gloo_ifname = "lo,blipnoif0";
  DistOptions opt;
  opt.timeout = std::chrono::milliseconds(20000);
  const auto start = Clock::now();
  expect_error([&] { init_distributed(info, opt); },
               {"GLOO_SOCKET_IFNAME interface 'blipnoif0'", "rank 0 of 2"});
  EXPECT_LT(seconds_since(start), 5.0);
}

// ------------------------------------------------------------------------------------------
// Single process and environment parsing
// ------------------------------------------------------------------------------------------


TEST(DistributedEnv, NoLauncherIsOneProcessWithoutGroup) {
  const LaunchInfo info = detect_launch(fake_env({}));
  EXPECT_EQ(info.launcher, "none");
  EXPECT_EQ(info.world_size, 1);
  const DistContext ctx = init_distributed(info);
  EXPECT_FALSE(ctx.distributed());
  EXPECT_EQ(ctx.backend(), "none");
  EXPECT_TRUE(ctx.is_main());
  at::Tensor t = at::arange(6, at::kFloat);
  ctx.all_reduce_sum(t);
  EXPECT_TRUE(at::equal(t, at::arange(6, at::kFloat)));
  EXPECT_TRUE(at::equal(ctx.all_gather(t), t));
  ctx.broadcast(t, 0);
  ctx.barrier();
  expect_error([&] { ctx.broadcast(t, 1); }, {"root 1"});
  // torchrun with one process: no group either.
  EXPECT_FALSE(init_distributed(detect_launch(fake_env({{"RANK", "0"}, {"WORLD_SIZE", "1"}}))).distributed());
}

TEST(DistributedEnv, Torchrun) {
  const LaunchInfo info = detect_launch(fake_env({{"RANK", "3"}, {"WORLD_SIZE", "8"},
                                                  {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "10.0.0.5"},
                                                  {"MASTER_PORT", "1234"}}));
  EXPECT_EQ(info.launcher, "torchrun");
  EXPECT_EQ(info.rank, 3);
  EXPECT_EQ(info.world_size, 8);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.master_addr, "10.0.0.5");
  EXPECT_EQ(info.master_port, 1234);
  EXPECT_FALSE(info.agent_store);
  const LaunchInfo agent = detect_launch(fake_env({{"RANK", "0"}, {"WORLD_SIZE", "2"},
                                                   {"MASTER_ADDR", "h"},
                                                   {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                                   {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  EXPECT_TRUE(agent.agent_store);
  EXPECT_EQ(agent.store_prefix, "/worker/attempt_2");
  EXPECT_EQ(agent.master_port, kDefaultMasterPort);
  EXPECT_EQ(agent.local_rank, 0);
}

TEST(DistributedEnv, Slurm) {
  LaunchInfo info = detect_launch(fake_env({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"},
                                            {"SLURM_LOCALID", "1"},
                                            {"SLURM_JOB_NODELIST", "gpu[07-09,12],cpu1"},
                                            {"SLURM_LAUNCH_NODE_IPADDR", "10.1.1.1"}}));
  EXPECT_EQ(info.launcher, "slurm");
  EXPECT_EQ(info.rank, 5);
  EXPECT_EQ(info.world_size, 8);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.master_addr, "gpu07");
  EXPECT_EQ(info.master_port, kDefaultMasterPort);
  info = detect_launch(fake_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"},
                                 {"SLURM_LAUNCH_NODE_IPADDR", "10.1.1.1"}, {"MASTER_PORT", "4000"}}));
  EXPECT_EQ(info.master_addr, "10.1.1.1");
  EXPECT_EQ(info.master_port, 4000);
  info = detect_launch(fake_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"},
                                 {"SLURM_NODELIST", "n1"}, {"MASTER_ADDR", "m"}}));
  EXPECT_EQ(info.master_addr, "m");
}

TEST(DistributedEnv, SlurmNodeLists) {
  EXPECT_EQ(first_slurm_host("node01"), "node01");
  EXPECT_EQ(first_slurm_host("a,b"), "a");
  EXPECT_EQ(first_slurm_host("node[03-05,07],gpu1"), "node03");
  EXPECT_EQ(first_slurm_host("rack1-n[1-2]"), "rack1-n1");
  EXPECT_EQ(first_slurm_host("r[2-3]n[10,12]"), "r2n10");
  EXPECT_EQ(first_slurm_host("x[7]"), "x7");
  expect_error([] { first_slurm_host(""); }, {"empty"});
  expect_error([] { first_slurm_host("node[1-2"); }, {"node[1-2", "unbalanced"});
  expect_error([] { first_slurm_host("node[]"); }, {"empty range"});
}

TEST(DistributedEnv, BadValuesNamed) {
  expect_error([] { detect_launch(fake_env({{"RANK", "x"}, {"WORLD_SIZE", "2"}})); },
               {"RANK", "'x'"});
  expect_error([] { detect_launch(fake_env({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}})); },
               {"RANK", "not below WORLD_SIZE=2"});
  expect_error([] { detect_launch(fake_env({{"RANK", "0"}, {"WORLD_SIZE", "2"}})); },
               {"MASTER_ADDR", "not set"});
  expect_error([] {
    detect_launch(fake_env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"},
                            {"MASTER_PORT", "70000"}}));
  }, {"MASTER_PORT", "70000"});
  expect_error([] { detect_launch(fake_env({{"SLURM_PROCID", "0"}})); }, {"SLURM_NTASKS", "srun"});
  expect_error([] { detect_launch(fake_env({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}})); },
               {"MASTER_ADDR", "SLURM_LAUNCH_NODE_IPADDR"});
  LaunchInfo two;
  two.world_size = 2;
  two.master_addr = "127.0.0.1";
  DistOptions bad;
  bad.backend = "mpi";
  expect_error([&] { init_distributed(two, bad); }, {"mpi", "gloo"});
  bad.backend = "gloo";
  bad.timeout = std::chrono::milliseconds(0);
  expect_error([&] { init_distributed(two, bad); }, {"timeout", "positive"});
}

TEST(DistributedEnv, StoreNamespacePerGroup) {
  EXPECT_EQ(DistOptions().group_name, "default");
  EXPECT_EQ(store_namespace("default"), "blip/default/");
  EXPECT_EQ(store_namespace("eval"), "blip/eval/");
  EXPECT_NE(store_namespace("train"), store_namespace("eval"));
  expect_error([] { store_namespace(""); }, {"group name", "empty"});
  expect_error([] { store_namespace("a/b"); }, {"group name 'a/b'", "'/'"});
  // Validated on every path, a single process included, so a bad name fails in a 1-rank run.
  DistOptions bad;
  bad.group_name = "x/y";
  expect_error([&] { init_distributed(LaunchInfo{}, bad); }, {"'x/y'"});
}

TEST(DistributedEnv, GlooIfnameThroughEnvLookup) {
  EXPECT_EQ(detect_launch(fake_env({})).gloo_ifname, "");
  EXPECT_EQ(detect_launch(fake_env({{"GLOO_SOCKET_IFNAME", "eth1"}})).gloo_ifname, "eth1");
  EXPECT_EQ(detect_launch(fake_env({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"},
                                    {"GLOO_SOCKET_IFNAME", "ib0,ib1"}}))
                .gloo_ifname,
            "ib0,ib1");
  EXPECT_EQ(detect_launch(fake_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"},
                                    {"SLURM_NODELIST", "n1"}, {"GLOO_SOCKET_IFNAME", "eno1"}}))
                .gloo_ifname,
            "eno1");
  // The lookup is the only source: the process environment says otherwise.
  const char* saved = std::getenv("GLOO_SOCKET_IFNAME");
  const std::string saved_value = saved ? saved : "";
  ::setenv("GLOO_SOCKET_IFNAME", "from_process_env", 1);
  EXPECT_EQ(detect_launch(fake_env({{"GLOO_SOCKET_IFNAME", "eth1"}})).gloo_ifname, "eth1");
  EXPECT_EQ(detect_launch(fake_env({})).gloo_ifname, "");
  EXPECT_EQ(detect_launch().gloo_ifname, "from_process_env");  // the default lookup is getenv
  if (saved)
    ::setenv("GLOO_SOCKET_IFNAME", saved_value.c_str(), 1);
  else
    ::unsetenv("GLOO_SOCKET_IFNAME");
}

}  // namespace
