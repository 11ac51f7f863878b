#include "blip/image/transform.h"

#include "blip/error.h"
#include "blip/image/resize.h"

#include <ATen/ATen.h>

#include <string>

namespace blip::image {

at::Tensor to_normalized_tensor(const ImageU8& image, const NormalizeStats& stats) {
  if (image.empty())
    fail("to_normalized_tensor", "image is empty (" + std::to_string(image.width) + "x" +
                                     std::to_string(image.height) + ")");
  const std::int64_t plane = static_cast<std::int64_t>(image.width) * image.height;
  if (image.pixels.size() != static_cast<std::size_t>(plane) * ImageU8::kChannels)
    fail("to_normalized_tensor", "pixel buffer size does not match the image size");
  for (int c = 0; c < ImageU8::kChannels; ++c)
    if (!(stats.std[c] != 0.0f))
      fail("to_normalized_tensor", "std of channel " + std::to_string(c) + " is zero");

  at::Tensor out = at::empty({ImageU8::kChannels, image.height, image.width}, at::kFloat);
  float* dst = out.data_ptr<float>();
  const std::uint8_t* src = image.pixels.data();
  for (int c = 0; c < ImageU8::kChannels; ++c) {
    const float mean = stats.mean[c];
    const float std = stats.std[c];
    float* plane_dst = dst + c * plane;
    for (std::int64_t i = 0; i < plane; ++i) {
      // ToTensor divides by 255 (not a multiply by 1/255: that differs in the last bit), then
      // Normalize subtracts and divides, each rounded to float32.
      const float x = static_cast<float>(src[i * ImageU8::kChannels + c]) / 255.0f;
      plane_dst[i] = (x - mean) / std;
    }
  }
  return out;
}

namespace {
void check_image_size(int image_size) {
  if (image_size <= 0)
    fail("image_size", "must be positive, got " + std::to_string(image_size));
}
}  // namespace

at::Tensor load_image_tensor(const std::string& path, int image_size, const DecodeOptions& options,
                             const NormalizeStats& stats) {
  check_image_size(image_size);
  const ImageU8 decoded = decode_image_file(path, options);
  return to_normalized_tensor(resize_bicubic(decoded, image_size, image_size), stats);
}

at::Tensor load_image_batch(const std::vector<std::string>& paths, int image_size,
                            const DecodeOptions& options, const NormalizeStats& stats) {
  check_image_size(image_size);
  at::Tensor batch =
      at::empty({static_cast<std::int64_t>(paths.size()), ImageU8::kChannels, image_size,
                 image_size},
                at::kFloat);
  for (std::size_t i = 0; i < paths.size(); ++i)
    batch[static_cast<std::int64_t>(i)].copy_(load_image_tensor(paths[i], image_size, options, stats));
  return batch;
}

}  // namespace blip::image
