// The training DataLoader (BLIP's create_loader for the train set: batch_size_train,
// num_workers=4, drop_last=True) over an order of dataset indices (a DistributedSampler's
// indices() for this rank and epoch). Worker threads decode and transform samples ahead of the
// consumer (a bounded window of prefetch_batches batches); batches come out in sampler order.
//
// Each sample's random transform gets its own seed, sample_seed(seed, epoch, dataset_index), so
// a batch's pixels depend only on (seed, epoch, the order): never on the worker count or on
// thread timing, and a run resumed mid-epoch (start_batch) sees the very same later batches.
// (PyTorch seeds each worker instead, so its augmentations depend on num_workers; this is the
// deliberate difference.)
//
// A bad image stops training: next() throws blip::Error naming its path and the reason. Skipping
// it silently would change the epoch's batches and the ids the losses see.
#pragma once

#include "blip/data/train_dataset.h"

#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace blip::data {

// Decodes and randomly transforms one image file to a float tensor [3, S, S], drawing every
// random number from `seed`; throws on bad input. Called from several threads at once.
using TrainImageFn = std::function<at::Tensor(const std::string& path, std::uint64_t seed)>;

// The seed of one sample's transform: splitmix64 mixing of the three values, so neighbouring
// epochs and indices get unrelated streams.
std::uint64_t sample_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t dataset_index);

struct TrainLoaderOptions {
  std::int64_t batch_size = 32;  // BLIP's batch_size_train (per rank)
  int num_workers = 4;           // 0: load in the calling thread
  int prefetch_batches = 2;      // batches loaded ahead of the consumer
  bool drop_last = true;         // BLIP's training loaders drop the last partial batch
  std::uint64_t seed = 0;
  std::int64_t epoch = 0;
  // Resume mid-epoch: the first start_batch batches are skipped without being decoded.
  std::int64_t start_batch = 0;
};

struct TrainBatch {
  at::Tensor images;                         // [B, 3, S, S]
  std::vector<std::string> captions;         // pre_caption'ed, B of them
  at::Tensor idx;                            // [B] int64: img_ids of the samples
  std::vector<std::int64_t> sample_indices;  // the dataset index of each sample
  std::int64_t batch_index = 0;              // position of the batch in the epoch
};

class TrainBatchLoader {
 public:
  // `dataset` must outlive the loader. `order` holds dataset indices (checked against its size).
  // Throws blip::Error for bad options (batch_size < 1, num_workers < 0, start_batch outside
  // [0, num_batches()]).
  TrainBatchLoader(const TrainDataset& dataset, std::vector<std::int64_t> order, TrainImageFn load,
                   TrainLoaderOptions options);
  // Stops the workers (each finishes at most the image it is decoding) and joins them.
  ~TrainBatchLoader();
  TrainBatchLoader(const TrainBatchLoader&) = delete;
  TrainBatchLoader& operator=(const TrainBatchLoader&) = delete;

  // Batches of the epoch: order.size() / batch_size, rounded up unless drop_last.
  std::int64_t num_batches() const;

  // The next batch, in order (the first is start_batch). Returns false after the last one.
  // Throws blip::Error for a bad image; the loader is then finished, and later calls throw again.
  bool next(TrainBatch& batch);

 private:
  struct Slot {
    std::int64_t position = -1;  // index into order_ it holds; -1 while empty
    at::Tensor image;
    std::string error;  // non-empty when loading failed
  };
  void worker_loop();
  Slot load_one(std::int64_t position) const;
  Slot take(std::int64_t position);

  const TrainDataset& dataset_;
  std::vector<std::int64_t> order_;
  TrainImageFn load_;
  TrainLoaderOptions options_;
  std::int64_t end_ = 0;         // positions [.., end_) are loaded (drop_last applied)
  std::int64_t next_batch_ = 0;
  std::string failed_;           // the error that finished the loader

  // Shared with the workers, guarded by mutex_. Position p lives in slots_[p % slots_.size()]
  // (a ring as large as the prefetch window), so memory does not grow with the epoch.
  std::mutex mutex_;
  std::condition_variable work_cv_, ready_cv_;
  std::vector<Slot> slots_;
  std::int64_t next_to_claim_ = 0;
  std::int64_t consumed_ = 0;  // positions below this have been handed out
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace blip::data
