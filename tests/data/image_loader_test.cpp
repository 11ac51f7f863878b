// The parallel loader: batches in split order whatever the worker count, pixel-identical to the
// serial transform_test, and both bad-image policies (stop with a named error / skip and report).
#include <gtest/gtest.h>

#include "blip/error.h"
#include "blip/data/image_loader.h"
#include "blip/data/retrieval_dataset.h"
#include "blip/image/transform.h"
#include "common/fixtures.h"

#include <ATen/ATen.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

namespace {

using namespace blip::data;

// A fake loader: the image's "pixels" are its index, with random delays so that workers finish
// out of order; paths containing "bad" fail.
ImageLoadFn fake_loader() {
  return [](const std::string& path) {
    thread_local std::mt19937 rng(std::hash<std::thread::id>()(std::this_thread::get_id()));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    if (path.find("bad") != std::string::npos) blip::fail(path, "corrupt image data");
    return at::full({3, 2, 2}, static_cast<float>(std::stoi(path.substr(path.rfind('_') + 1))));
  };
}

std::vector<std::string> fake_paths(int n, const std::vector<int>& bad = {}) {
  std::vector<std::string> paths;
  for (int i = 0; i < n; ++i) {
    const bool is_bad = std::find(bad.begin(), bad.end(), i) != bad.end();
    paths.push_back(std::string(is_bad ? "bad" : "img") + "_" + std::to_string(i));
  }
  return paths;
}

TEST(ImageLoader, BatchesInOrderForAnyWorkerCount) {
  for (int workers : {0, 1, 3, 8}) {
    SCOPED_TRACE("workers=" + std::to_string(workers));
    ImageLoaderOptions opt;
    opt.batch_size = 4;
    opt.num_workers = workers;
    ImageBatchLoader loader(fake_paths(23), fake_loader(), opt);
    EXPECT_EQ(loader.num_batches(), 6);
    ImageBatch batch;
    std::int64_t expected = 0, batches = 0;
    while (loader.next(batch)) {
      ++batches;
      ASSERT_EQ(batch.images.size(0), static_cast<std::int64_t>(batch.indices.size()));
      for (std::size_t k = 0; k < batch.indices.size(); ++k) {
        EXPECT_EQ(batch.indices[k], expected);
        EXPECT_EQ(batch.images[k][0][0][0].item<float>(), static_cast<float>(expected));
        ++expected;
      }
    }
    EXPECT_EQ(expected, 23);
    EXPECT_EQ(batches, 6);
    EXPECT_TRUE(loader.skipped().empty());
  }
}

TEST(ImageLoader, BadImageStopsWithNamedError) {
  for (int workers : {0, 4}) {
    ImageLoaderOptions opt;
    opt.batch_size = 4;
    opt.num_workers = workers;
    ImageBatchLoader loader(fake_paths(12, {6, 9}), fake_loader(), opt);
    ImageBatch batch;
    ASSERT_TRUE(loader.next(batch));
    try {
      loader.next(batch);
      ADD_FAILURE() << "no error for bad_6";
    } catch (const blip::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("bad_6: corrupt image data"), std::string::npos) << msg;
      EXPECT_NE(msg.find("--skip-bad-images"), std::string::npos) << msg;
    }
  }  // the destructor stops the workers even after an error
}

TEST(ImageLoader, SkipBadImagesReportsAndLeavesThemOut) {
  ImageLoaderOptions opt;
  opt.batch_size = 4;
  opt.num_workers = 3;
  opt.skip_bad_images = true;
  opt.report_skipped = false;
  // Batch 1 (4..7) is entirely bad and is passed over.
  ImageBatchLoader loader(fake_paths(10, {1, 4, 5, 6, 7}), fake_loader(), opt);
  ImageBatch batch;
  std::vector<std::int64_t> seen;
  while (loader.next(batch))
    for (auto i : batch.indices) seen.push_back(i);
  EXPECT_EQ(seen, (std::vector<std::int64_t>{0, 2, 3, 8, 9}));
  ASSERT_EQ(loader.skipped().size(), 5u);
  EXPECT_EQ(loader.skipped()[0].index, 1);
  EXPECT_EQ(loader.skipped()[0].path, "bad_1");
  EXPECT_NE(loader.skipped()[0].reason.find("corrupt image data"), std::string::npos);
}

TEST(ImageLoader, ErrorsWithoutPathGetOne) {
  ImageLoaderOptions opt;
  opt.num_workers = 2;
  ImageBatchLoader loader({"x.jpg"}, [](const std::string&) -> at::Tensor {
    throw std::runtime_error("boom");
  }, opt);
  ImageBatch batch;
  try {
    loader.next(batch);
    ADD_FAILURE() << "no error";
  } catch (const blip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.jpg: boom"), std::string::npos) << e.what();
  }
}

TEST(ImageLoader, FixtureImagesMatchSerialTransform) {
  BLIP_REQUIRE_FIXTURES();
  RetrievalSplitSpec spec;
  spec.ann_root = blip::test::blip_ref_dir() + "/eval";
  spec.image_root = blip::test::blip_ref_dir();
  const RetrievalSplit split = load_retrieval_split(spec);
  const int size = 64;
  ImageLoaderOptions opt;
  opt.batch_size = 5;
  opt.num_workers = 4;
  ImageBatchLoader loader(split.image_paths(), transform_test_loader(size), opt);
  ImageBatch batch;
  std::int64_t count = 0;
  double max_diff = 0;
  while (loader.next(batch)) {
    for (std::size_t k = 0; k < batch.indices.size(); ++k) {
      const at::Tensor serial =
          blip::image::load_image_tensor(split.image_path(batch.indices[k]), size);
      max_diff = std::max(max_diff, (batch.images[k] - serial).abs().max().item<double>());
      ++count;
    }
  }
  EXPECT_EQ(count, split.num_images());
  EXPECT_EQ(max_diff, 0.0);
  std::printf("parallel vs serial transform_test: %lld images, max abs diff %g\n",
              static_cast<long long>(count), max_diff);
}

TEST(ImageLoader, MissingAndCorruptFilesNamed) {
  BLIP_REQUIRE_FIXTURES();
  const std::string dir = blip::test::temp_dir();
  std::ofstream(dir + "/corrupt.jpg", std::ios::binary) << "\xff\xd8\xff\xe0 not really a jpeg";
  const std::string good = blip::test::blip_ref_dir() + "/images/v7_rgb_64x64.jpg";
  const std::vector<std::string> paths{good, dir + "/missing.jpg", dir + "/corrupt.jpg", good};
  ImageLoaderOptions opt;
  opt.batch_size = 2;
  opt.num_workers = 2;
  {
    ImageBatchLoader loader(paths, transform_test_loader(32), opt);
    ImageBatch batch;
    try {
      loader.next(batch);
      ADD_FAILURE() << "no error for the missing file";
    } catch (const blip::Error& e) {
      EXPECT_NE(std::string(e.what()).find(dir + "/missing.jpg"), std::string::npos) << e.what();
    }
  }
  opt.skip_bad_images = true;
  opt.report_skipped = false;
  ImageBatchLoader loader(paths, transform_test_loader(32), opt);
  ImageBatch batch;
  std::vector<std::int64_t> seen;
  while (loader.next(batch)) seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
  EXPECT_EQ(seen, (std::vector<std::int64_t>{0, 3}));
  ASSERT_EQ(loader.skipped().size(), 2u);
  EXPECT_NE(loader.skipped()[1].reason.find("corrupt.jpg"), std::string::npos);
}

}  // namespace
