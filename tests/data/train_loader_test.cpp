// DistributedSampler against numbers PyTorch 1.13's own DistributedSampler produced, and the
// training loader: sampler order and identical pixels for any worker count, drop_last,
// resuming with start_batch, and bad images stopping the run with a named error.
#include <gtest/gtest.h>

#include "blip/data/distributed_sampler.h"
#include "blip/data/train_dataset.h"
#include "blip/data/train_loader.h"
#include "blip/error.h"
#include "blip/image/transform.h"
#include "common/expect_error.h"
#include "common/fixtures.h"
#include "image/png_writer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <thread>

namespace {

using namespace blip::data;
using blip::test::expect_error;
using Shards = std::vector<std::vector<std::int64_t>>;

Shards all_shards(std::int64_t n, int world, std::uint64_t seed, std::int64_t epoch,
                  bool shuffle = true) {
  Shards out;
  for (int r = 0; r < world; ++r) {
    DistributedSampler s(n, world, r, shuffle, seed);
    s.set_epoch(epoch);
    out.push_back(s.indices());
    EXPECT_EQ(static_cast<std::int64_t>(out.back().size()), s.num_samples());
  }
  return out;
}

// Literals printed by torch 1.13's torch.utils.data.DistributedSampler(range(n),
// num_replicas=world, rank=r, shuffle=True, seed=seed) after set_epoch(epoch).
TEST(DistributedSampler, MatchesPyTorch) {
  EXPECT_EQ(all_shards(10, 3, 0, 0), (Shards{{4, 5, 0, 2}, {1, 3, 8, 4}, {7, 9, 6, 1}}));
  EXPECT_EQ(all_shards(10, 3, 0, 1), (Shards{{5, 2, 9, 4}, {6, 0, 3, 5}, {1, 8, 7, 6}}));
  EXPECT_EQ(all_shards(7, 4, 42, 3), (Shards{{5, 4}, {3, 6}, {1, 0}, {2, 5}}));
  // Padding longer than the set: the permutation repeats.
  EXPECT_EQ(all_shards(2, 5, 0, 0), (Shards{{0}, {1}, {0}, {1}, {0}}));
  EXPECT_EQ(all_shards(23, 2, 7, 5),
            (Shards{{18, 15, 16, 22, 21, 5, 12, 3, 19, 8, 6, 1},
                    {2, 20, 13, 10, 17, 4, 0, 11, 7, 9, 14, 18}}));
  // COCO-sized: 566747 captions on 8 ranks, rank 3, seed 42, epoch 2.
  DistributedSampler coco(566747, 8, 3, true, 42);
  coco.set_epoch(2);
  const auto idx = coco.indices();
  ASSERT_EQ(idx.size(), 70844u);
  EXPECT_EQ(std::vector<std::int64_t>(idx.begin(), idx.begin() + 6),
            (std::vector<std::int64_t>{453168, 232339, 134126, 395049, 431277, 363939}));
  EXPECT_EQ(std::vector<std::int64_t>(idx.end() - 3, idx.end()),
            (std::vector<std::int64_t>{146256, 327178, 378210}));
  std::int64_t weighted = 0;
  for (std::size_t i = 0; i < idx.size(); ++i) weighted += static_cast<std::int64_t>(i) * idx[i];
  EXPECT_EQ(weighted, 713955224648942);
}

TEST(DistributedSampler, ShardsAreEqualDisjointAndCoverTheSet) {
  for (const auto& [n, world] : std::vector<std::pair<std::int64_t, int>>{
           {100, 4}, {101, 4}, {7, 3}, {5, 8}, {1, 1}, {13, 1}}) {
    SCOPED_TRACE(std::to_string(n) + " on " + std::to_string(world));
    const Shards shards = all_shards(n, world, 3, 1);
    const std::int64_t per_rank = (n + world - 1) / world;
    std::vector<int> count(static_cast<std::size_t>(n), 0);
    for (const auto& s : shards) {
      ASSERT_EQ(static_cast<std::int64_t>(s.size()), per_rank);
      for (auto i : s) {
        ASSERT_GE(i, 0);
        ASSERT_LT(i, n);
        ++count[static_cast<std::size_t>(i)];
      }
    }
    // Every index at least once; exactly total_size - n repeats (the padding).
    std::int64_t repeats = 0;
    for (int c : count) {
      EXPECT_GE(c, 1);
      repeats += c - 1;
    }
    EXPECT_EQ(repeats, per_rank * world - n);
  }
}

TEST(DistributedSampler, EpochsDifferAndRepeat) {
  DistributedSampler s(50, 2, 1, true, 9);
  const auto e0 = s.indices();
  EXPECT_EQ(s.indices(), e0);  // deterministic
  s.set_epoch(1);
  const auto e1 = s.indices();
  EXPECT_NE(e1, e0);
  s.set_epoch(0);
  EXPECT_EQ(s.indices(), e0);
  // Another seed, another order; seed + epoch is what matters (as in PyTorch).
  DistributedSampler t(50, 2, 1, true, 8);
  t.set_epoch(1);
  EXPECT_EQ(t.indices(), e0);
  t.set_epoch(0);
  EXPECT_NE(t.indices(), e0);
}

TEST(DistributedSampler, NoShuffleAndBadArguments) {
  EXPECT_EQ(all_shards(5, 2, 0, 4, false), (Shards{{0, 2, 4}, {1, 3, 0}}));
  EXPECT_EQ(DistributedSampler(0, 2, 1).indices(), std::vector<std::int64_t>{});
  expect_error([] { DistributedSampler(5, 0, 0); }, {"num_replicas"});
  expect_error([] { DistributedSampler(5, 2, 2); }, {"invalid rank 2"});
  expect_error([] { DistributedSampler(5, 2, -1); }, {"invalid rank -1"});
  expect_error([] { DistributedSampler(-1, 2, 0); }, {"size"});
}

TEST(TrainLoader, SampleSeedMixes) {
  EXPECT_EQ(sample_seed(1, 2, 3), sample_seed(1, 2, 3));
  std::set<std::uint64_t> seeds;
  for (std::uint64_t seed : {0ull, 1ull})
    for (std::int64_t epoch : {0, 1, 2})
      for (std::int64_t i = 0; i < 100; ++i) seeds.insert(sample_seed(seed, epoch, i));
  EXPECT_EQ(seeds.size(), 600u);
  // Swapping the arguments gives another seed.
  EXPECT_NE(sample_seed(0, 1, 2), sample_seed(0, 2, 1));
  EXPECT_NE(sample_seed(1, 0, 0), sample_seed(0, 1, 0));
}

// n samples "img_<i>.png"; captions "cap <i>"; image_ids repeat every 3 samples.
TrainDataset fake_dataset(int n, const std::vector<int>& bad = {}) {
  TrainDataset d;
  d.image_root = "root";
  d.annotation_file = "fake.json";
  for (int i = 0; i < n; ++i) {
    const bool is_bad = std::find(bad.begin(), bad.end(), i) != bad.end();
    d.image.push_back(std::string(is_bad ? "bad" : "img") + "_" + std::to_string(i) + ".png");
    d.caption.push_back("cap " + std::to_string(i));
    d.idx.push_back(i % 3);
  }
  d.num_ids = 3;
  return d;
}

// A fake random transform: pixels = [dataset index, a number drawn from the seed], after a
// random delay so that workers finish out of order. Paths containing "bad" fail.
TrainImageFn fake_transform(std::atomic<int>* calls = nullptr) {
  return [calls](const std::string& path, std::uint64_t seed) {
    if (calls) ++*calls;
    thread_local std::mt19937 delay(std::hash<std::thread::id>()(std::this_thread::get_id()));
    std::this_thread::sleep_for(std::chrono::microseconds(delay() % 2000));
    if (path.find("bad") != std::string::npos) blip::fail(path, "corrupt image data");
    const std::string stem = path.substr(path.rfind('_') + 1);
    std::mt19937_64 rng(seed);
    at::Tensor t = at::empty({3, 2, 2});
    t.fill_(static_cast<float>(std::stoi(stem)));
    t[1].fill_(static_cast<float>(rng() % 1000003));
    return t;
  };
}

std::vector<TrainBatch> run_epoch(const TrainDataset& d, const std::vector<std::int64_t>& order,
                                  TrainLoaderOptions opt, TrainImageFn fn = fake_transform()) {
  TrainBatchLoader loader(d, order, std::move(fn), opt);
  std::vector<TrainBatch> out;
  TrainBatch b;
  while (loader.next(b)) out.push_back(b);
  EXPECT_EQ(static_cast<std::int64_t>(out.size()), loader.num_batches() - opt.start_batch);
  return out;
}

TEST(TrainLoader, SamplerOrderAndSamePixelsForAnyWorkerCount) {
  const TrainDataset d = fake_dataset(40);
  DistributedSampler sampler(d.size(), 2, 1, true, 5);
  sampler.set_epoch(3);
  const auto order = sampler.indices();  // 20 indices
  std::vector<TrainBatch> reference;
  for (int workers : {0, 1, 3}) {
    SCOPED_TRACE("workers=" + std::to_string(workers));
    TrainLoaderOptions opt;
    opt.batch_size = 6;
    opt.num_workers = workers;
    opt.prefetch_batches = 1;
    opt.seed = 11;
    opt.epoch = 3;
    const auto batches = run_epoch(d, order, opt);
    ASSERT_EQ(batches.size(), 3u);  // 20 / 6, last 2 dropped
    for (std::size_t b = 0; b < batches.size(); ++b) {
      const TrainBatch& batch = batches[b];
      EXPECT_EQ(batch.batch_index, static_cast<std::int64_t>(b));
      ASSERT_EQ(batch.images.sizes(), (at::IntArrayRef{6, 3, 2, 2}));
      ASSERT_EQ(batch.idx.scalar_type(), at::kLong);
      ASSERT_EQ(batch.sample_indices.size(), 6u);
      for (std::int64_t k = 0; k < 6; ++k) {
        const std::int64_t i = order[b * 6 + k];
        EXPECT_EQ(batch.sample_indices[k], i);
        EXPECT_EQ(batch.captions[k], "cap " + std::to_string(i));
        EXPECT_EQ(batch.idx[k].item<std::int64_t>(), i % 3);
        EXPECT_EQ(batch.images[k][0][0][0].item<float>(), static_cast<float>(i));
        std::mt19937_64 rng(sample_seed(11, 3, i));
        EXPECT_EQ(batch.images[k][1][0][0].item<float>(), static_cast<float>(rng() % 1000003));
      }
    }
    if (reference.empty()) {
      reference = batches;
    } else {
      for (std::size_t b = 0; b < batches.size(); ++b)
        EXPECT_TRUE(batches[b].images.equal(reference[b].images)) << b;
    }
  }
  // Another epoch: other random transforms for the same samples.
  TrainLoaderOptions opt;
  opt.batch_size = 6;
  opt.seed = 11;
  opt.epoch = 4;
  EXPECT_FALSE(run_epoch(d, order, opt)[0].images.equal(reference[0].images));
}

TEST(TrainLoader, DropLastAndPartialBatch) {
  const TrainDataset d = fake_dataset(10);
  std::vector<std::int64_t> order{9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
  TrainLoaderOptions opt;
  opt.batch_size = 4;
  opt.num_workers = 2;
  auto batches = run_epoch(d, order, opt);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].sample_indices, (std::vector<std::int64_t>{5, 4, 3, 2}));

