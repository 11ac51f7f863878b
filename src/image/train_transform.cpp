#include "blip/image/train_transform.h"

#include "blip/error.h"

#include <cmath>
#include <limits>
#include <string>
#include <utility>

namespace blip::image {
namespace {

void check_config(const TrainTransformConfig& c) {
  if (c.image_size <= 0 || c.image_size > std::numeric_limits<int>::max())
    fail("TrainTransformConfig::image_size", "must be positive, got " + std::to_string(c.image_size));
  if (!(c.min_scale > 0.0) || !(c.min_scale <= c.max_scale) || !std::isfinite(c.max_scale))
    fail("TrainTransformConfig::min_scale/max_scale",
         "must satisfy 0 < min_scale <= max_scale, got " + std::to_string(c.min_scale) + ", " +
             std::to_string(c.max_scale));
  if (c.augment_n < 0)
    fail("TrainTransformConfig::augment_n", "must be >= 0, got " + std::to_string(c.augment_n));
  if (c.augment_m < 0)
    fail("TrainTransformConfig::augment_m", "must be >= 0, got " + std::to_string(c.augment_m));
}

void check_image(const ImageU8& image) {
  if (image.empty())
    fail("train_transform", "image is empty (" + std::to_string(image.width) + "x" +
                                std::to_string(image.height) + ")");
}

}  // namespace

ImageU8 train_transform_image(const ImageU8& image, const TrainTransformConfig& config,
                              std::uint64_t seed, TrainTransformTrace* trace) {
  check_config(config);
  check_image(image);
  TransformRng rng(seed);
  TrainTransformTrace t;
  t.box = random_resized_crop_params(image.height, image.width, rng,
                                     {config.min_scale, config.max_scale}, kDefaultCropRatio,
                                     &t.crop_fallback);
  ImageU8 out = resized_crop(image, t.box, static_cast<int>(config.image_size));
  if (config.hflip) {
    // torchvision: `if torch.rand(1) < self.p: flip`.
    t.flipped = rng.uniform() < kHflipProbability;
    if (t.flipped) out = hflip(out);
  }
  if (config.augment) {
    RandomAugment aug;
    aug.n = config.augment_n;
    aug.m = config.augment_m;
    out = aug.apply(out, rng, &t.ops);
  }
  if (trace) *trace = std::move(t);
  return out;
}

at::Tensor train_transform(const ImageU8& image, const TrainTransformConfig& config,
                           std::uint64_t seed, TrainTransformTrace* trace) {
  return to_normalized_tensor(train_transform_image(image, config, seed, trace), config.stats);
}

at::Tensor load_train_image_tensor(const std::string& path, const TrainTransformConfig& config,
                                   std::uint64_t seed, const DecodeOptions& options) {
  check_config(config);
  return train_transform(decode_image_file(path, options), config, seed);
}

ImageU8 train_transform_replay_image(const ImageU8& image, const TrainTransformConfig& config,
                                     const TrainTransformTrace& trace) {
  check_config(config);
  check_image(image);
  ImageU8 out = resized_crop(image, trace.box, static_cast<int>(config.image_size));
  if (config.hflip && trace.flipped) out = hflip(out);
  if (config.augment) out = replay_augment(out, trace.ops);
  return out;
}

at::Tensor train_transform_replay(const ImageU8& image, const TrainTransformConfig& config,
                                  const TrainTransformTrace& trace) {
  return to_normalized_tensor(train_transform_replay_image(image, config, trace), config.stats);
}

}  // namespace blip::image
