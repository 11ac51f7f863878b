// torchvision's RandomResizedCrop (0.14) and RandomHorizontalFlip on PIL images, as BLIP's
// transform_train uses them, with the random draws taken from a TransformRng.
//
// get_params: up to 10 attempts, each drawing scale ~ U(scale) and log(aspect) ~ U(log ratio),
// w = round(sqrt(area * scale * aspect)), h = round(sqrt(area * scale / aspect)) (Python's
// round: half to even); the first attempt with 0 < w <= width and 0 < h <= height is accepted and
// its top/left are drawn uniformly. When all 10 fail, the central crop of the whole image with
// its aspect ratio clamped into `ratio` is used.
// resized_crop: PIL `img.crop((left, top, left + w, top + h)).resize((S, S), BICUBIC)`.
#pragma once

#include "blip/image/image_u8.h"
#include "blip/image/transform_rng.h"

#include <array>

namespace blip::image {

// A crop rectangle in image pixels: torchvision's (i, j, h, w).
struct CropBox {
  int top = 0;
  int left = 0;
  int height = 0;
  int width = 0;
};

inline bool operator==(const CropBox& a, const CropBox& b) {
  return a.top == b.top && a.left == b.left && a.height == b.height && a.width == b.width;
}
inline bool operator!=(const CropBox& a, const CropBox& b) { return !(a == b); }

// The ranges BLIP's transform_train passes: scale=(min_scale 0.5, 1.0); ratio is torchvision's
// default (3/4, 4/3).
inline constexpr std::array<double, 2> kDefaultCropScale{0.5, 1.0};
inline constexpr std::array<double, 2> kDefaultCropRatio{3.0 / 4.0, 4.0 / 3.0};
// torchvision tries this many random boxes before falling back to the central crop.
inline constexpr int kCropAttempts = 10;

// The size of one get_params attempt for a drawn scale (fraction of the area) and aspect ratio
// (w / h). Sets *h and *w and returns whether the attempt fits the image (0 < w <= width,
// 0 < h <= height).
bool crop_attempt_size(int height, int width, double scale, double aspect_ratio, int* h, int* w);

// The fallback of get_params: the whole image, its aspect ratio clamped into `ratio`, centred.
CropBox central_crop_box(int height, int width, const std::array<double, 2>& ratio = kDefaultCropRatio);

// RandomResizedCrop.get_params. `used_fallback`, when given, is set to whether all 10 attempts
// failed and the central crop was returned. Throws blip::Error for an empty image, a scale
// range that is not 0 < lo <= hi, or a ratio range that is not 0 < lo <= hi.
CropBox random_resized_crop_params(int height, int width, TransformRng& rng,
                                   const std::array<double, 2>& scale = kDefaultCropScale,
                                   const std::array<double, 2>& ratio = kDefaultCropRatio,
                                   bool* used_fallback = nullptr);

// Crops `box` out of `image` (pixels outside the image read as 0, as PIL's crop) and resizes the
// crop to size x size with Pillow-exact bicubic. Throws blip::Error for an empty box or size <= 0.
ImageU8 resized_crop(const ImageU8& image, const CropBox& box, int size);

// The crop alone (PIL's Image.crop).
ImageU8 crop(const ImageU8& image, const CropBox& box);

// Mirror left-right (PIL FLIP_LEFT_RIGHT).
ImageU8 hflip(const ImageU8& image);

}  // namespace blip::image
