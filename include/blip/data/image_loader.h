// Parallel, in-order image loading for evaluation: what BLIP's DataLoader (batch_size_test,
// sequential sampler, num_workers=4) does with transform_test. Worker threads decode and
// preprocess images ahead of the consumer (a bounded window of prefetch_batches batches); batches
// come out in split order, so results never depend on the number of workers.
//
// Bad images (missing, unreadable, corrupt):
//   * by default the first one in split order stops the run: next() throws blip::Error naming its
//     path and the reason;
//   * with skip_bad_images, it is reported on stderr, recorded in skipped(), and left out of its
//     batch (ImageBatch::indices says which split images a batch holds). The evaluation then
//     removes skipped images from the split together with their captions (without_images() in
//     retrieval_dataset.h), so the metrics are those of the split without those entries; it
//     does NOT score them as -100, which would make their ranks depend on tie order.
#pragma once

#include "blip/blip_defaults.h"
#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace blip::data {

// Decodes and preprocesses one image file to a float tensor [3, S, S]; throws on bad input.
using ImageLoadFn = std::function<at::Tensor(const std::string& path)>;

// BLIP's transform_test at `image_size` (blip::image::load_image_tensor).
ImageLoadFn transform_test_loader(int image_size);

struct ImageLoaderOptions {
  std::int64_t batch_size = kBatchSizeTest;
  int num_workers = 4;           // 0: load in the calling thread
  int prefetch_batches = 2;      // batches loaded ahead of the consumer
  bool skip_bad_images = false;
  bool report_skipped = true;    // print "skipping <path>: <reason>" on stderr
};

struct ImageBatch {
  at::Tensor images;                  // [B, 3, S, S]
  std::vector<std::int64_t> indices;  // the split index of each of the B images
};

struct ImageLoadFailure {
  std::int64_t index = 0;
  std::string path;
  std::string reason;  // the loader's error message
};

class ImageBatchLoader {
 public:
  ImageBatchLoader(std::vector<std::string> paths, ImageLoadFn load, ImageLoaderOptions options);
  ~ImageBatchLoader();
  ImageBatchLoader(const ImageBatchLoader&) = delete;
  ImageBatchLoader& operator=(const ImageBatchLoader&) = delete;

  // The next batch, in order. Returns false after the last one. Batches whose every image was
  // skipped are passed over. Throws blip::Error for a bad image unless skip_bad_images.
  bool next(ImageBatch& batch);

  // Images skipped so far (skip_bad_images), in split order.
  const std::vector<ImageLoadFailure>& skipped() const { return skipped_; }
  std::int64_t size() const { return static_cast<std::int64_t>(paths_.size()); }
  std::int64_t num_batches() const;

 private:
  struct Slot {
    bool ready = false;
    at::Tensor image;
    std::string error;  // non-empty when loading failed
  };
  void worker_loop();
  Slot load_one(std::int64_t index) const;
  Slot take(std::int64_t index);

  std::vector<std::string> paths_;
  ImageLoadFn load_;
  ImageLoaderOptions options_;
  std::vector<ImageLoadFailure> skipped_;
  std::int64_t next_batch_ = 0;

  // Shared with the workers, guarded by mutex_.
  std::mutex mutex_;
  std::condition_variable work_cv_, ready_cv_;
  std::vector<Slot> slots_;
  std::int64_t next_to_claim_ = 0;
  std::int64_t consumed_ = 0;  // indices below this have been handed out
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace blip::data
