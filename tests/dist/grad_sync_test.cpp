// GradientAverager, broadcast_tensors and all_gather_with_grad: single-process behaviour, then
// two spawned ranks over Gloo on 127.0.0.1 (see distributed_test.cpp for the spawning scheme).
// Every expected value is computed from closed forms both ranks know, so each rank checks the
// result on its own.
#include <gtest/gtest.h>

#include "blip/dist/distributed.h"
#include "blip/dist/grad_sync.h"
#include "blip/error.h"
#include "common/expect_error.h"
#include "common/worker_process.h"

#include <ATen/ATen.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

namespace {

using namespace blip::dist;
using blip::test::expect_error;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

DistContext join_workers() {
  DistOptions opt;
  opt.timeout = blip::test::worker_timeout();
  return init_distributed(opt);
}

// Mixed shapes and dtypes; parameter 3 is frozen (requires_grad false, like BLIP's momentum
// encoders) and must be left alone.
std::vector<at::Tensor> make_params() {
  std::vector<at::Tensor> p{
      at::zeros({3, 4}), at::zeros({5}), at::zeros({2, 2, 2}, at::kDouble), at::zeros({4}),
      at::zeros({7}), at::zeros({1, 6})};
  for (std::size_t i = 0; i < p.size(); ++i) p[i].set_requires_grad(i != 3);
  return p;
}

// Rank r's gradient of parameter i in round `round`: distinct per rank, parameter and round.
at::Tensor rank_grad(const at::Tensor& p, int rank, std::size_t i, int round) {
  return at::arange(p.numel(), p.options().requires_grad(false)).view(p.sizes()) * (rank + 1) +
         10.0 * static_cast<double>(i) + 100.0 * round;
}

// The mean over ranks 0 and 1 of rank_grad.
at::Tensor mean_grad(const at::Tensor& p, std::size_t i, int round) {
  return (rank_grad(p, 0, i, round) + rank_grad(p, 1, i, round)) / 2;
}

// ------------------------------------------------------------------------------------------
// Single process
// ------------------------------------------------------------------------------------------

TEST(GradSync, BucketsFollowSizeDtypeAndOrder) {
  const DistContext one;
  std::vector<at::Tensor> p = make_params();
  // Default cap: float [3,4],[5] | double | float [4],[7],[1,6] (the frozen [4] left out).
  EXPECT_EQ(GradientAverager(one, p).num_buckets(), 3);
  // 48 bytes: [3,4] (48) | [5] (20) | double (64, over the cap: its own) | [7] (28) | [1,6] (24).
  EXPECT_EQ(GradientAverager(one, p, 48).num_buckets(), 5);
  // 52 bytes: [3,4] | [5] | double | [7] + [1,6] (28 + 24 = 52 bytes share one).
  EXPECT_EQ(GradientAverager(one, p, 52).num_buckets(), 4);
  EXPECT_EQ(GradientAverager(one, p, 1).num_buckets(), 5);  // one per synced parameter
  EXPECT_EQ(GradientAverager(one, {at::zeros({2})}).num_buckets(), 0);  // nothing requires grad
  EXPECT_EQ(GradientAverager(one, {}).num_buckets(), 0);
}

TEST(GradSync, SingleProcessIsANoOp) {
  const DistContext one;
  std::vector<at::Tensor> p = make_params();
  for (std::size_t i = 0; i < p.size(); ++i)
    if (i != 1) p[i].mutable_grad() = rank_grad(p[i], 0, i, 0);  // parameter 1: no grad at all
  GradientAverager avg(one, p, 16);
  avg.average();
  for (std::size_t i = 0; i < p.size(); ++i)
    if (i != 1) {
      EXPECT_TRUE(at::equal(p[i].grad(), rank_grad(p[i], 0, i, 0))) << i;
    }

  at::Tensor w = at::arange(4, at::kFloat);
  broadcast_tensors(one, {w});
  EXPECT_TRUE(at::equal(w, at::arange(4, at::kFloat)));

  const at::Tensor x = at::ones({2, 3}).requires_grad_();
  const at::Tensor g = all_gather_with_grad(one, x);
  EXPECT_TRUE(g.is_same(x));  // as BLIP: nothing to gather
}

TEST(GradSync, BadArgumentsNamed) {
  const DistContext one;
  expect_error([&] { GradientAverager(one, make_params(), 0); }, {"bucket size", "positive"});
  expect_error([&] { GradientAverager(one, {at::zeros({1}).requires_grad_(), at::Tensor()}); },
               {"parameter 1", "undefined"});
  expect_error([&] { broadcast_tensors(one, {at::zeros({1})}, 1); }, {"root 1"});
  expect_error([&] { broadcast_tensors(one, {at::zeros({1}), at::Tensor()}); }, {"tensor 1", "undefined"});
  expect_error([&] { all_gather_with_grad(one, at::Tensor()); }, {"all_gather_with_grad"});
  expect_error([&] { all_gather_with_grad(one, at::scalar_tensor(1.0)); }, {"one dimension"});
}

// ------------------------------------------------------------------------------------------
// Worker side (runs only in spawned children)
// ------------------------------------------------------------------------------------------

TEST(GradSyncWorker, Averager) {
  if (!blip::test::is_worker()) GTEST_SKIP() << "runs only as a spawned rank";
  const DistContext ctx = join_workers();
  ASSERT_EQ(ctx.world_size(), 2);
  const int r = ctx.rank();
  std::vector<at::Tensor> p = make_params();
  GradientAverager coarse(ctx, p);      // 3 buckets
  GradientAverager fine(ctx, p, 16);    // 5 buckets: every parameter alone
  EXPECT_EQ(coarse.num_buckets(), 3);
  EXPECT_EQ(fine.num_buckets(), 5);
  int round = 0;
  for (GradientAverager* avg : {&coarse, &fine, &coarse}) {  // the buffers are reused
    for (std::size_t i = 0; i < p.size(); ++i) p[i].mutable_grad() = rank_grad(p[i], r, i, round);
    avg->average();
    for (std::size_t i = 0; i < p.size(); ++i) {
      const at::Tensor want = i == 3 ? rank_grad(p[i], r, i, round) : mean_grad(p[i], i, round);
      EXPECT_TRUE(at::equal(p[i].grad(), want)) << "round " << round << " param " << i << ": "
                                                << p[i].grad() << " vs " << want;
    }
    ++round;
  }
  // A non-contiguous gradient (a transposed view) is read and written through its strides.
  p[0].mutable_grad() = rank_grad(p[0], r, 0, 7).t().contiguous().t();
  ASSERT_FALSE(p[0].grad().is_contiguous());
  coarse.average();
  EXPECT_TRUE(at::equal(p[0].grad(), mean_grad(p[0], 0, 7)));

  // Gradients from a real backward: loss_r = (r + 1) * sum(w * x), so dloss/dw = (r + 1) x and
  // the mean is 1.5 x.
  const at::Tensor w = at::zeros({3}).requires_grad_();
  const at::Tensor x = at::tensor({1.0f, -2.0f, 4.0f});
  GradientAverager one_param(ctx, {w});
  ((r + 1) * (w * x).sum()).backward();
  one_param.average();
  EXPECT_TRUE(at::equal(w.grad(), 1.5 * x)) << w.grad();

  // Missing gradient: both ranks fail before any collective, naming the index.
  p[4].mutable_grad() = at::Tensor();
  expect_error([&] { coarse.average(); }, {"parameter 4", "no gradient"});

  // Ranks holding different shapes: every rank fails in the constructor.
  std::vector<at::Tensor> odd{at::zeros({r == 0 ? 4 : 5}).requires_grad_()};
  expect_error([&] { GradientAverager(ctx, odd); }, {"ranks hold different tensors", "rank 1 has 1 tensors, 5 elements"});
  ctx.barrier();
  std::printf("  [rank %d] averaged %d rounds over 3 and 5 buckets: ok\n", r, round);
}

TEST(GradSyncWorker, Broadcast) {
  if (!blip::test::is_worker()) GTEST_SKIP() << "runs only as a spawned rank";
  const DistContext ctx = join_workers();
  ASSERT_EQ(ctx.world_size(), 2);
  const int r = ctx.rank();
  // Weights (requiring grad), an integer buffer and a double one; rank-dependent values.
  auto make = [](int rank) {
    return std::vector<at::Tensor>{
        (at::arange(12, at::kFloat).view({3, 4}) + 100 * rank).requires_grad_(),
        at::arange(5, at::kLong) + rank, at::full({2}, 0.5 + rank, at::kDouble),
        (at::ones({6}) * (rank - 3)).requires_grad_()};
  };
  const std::vector<at::Tensor> mine = make(r);
  const std::vector<at::Tensor> rank0 = make(0);
  const std::vector<at::Tensor> rank1 = make(1);
  broadcast_tensors(ctx, mine);
  for (std::size_t i = 0; i < mine.size(); ++i)
    EXPECT_TRUE(at::equal(mine[i], rank0[i])) << "tensor " << i << ": " << mine[i];
  EXPECT_TRUE(mine[0].requires_grad());
  EXPECT_TRUE(mine[0].is_leaf());  // written without autograd history
  // Root 1 wins the second time.
  const std::vector<at::Tensor> again = make(r);
  broadcast_tensors(ctx, again, 1);
  for (std::size_t i = 0; i < again.size(); ++i)
    EXPECT_TRUE(at::equal(again[i], rank1[i])) << "tensor " << i << ": " << again[i];
  ctx.barrier();
  std::printf("  [rank %d] broadcast from rank 0 and from rank 1: ok\n", r);
}

// loss_r = sum(W_r * G^2) on every rank r, where G = all_gather_with_grad(x) stacks x_0 and x_1.
// The total loss sum_r loss_r has dL/dx_r = sum_s 2 W_s[rows of r] * x_r, which each rank's
// backward must produce; a central difference of the total (all ranks together) checks it too.
at::Tensor gather_input(int rank) {
  return (at::arange(6, at::kDouble).view({2, 3}) * 0.25 - rank).requires_grad_();
}
at::Tensor loss_weight(int rank) { return at::arange(12, at::kDouble).view({4, 3}) * (rank + 1) - 3; }

TEST(GradSyncWorker, GatherWithGrad) {
  if (!blip::test::is_worker()) GTEST_SKIP() << "runs only as a spawned rank";
  const DistContext ctx = join_workers();
  ASSERT_EQ(ctx.world_size(), 2);
  const int r = ctx.rank();
  const at::Tensor x = gather_input(r);
  const at::Tensor gathered = all_gather_with_grad(ctx, x);
  const at::Tensor x0 = gather_input(0).detach();
  const at::Tensor x1 = gather_input(1).detach();
  EXPECT_TRUE(at::equal(gathered, at::cat({x0, x1}))) << gathered;
  ASSERT_TRUE(gathered.requires_grad());
  (loss_weight(r) * gathered.pow(2)).sum().backward();
  const at::Tensor want = 2 * (loss_weight(0) + loss_weight(1)).narrow(0, 2 * r, 2) * x.detach();
  EXPECT_TRUE(at::allclose(x.grad(), want, 0, 1e-12)) << x.grad() << " vs " << want;

  // Central differences of the total loss in element (0, 1) of each rank's input in turn.
  const double eps = 1e-4;
  auto total_loss = [&](int target, double step) {
    at::Tensor xp = x.detach().clone();
    if (r == target) xp[0][1] += step;
    at::Tensor loss = (loss_weight(r) * all_gather_with_grad(ctx, xp).pow(2)).sum().reshape({1});
    ctx.all_reduce_sum(loss);
    return loss.item<double>();
  };
  for (int target = 0; target < 2; ++target) {
    const double fd = (total_loss(target, eps) - total_loss(target, -eps)) / (2 * eps);
    if (r == target) {
      EXPECT_NEAR(x.grad()[0][1].item<double>(), fd, 1e-6);
      std::printf("  [rank %d] dL/dx[0][1] = %.6f, central difference %.6f\n", r,
                  x.grad()[0][1].item<double>(), fd);
    }
  }

  // Different row counts per rank: this rank's slice is found by offset.
  const at::Tensor y = at::ones({r + 1, 2}, at::kDouble).requires_grad_();
  const at::Tensor gy = all_gather_with_grad(ctx, y);
  ASSERT_EQ(gy.size(0), 3);
  // Rank s weights row k by (s + 1) * (k + 1): summed over ranks, 3 * (k + 1).
  (gy * (at::arange(1, 4, at::kDouble).view({3, 1}) * (r + 1))).sum().backward();
  const at::Tensor want_y = 3 * at::arange(1, 4, at::kDouble).view({3, 1}).expand({3, 2}).narrow(0, r, r + 1);
  EXPECT_TRUE(at::equal(y.grad(), want_y)) << y.grad();
  ctx.barrier();
  std::printf("  [rank %d] gather forward and summed gradient slice: ok\n", r);
}

// Both ranks set up an averager; one vanishes, the survivor's average() must fail, saying what it
// was doing, within the timeout.
TEST(GradSyncWorker, PeerDies) {
  if (!blip::test::is_worker()) GTEST_SKIP() << "runs only as a spawned rank";
  const DistContext ctx = join_workers();
  ASSERT_EQ(ctx.world_size(), 2);
  std::vector<at::Tensor> p = make_params();
  GradientAverager avg(ctx, p);
  if (blip::test::worker_role() == "die") {
    std::printf("  [rank %d] exiting before average()\n", ctx.rank());
    std::printf("[  PASSED  ] 1 test.\n");  // this rank's part is simply to vanish
    std::fflush(stdout);
    ::_exit(0);
  }
  for (std::size_t i = 0; i < p.size(); ++i) p[i].mutable_grad() = rank_grad(p[i], ctx.rank(), i, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto start = Clock::now();
  try {
    avg.average();
    ADD_FAILURE() << "average() succeeded although the peer is gone";
  } catch (const blip::Error& e) {
    const std::string msg = e.what();
    std::printf("  [rank %d] average() failed after %.1f s: %s\n", ctx.rank(), seconds_since(start),
                msg.c_str());
    EXPECT_NE(msg.find("gradient averaging, bucket 0 of 3 (parameters 0..1)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("distributed all_reduce (rank 0 of 2"), std::string::npos) << msg;
    EXPECT_LT(seconds_since(start), blip::test::worker_timeout().count() / 1000.0 + 5.0);
  }
}

// ------------------------------------------------------------------------------------------
// Parent side
// ------------------------------------------------------------------------------------------

class GradSyncTwoRanks : public ::testing::Test {
 protected:
  void SetUp() override {
    if (blip::test::is_worker()) GTEST_SKIP() << "parent-only test";
    if (!distributed_available()) GTEST_SKIP() << "built without c10d (BLIP_WITH_DISTRIBUTED)";
  }
  // Runs `worker` as ranks 0 and 1 (roles as given) and waits for both.
  void run(const std::string& worker, const std::vector<std::string>& roles, int timeout_ms) {
    const int port = blip::test::unused_loopback_port();
    ASSERT_GT(port, 0);
    std::vector<blip::test::Child> ranks;
    for (int r = 0; r < 2; ++r)
      ranks.push_back(blip::test::spawn_worker(
          "GradSyncWorker." + worker, blip::test::rank_env(r, 2, port, roles[r], timeout_ms)));
    EXPECT_TRUE(blip::test::wait_all(ranks, 60));
  }
};

TEST_F(GradSyncTwoRanks, AveragerGivesTheMeanGradient) { run("Averager", {"", ""}, 10000); }
TEST_F(GradSyncTwoRanks, BroadcastMakesRanksEqual) { run("Broadcast", {"", ""}, 10000); }
TEST_F(GradSyncTwoRanks, GatherWithGradSumsTheGradient) { run("GatherWithGrad", {"", ""}, 10000); }
TEST_F(GradSyncTwoRanks, DeadPeerFailsAverage) { run("PeerDies", {"survivor", "die"}, 2000); }

}  // namespace
