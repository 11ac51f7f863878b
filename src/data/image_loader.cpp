#include "blip/data/image_loader.h"

#include "blip/error.h"
#include "blip/image/transform.h"
#include "guarded_load.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <iostream>

namespace blip::data {

ImageLoadFn transform_test_loader(int image_size) {
  return [image_size](const std::string& path) {
    return blip::image::load_image_tensor(path, image_size);
  };
}

ImageBatchLoader::ImageBatchLoader(std::vector<std::string> paths, ImageLoadFn load,
                                   ImageLoaderOptions options)
    : paths_(std::move(paths)), load_(std::move(load)), options_(options) {
  if (options_.batch_size <= 0)
    fail("batch_size", "must be positive, got " + std::to_string(options_.batch_size));
  if (options_.num_workers < 0)
    fail("num_workers", "must be >= 0, got " + std::to_string(options_.num_workers));
  if (options_.prefetch_batches < 1) options_.prefetch_batches = 1;
  if (!load_) fail("ImageBatchLoader", "no image load function");
  slots_.resize(paths_.size());
  const int workers = static_cast<int>(
      std::min<std::int64_t>(options_.num_workers, static_cast<std::int64_t>(paths_.size())));
  for (int w = 0; w < workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

ImageBatchLoader::~ImageBatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

std::int64_t ImageBatchLoader::num_batches() const {
  return (size() + options_.batch_size - 1) / options_.batch_size;
}

ImageBatchLoader::Slot ImageBatchLoader::load_one(std::int64_t index) const {
  Slot slot;
  slot.ready = true;
  const std::string& path = paths_[static_cast<std::size_t>(index)];
  detail::LoadOutcome out = detail::guarded_load(path, [&] { return load_(path); });
  slot.image = std::move(out.image);
  slot.error = std::move(out.error);
  return slot;
}

void ImageBatchLoader::worker_loop() {
  const std::int64_t n = size();
  const std::int64_t window = (options_.prefetch_batches + 1) * options_.batch_size;
  for (;;) {
    std::int64_t index;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] {
        return stop_ || next_to_claim_ >= n || next_to_claim_ < consumed_ + window;
      });
      if (stop_ || next_to_claim_ >= n) return;
      index = next_to_claim_++;
    }
    Slot slot = load_one(index);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      slots_[static_cast<std::size_t>(index)] = std::move(slot);
    }
    ready_cv_.notify_all();
  }
}

ImageBatchLoader::Slot ImageBatchLoader::take(std::int64_t index) {
  if (workers_.empty()) return load_one(index);
  std::unique_lock<std::mutex> lock(mutex_);
  ready_cv_.wait(lock, [&] { return slots_[static_cast<std::size_t>(index)].ready; });
  return std::move(slots_[static_cast<std::size_t>(index)]);
}

bool ImageBatchLoader::next(ImageBatch& batch) {
  while (next_batch_ < num_batches()) {
    const std::int64_t begin = next_batch_ * options_.batch_size;
    const std::int64_t end = std::min(size(), begin + options_.batch_size);
    ++next_batch_;
    std::vector<at::Tensor> images;
    std::vector<std::int64_t> indices;
    for (std::int64_t i = begin; i < end; ++i) {
      Slot slot = take(i);
      if (!slot.error.empty()) {
        if (!options_.skip_bad_images)
          throw Error(slot.error + " (image " + std::to_string(i) + " of " +
                      std::to_string(size()) + "; use --skip-bad-images to leave such images out)");
        if (options_.report_skipped) std::cerr << "skipping image: " << slot.error << "\n";
        skipped_.push_back({i, paths_[static_cast<std::size_t>(i)], slot.error});
        continue;
      }
      images.push_back(std::move(slot.image));
      indices.push_back(i);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      consumed_ = end;
    }
    work_cv_.notify_all();
    if (images.empty()) continue;
    for (std::size_t k = 1; k < images.size(); ++k)
      if (images[k].sizes() != images[0].sizes())
        fail(paths_[static_cast<std::size_t>(indices[k])],
             "preprocessed image has shape " + c10::str(images[k].sizes()) + " but " +
                 paths_[static_cast<std::size_t>(indices[0])] + " has " +
                 c10::str(images[0].sizes()));
    batch.images = at::stack(images);
    batch.indices = std::move(indices);
    return true;
  }
  return false;
}

}  // namespace blip::data
