// BLIP's training transform (`transform_train` in data/__init__.py, min_scale 0.5):
//   Image.open(path).convert('RGB')
//   -> RandomResizedCrop(S, scale=(min_scale, max_scale), ratio=(3/4, 4/3), BICUBIC)
//   -> RandomHorizontalFlip()            flips when a draw u < 0.5
//   -> RandomAugment(2, 5, isPIL=True, augs=[Identity, AutoContrast, Brightness, Sharpness,
//                    Equalize, ShearX, ShearY, TranslateX, TranslateY, Rotate])
//   -> ToTensor -> Normalize
// Every pixel operation matches BLIP bit for bit given the same decisions. The decisions are
// drawn, in that order, from one TransformRng seeded with `seed`, so a sample's tensor depends
// only on (image, config, seed): training stays reproducible whatever the worker count. (BLIP's
// own torch/numpy generator streams are not reproduced; train_transform_replay applies decisions
// recorded elsewhere, e.g. from BLIP, without drawing.)
#pragma once

#include "blip/image/decode.h"
#include "blip/image/image_u8.h"
#include "blip/image/random_augment.h"
#include "blip/image/random_resized_crop.h"
#include "blip/image/transform.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace blip::image {

// RandomHorizontalFlip's probability.
inline constexpr double kHflipProbability = 0.5;

struct TrainTransformConfig {
  std::int64_t image_size = 384;  // S: output is S x S
  double min_scale = 0.5;         // RandomResizedCrop scale range (fraction of the image area)
  double max_scale = 1.0;
  bool hflip = true;              // RandomHorizontalFlip
  bool augment = true;            // RandomAugment
  int augment_n = 2;              // RandomAugment N
  int augment_m = 5;              // RandomAugment M (level, 0..10)
  NormalizeStats stats;
};

// The decisions of one run (what was drawn, or what to replay).
struct TrainTransformTrace {
  CropBox box;
  bool crop_fallback = false;       // all crop attempts failed: the central crop was used
  bool flipped = false;
  std::vector<AugmentStep> ops;     // chosen ops in order; only `fired` ones were applied
};

// The uint8 S x S x 3 image handed to ToTensor. Throws blip::Error for an empty image or an
// invalid config (image_size <= 0, not 0 < min_scale <= max_scale, augment_n or augment_m < 0).
ImageU8 train_transform_image(const ImageU8& image, const TrainTransformConfig& config,
                              std::uint64_t seed, TrainTransformTrace* trace = nullptr);

// The whole transform: float32 [3, S, S].
at::Tensor train_transform(const ImageU8& image, const TrainTransformConfig& config,
                           std::uint64_t seed, TrainTransformTrace* trace = nullptr);

// Decodes `path` like load_image_tensor (PIL convert('RGB')) and applies train_transform.
at::Tensor load_train_image_tensor(const std::string& path, const TrainTransformConfig& config,
                                   std::uint64_t seed, const DecodeOptions& options = {});

// Applies recorded decisions without drawing: crop `trace.box` to S x S, flip when
// `trace.flipped` (and config.hflip), the fired ops of `trace.ops` with their args (when
// config.augment), then ToTensor + Normalize.
ImageU8 train_transform_replay_image(const ImageU8& image, const TrainTransformConfig& config,
                                     const TrainTransformTrace& trace);
at::Tensor train_transform_replay(const ImageU8& image, const TrainTransformConfig& config,
                                  const TrainTransformTrace& trace);

}  // namespace blip::image
