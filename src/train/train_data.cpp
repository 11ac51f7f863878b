#include "train_data.h"

#include <string>

#include "blip/error.h"
#include "blip/image/train_transform.h"

namespace blip::train {

std::unique_ptr<data::TrainBatchLoader> TrainData::loader(std::int64_t epoch,
                                                          std::int64_t start_batch) const {
  data::DistributedSampler sampler(dataset.size(), world_size, rank, /*shuffle=*/true, seed);
  sampler.set_epoch(epoch);
  image::TrainTransformConfig transform;
  transform.image_size = image_size;
  transform.min_scale = min_scale;
  transform.augment = randaugment;
  data::TrainLoaderOptions o;
  o.batch_size = batch_size;
  o.num_workers = num_workers;
  o.drop_last = true;  // BLIP's create_loader for the train split
  o.seed = seed;
  o.epoch = epoch;
  o.start_batch = start_batch;
  auto load = [transform](const std::string& path, std::uint64_t sample_seed) {
    return image::load_train_image_tensor(path, transform, sample_seed);
  };
  return std::make_unique<data::TrainBatchLoader>(dataset, sampler.indices(), load, o);
}

TrainData make_train_data(const RetrievalConfig& config, const dist::DistContext& dist,
                          std::uint64_t seed, int num_workers) {
  TrainData d;
  data::TrainDatasetSpec spec;
  spec.dataset = config.dataset;
  spec.ann_root = config.ann_root;
  spec.image_root = config.image_root;
  d.dataset = data::load_train_dataset(spec);
  data::check_image_files(d.dataset);
  d.batch_size = config.batch_size_train;
  d.seed = seed;
  d.num_workers = num_workers;
  d.rank = dist.rank();
  d.world_size = dist.world_size();
  d.image_size = config.image_size;
  d.min_scale = config.train_min_scale;
  d.randaugment = config.train_randaugment;
  const data::DistributedSampler sampler(d.dataset.size(), d.world_size, d.rank, true, seed);
  d.steps_per_epoch = sampler.num_samples() / d.batch_size;
  if (d.steps_per_epoch == 0)
    fail(d.dataset.annotation_file,
         std::to_string(d.dataset.size()) + " training pairs give each of " +
             std::to_string(d.world_size) + " rank(s) " + std::to_string(sampler.num_samples()) +
             ", less than one batch of batch_size_train = " + std::to_string(d.batch_size) +
             " (BLIP drops incomplete batches)");
  return d;
}

}  // namespace blip::train
