// What one rank trains on: the train set, its sampler shard for an epoch, and the batch loader
// with BLIP's train transform (per-sample seeds, so any worker count gives the same batches).
#pragma once

#include <cstdint>
#include <memory>

#include "blip/config.h"
#include "blip/data/distributed_sampler.h"
#include "blip/data/train_dataset.h"
#include "blip/data/train_loader.h"
#include "blip/dist/distributed.h"

namespace blip::train {

struct TrainData {
  data::TrainDataset dataset;
  std::int64_t batch_size = 0;       // per rank
  std::int64_t steps_per_epoch = 0;  // drop_last batches of this rank's shard
  std::uint64_t seed = 0;
  int num_workers = 0;
  int rank = 0, world_size = 1;
  std::int64_t image_size = 0;
  double min_scale = 0.5;   // RandomResizedCrop's smallest area fraction
  bool randaugment = true;  // RandomAugment after the flip

  // The loader of `epoch`, starting at batch `start_batch`.
  std::unique_ptr<data::TrainBatchLoader> loader(std::int64_t epoch, std::int64_t start_batch) const;
};

// Loads the annotation file, checks every image file, and sizes the epoch. Throws blip::Error
// naming the file, or when a rank's shard holds less than one batch.
TrainData make_train_data(const RetrievalConfig& config, const dist::DistContext& dist,
                          std::uint64_t seed, int num_workers);

}  // namespace blip::train
