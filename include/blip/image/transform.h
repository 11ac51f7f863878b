// BLIP's evaluation transform (`transform_test` in data/__init__.py):
//   Image.open(path).convert('RGB')
//   -> transforms.Resize((S, S), interpolation=BICUBIC)
//   -> ToTensor()            float32(u8) / 255 (a true IEEE division)
//   -> Normalize(mean, std)  (x - mean) / std in float32
#pragma once

#include "blip/image/decode.h"
#include "blip/image/image_u8.h"

#include <ATen/core/Tensor.h>

#include <array>
#include <string>
#include <vector>

namespace blip::image {

// The channel statistics BLIP normalizes with (those of CLIP's training set).
struct NormalizeStats {
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
};

// ToTensor + Normalize: float32 [3, H, W]. Throws blip::Error for an empty image or a zero std.
at::Tensor to_normalized_tensor(const ImageU8& image, const NormalizeStats& stats = {});

// The whole transform_test for one file: float32 [3, image_size, image_size].
at::Tensor load_image_tensor(const std::string& path, int image_size,
                             const DecodeOptions& options = {},
                             const NormalizeStats& stats = {});

// transform_test for several files, stacked: float32 [N, 3, image_size, image_size].
at::Tensor load_image_batch(const std::vector<std::string>& paths, int image_size,
                            const DecodeOptions& options = {},
                            const NormalizeStats& stats = {});

}  // namespace blip::image
