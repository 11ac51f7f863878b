#include "blip/data/train_loader.h"

#include "blip/error.h"
#include "guarded_load.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace blip::data {
namespace {

// splitmix64 (Steele, Lea, Flood 2014): one step of its generator, a bijective mix of x.
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

std::uint64_t sample_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t dataset_index) {
  // Chained so that no two of (seed, epoch, index) can cancel each other out.
  std::uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ static_cast<std::uint64_t>(epoch));
  return splitmix64(h ^ static_cast<std::uint64_t>(dataset_index));
}

TrainBatchLoader::TrainBatchLoader(const TrainDataset& dataset, std::vector<std::int64_t> order,
                                   TrainImageFn load, TrainLoaderOptions options)
    : dataset_(dataset), order_(std::move(order)), load_(std::move(load)), options_(options) {
  if (options_.batch_size <= 0)
    fail("batch_size", "must be positive, got " + std::to_string(options_.batch_size));
  if (options_.num_workers < 0)
    fail("num_workers", "must be >= 0, got " + std::to_string(options_.num_workers));
  if (options_.prefetch_batches < 1) options_.prefetch_batches = 1;
  if (!load_) fail("TrainBatchLoader", "no image load function");
  for (std::size_t k = 0; k < order_.size(); ++k)
    if (order_[k] < 0 || order_[k] >= dataset_.size())
      fail("TrainBatchLoader", "sample order entry " + std::to_string(k) + " is " +
                                   std::to_string(order_[k]) + ", outside the dataset [0, " +
                                   std::to_string(dataset_.size()) + ")");
  if (options_.start_batch < 0 || options_.start_batch > num_batches())
    fail("start_batch", std::to_string(options_.start_batch) + " is outside [0, " +
                            std::to_string(num_batches()) + "] (the epoch's batches)");

  end_ = std::min<std::int64_t>(static_cast<std::int64_t>(order_.size()),
                                num_batches() * options_.batch_size);
  next_batch_ = options_.start_batch;
  next_to_claim_ = consumed_ = options_.start_batch * options_.batch_size;
  const std::int64_t to_load = end_ - next_to_claim_;
  const int workers =
      static_cast<int>(std::min<std::int64_t>(options_.num_workers, std::max<std::int64_t>(to_load, 0)));
  if (workers == 0) return;
  slots_.resize(static_cast<std::size_t>((options_.prefetch_batches + 1) * options_.batch_size));
  for (int w = 0; w < workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

TrainBatchLoader::~TrainBatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

std::int64_t TrainBatchLoader::num_batches() const {
  const auto n = static_cast<std::int64_t>(order_.size());
  return options_.drop_last ? n / options_.batch_size
                            : (n + options_.batch_size - 1) / options_.batch_size;
}

TrainBatchLoader::Slot TrainBatchLoader::load_one(std::int64_t position) const {
  Slot slot;
  slot.position = position;
  const std::int64_t index = order_[static_cast<std::size_t>(position)];
  const std::string path = dataset_.image_path(index);
  detail::LoadOutcome out = detail::guarded_load(
      path, [&] { return load_(path, sample_seed(options_.seed, options_.epoch, index)); });
  slot.image = std::move(out.image);
  slot.error = std::move(out.error);
  return slot;
}

void TrainBatchLoader::worker_loop() {
  const auto window = static_cast<std::int64_t>(slots_.size());
  for (;;) {
    std::int64_t position;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Position p reuses the slot of p - window, which the consumer has taken once p < consumed_ + window.
      work_cv_.wait(lock, [&] {
        return stop_ || next_to_claim_ >= end_ || next_to_claim_ < consumed_ + window;
      });
      if (stop_ || next_to_claim_ >= end_) return;
      position = next_to_claim_++;
    }
    Slot slot = load_one(position);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      slots_[static_cast<std::size_t>(position % window)] = std::move(slot);
    }
    ready_cv_.notify_all();
  }
}

TrainBatchLoader::Slot TrainBatchLoader::take(std::int64_t position) {
  if (workers_.empty()) return load_one(position);
  Slot out;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    Slot& slot = slots_[static_cast<std::size_t>(position % static_cast<std::int64_t>(slots_.size()))];
    ready_cv_.wait(lock, [&] { return slot.position == position; });
    out = std::move(slot);
    slot = Slot();
    consumed_ = position + 1;
  }
  work_cv_.notify_all();
  return out;
}

bool TrainBatchLoader::next(TrainBatch& batch) {
  if (!failed_.empty()) throw Error(failed_);
  if (next_batch_ >= num_batches()) return false;
  const std::int64_t begin = next_batch_ * options_.batch_size;
  const std::int64_t end = std::min(end_, begin + options_.batch_size);
  std::vector<at::Tensor> images;
  std::vector<std::int64_t> indices;
  images.reserve(static_cast<std::size_t>(end - begin));
  indices.reserve(static_cast<std::size_t>(end - begin));
  try {
    for (std::int64_t p = begin; p < end; ++p) {
      Slot slot = take(p);
      const std::int64_t index = order_[static_cast<std::size_t>(p)];
      if (!slot.error.empty())
        throw Error(slot.error + " (sample " + std::to_string(index) + " of " +
                    (dataset_.annotation_file.empty() ? std::string("the dataset")
                                                      : dataset_.annotation_file) +
                    ", batch " + std::to_string(next_batch_) + " of epoch " +
                    std::to_string(options_.epoch) + "; training cannot skip images)");
      if (!images.empty() && slot.image.sizes() != images[0].sizes())
        fail(dataset_.image_path(index),
             "transformed image has shape " + c10::str(slot.image.sizes()) + " but " +
                 dataset_.image_path(indices[0]) + " has " + c10::str(images[0].sizes()));
      images.push_back(std::move(slot.image));
      indices.push_back(index);
    }
  } catch (const std::exception& e) {
    // Finished: stop the workers now rather than when the loader is destroyed.
    failed_ = e.what();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    work_cv_.notify_all();
    throw;
  }

  batch.images = at::stack(images);
  batch.captions.clear();
  batch.captions.reserve(indices.size());
  std::vector<std::int64_t> ids;
  ids.reserve(indices.size());
  for (std::int64_t i : indices) {
    batch.captions.push_back(dataset_.caption[static_cast<std::size_t>(i)]);
    ids.push_back(dataset_.idx[static_cast<std::size_t>(i)]);
  }
  batch.idx = at::tensor(ids, at::TensorOptions().dtype(at::kLong));
  batch.sample_indices = std::move(indices);
  batch.batch_index = next_batch_++;
  return true;
}

}  // namespace blip::data