  opt.drop_last = false;
  batches = run_epoch(d, order, opt);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[2].sample_indices, (std::vector<std::int64_t>{1, 0}));
  EXPECT_EQ(batches[2].images.size(0), 2);
  EXPECT_EQ(batches[2].captions, (std::vector<std::string>{"cap 1", "cap 0"}));

  // Fewer samples than one batch: nothing with drop_last.
  opt.drop_last = true;
  opt.batch_size = 11;
  std::atomic<int> calls{0};
  EXPECT_TRUE(run_epoch(d, order, opt, fake_transform(&calls)).empty());
  EXPECT_EQ(calls.load(), 0);  // the dropped tail is never decoded
}

TEST(TrainLoader, StartBatchResumesWithoutDecodingSkippedBatches) {
  const TrainDataset d = fake_dataset(30);
  std::vector<std::int64_t> order(30);
  for (int i = 0; i < 30; ++i) order[i] = (i * 7) % 30;
  TrainLoaderOptions opt;
  opt.batch_size = 4;  // 7 batches, 2 samples dropped
  opt.num_workers = 3;
  opt.seed = 2;
  const auto full = run_epoch(d, order, opt);
  ASSERT_EQ(full.size(), 7u);
  for (int workers : {0, 3}) {
    opt.num_workers = workers;
    opt.start_batch = 5;
    std::atomic<int> calls{0};
    const auto rest = run_epoch(d, order, opt, fake_transform(&calls));
    ASSERT_EQ(rest.size(), 2u);
    EXPECT_EQ(calls.load(), 8);  // only batches 5 and 6 were decoded
    for (std::size_t b = 0; b < rest.size(); ++b) {
      EXPECT_EQ(rest[b].batch_index, static_cast<std::int64_t>(5 + b));
      EXPECT_EQ(rest[b].sample_indices, full[5 + b].sample_indices);
      EXPECT_TRUE(rest[b].images.equal(full[5 + b].images));
    }
  }
  opt.start_batch = 7;  // resumed right at the end of the epoch
  EXPECT_TRUE(run_epoch(d, order, opt).empty());
  opt.start_batch = 8;
  expect_error([&] { TrainBatchLoader(d, order, fake_transform(), opt); },
               {"start_batch", "8", "[0, 7]"});
}

