// The train split as the loop sees it: the config's train-transform keys (train_min_scale,
// train_randaugment) reach every sample's transform, with the per-sample seed of the loader.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <tuple>

#include "blip/config.h"
#include "blip/data/train_loader.h"
#include "blip/dist/distributed.h"
#include "blip/image/train_transform.h"
#include "common/fixtures.h"
#include "train/train_data.h"

namespace {

class TrainDataTransform : public ::testing::TestWithParam<std::tuple<double, bool>> {};

TEST_P(TrainDataTransform, ConfigKeysReachEverySample) {
  BLIP_REQUIRE_FIXTURES();
  const auto [min_scale, randaugment] = GetParam();
  blip::RetrievalConfig config = blip::load_retrieval_config(blip::test::blip_ref_dir() + "/tiny_config.yaml");
  config.train_min_scale = min_scale;
  config.train_randaugment = randaugment;
  const blip::dist::DistContext single;
  constexpr std::uint64_t kSeed = 7;
  const auto data = blip::train::make_train_data(config, single, kSeed, /*num_workers=*/2);
  auto loader = data.loader(/*epoch=*/1, /*start_batch=*/0);
  blip::data::TrainBatch batch;
  ASSERT_TRUE(loader->next(batch));
  ASSERT_EQ(batch.sample_indices.size(), static_cast<size_t>(config.batch_size_train));

  blip::image::TrainTransformConfig expected;
  expected.image_size = config.image_size;
  expected.min_scale = min_scale;
  expected.augment = randaugment;
  blip::image::TrainTransformConfig other = expected;  // the transform with the other switch
  other.augment = !randaugment;
  other.min_scale = min_scale == 0.5 ? 0.9 : 0.5;
  int differs_from_other = 0;
  for (size_t k = 0; k < batch.sample_indices.size(); ++k) {
    const std::int64_t index = batch.sample_indices[k];
    const auto seed = blip::data::sample_seed(kSeed, 1, index);
    const auto path = data.dataset.image_path(index);
    EXPECT_TRUE(at::equal(batch.images[static_cast<int64_t>(k)],
                          blip::image::load_train_image_tensor(path, expected, seed)))
        << "sample " << index;
    differs_from_other += !at::equal(batch.images[static_cast<int64_t>(k)],
                                     blip::image::load_train_image_tensor(path, other, seed));
  }
  EXPECT_GT(differs_from_other, 0) << "the keys must change what the samples look like";
}

INSTANTIATE_TEST_SUITE_P(Keys, TrainDataTransform,
                         ::testing::Values(std::make_tuple(0.5, true), std::make_tuple(0.9, false)));

}  // namespace
