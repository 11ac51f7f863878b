// Shared helpers of the image tests: the reference images listed in blip_ref/preprocess.json and
// the tensors of preprocess.safetensors.
#pragma once

#include "blip/image/image_u8.h"
#include "blip/io/named_tensors.h"

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace blip::test {

struct RefImage {
  std::string stem;
  std::string path;          // absolute path of the encoded image
  std::string decoded_path;  // images/decoded/<stem>.png, or empty (images over 400x400)
  bool float_384_stored = false;
};

// The 8 images of preprocess.json, in order.
std::vector<RefImage> reference_images();

// preprocess.safetensors, loaded once.
const io::NamedTensors& preprocess_tensors();

// The tensor `name` of `tensors` (fails the test if absent).
at::Tensor find_tensor(const io::NamedTensors& tensors, const std::string& name);

// A uint8 [H, W, 3] tensor as an image, and back.
image::ImageU8 image_from_hwc(const at::Tensor& hwc);
at::Tensor hwc_from_image(const image::ImageU8& image);

// Number of differing bytes between two images of the same size, and the largest difference.
struct ByteDiff {
  std::int64_t count = 0;
  int max_abs = 0;
};
ByteDiff compare_images(const image::ImageU8& a, const image::ImageU8& b);

}  // namespace blip::test