TEST(TrainLoader, BadImageStopsWithNamedError) {
  const TrainDataset d = fake_dataset(12, {6});
  std::vector<std::int64_t> order(12);
  for (int i = 0; i < 12; ++i) order[i] = i;
  for (int workers : {0, 4}) {
    SCOPED_TRACE("workers=" + std::to_string(workers));
    TrainLoaderOptions opt;
    opt.batch_size = 4;
    opt.num_workers = workers;
    TrainBatchLoader loader(d, order, fake_transform(), opt);
    TrainBatch batch;
    ASSERT_TRUE(loader.next(batch));
    expect_error([&] { loader.next(batch); },
                 {"root/bad_6.png: corrupt image data", "sample 6 of fake.json", "batch 1",
                  "cannot skip"});
    // Finished: it does not go on past the bad image.
    expect_error([&] { loader.next(batch); }, {"root/bad_6.png"});
  }  // the destructor stops the workers after an error
}

TEST(TrainLoader, ErrorsWithoutPathAndBadSetup) {
  const TrainDataset d = fake_dataset(4);
  TrainLoaderOptions opt;
  opt.batch_size = 2;
  opt.num_workers = 2;
  {
    TrainBatchLoader loader(d, {0, 1, 2, 3},
                            [](const std::string&, std::uint64_t) -> at::Tensor {
                              throw std::runtime_error("boom");
                            },
                            opt);
    TrainBatch batch;
    expect_error([&] { loader.next(batch); }, {"root/img_0.png: boom"});
  }
  {
    TrainBatchLoader loader(d, {0, 1}, [](const std::string& p, std::uint64_t) {
      return p.find("_1") != std::string::npos ? at::zeros({3, 4, 4}) : at::zeros({3, 2, 2});
    }, opt);
    TrainBatch batch;
    expect_error([&] { loader.next(batch); }, {"root/img_1.png", "shape", "root/img_0.png"});
  }
  expect_error([&] { TrainBatchLoader(d, {0, 4}, fake_transform(), opt); },
               {"order entry 1", "outside the dataset"});
  opt.batch_size = 0;
  expect_error([&] { TrainBatchLoader(d, {0}, fake_transform(), opt); }, {"batch_size"});
  opt.batch_size = 1;
  opt.num_workers = -1;
  expect_error([&] { TrainBatchLoader(d, {0}, fake_transform(), opt); }, {"num_workers"});
}

TEST(TrainLoader, DestructorStopsPromptlyMidEpoch) {
  const TrainDataset d = fake_dataset(2000);
  std::vector<std::int64_t> order(2000);
  for (int i = 0; i < 2000; ++i) order[i] = i;
  std::atomic<int> calls{0};
  const auto slow = [&calls](const std::string&, std::uint64_t) {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return at::zeros({3, 2, 2});
  };
  TrainLoaderOptions opt;
  opt.batch_size = 8;
  opt.num_workers = 4;
  opt.prefetch_batches = 2;
  const auto start = std::chrono::steady_clock::now();
  {
    TrainBatchLoader loader(d, order, slow, opt);
    TrainBatch batch;
    ASSERT_TRUE(loader.next(batch));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The prefetch window bounds the work: at most (prefetch_batches + 1) batches past the consumer.
  EXPECT_LE(calls.load(), 8 + 3 * 8);
  EXPECT_LT(seconds, 2.0);
}

TEST(TrainLoader, RealPngsDecodeInWorkers) {
  // 5 small PNGs with distinct colours through transform_test, plus one corrupt file.
  const std::string dir = blip::test::temp_dir();
  TrainDataset d;
  d.image_root = dir;
  for (int i = 0; i < 5; ++i) {
    std::vector<std::uint8_t> rows(static_cast<std::size_t>(6 * 5 * 3));
    for (std::size_t k = 0; k < rows.size(); ++k) rows[k] = static_cast<std::uint8_t>(40 * i + k % 3);
    blip::test::write_bytes(dir + "/p" + std::to_string(i) + ".png",
                            blip::test::encode_png(blip::test::png_spec(6, 5, 8, 2, rows)));
    d.image.push_back("p" + std::to_string(i) + ".png");
    d.caption.push_back("c");
    d.idx.push_back(i);
  }
  std::ofstream(dir + "/broken.png", std::ios::binary) << "\x89PNG\r\n\x1a\n truncated";
  d.image.push_back("broken.png");
  d.caption.push_back("c");
  d.idx.push_back(5);
  d.num_ids = 6;
  const TrainImageFn transform = [](const std::string& path, std::uint64_t) {
    return blip::image::load_image_tensor(path, 8);
  };
  TrainLoaderOptions opt;
  opt.batch_size = 5;
  opt.num_workers = 3;
  const auto batches = run_epoch(d, {4, 3, 2, 1, 0}, opt, transform);
  ASSERT_EQ(batches.size(), 1u);
  for (int k = 0; k < 5; ++k)
    EXPECT_TRUE(batches[0].images[k].equal(
        blip::image::load_image_tensor(d.image_path(4 - k), 8)))
        << k;
  EXPECT_FALSE(batches[0].images[0].equal(batches[0].images[1]));
  opt.batch_size = 2;
  TrainBatchLoader broken(d, {0, 5}, transform, opt);
  TrainBatch batch;
  expect_error([&] { broken.next(batch); }, {dir + "/broken.png"});
}

}  // namespace
