#include "blip/image/random_resized_crop.h"

#include "blip/error.h"
#include "blip/image/resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

namespace blip::image {
namespace {

// Python's round() of a non-negative double to int: half to even (nearbyint under the default
// rounding mode).
int python_round(double x) { return static_cast<int>(std::nearbyint(x)); }

void check_range(const std::array<double, 2>& r, const char* what) {
  if (!(r[0] > 0.0) || !(r[0] <= r[1]) || !std::isfinite(r[1]))
    fail(std::string("random_resized_crop_params ") + what,
         "must satisfy 0 < lo <= hi, got (" + std::to_string(r[0]) + ", " + std::to_string(r[1]) +
             ")");
}

std::string box_text(const CropBox& b) {
  return "box (top " + std::to_string(b.top) + ", left " + std::to_string(b.left) + ", height " +
         std::to_string(b.height) + ", width " + std::to_string(b.width) + ")";
}

}  // namespace

bool crop_attempt_size(int height, int width, double scale, double aspect_ratio, int* h, int* w) {
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double target_area = area * scale;
  *w = python_round(std::sqrt(target_area * aspect_ratio));
  *h = python_round(std::sqrt(target_area / aspect_ratio));
  return *w > 0 && *w <= width && *h > 0 && *h <= height;
}

CropBox central_crop_box(int height, int width, const std::array<double, 2>& ratio) {
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  CropBox box;
  box.width = width;
  box.height = height;
  if (in_ratio < std::min(ratio[0], ratio[1])) {
    box.height = python_round(width / std::min(ratio[0], ratio[1]));
  } else if (in_ratio > std::max(ratio[0], ratio[1])) {
    box.width = python_round(height * std::max(ratio[0], ratio[1]));
  }
  // Python's // on non-negative ints.
  box.top = (height - box.height) / 2;
  box.left = (width - box.width) / 2;
  return box;
}

CropBox random_resized_crop_params(int height, int width, TransformRng& rng,
                                   const std::array<double, 2>& scale,
                                   const std::array<double, 2>& ratio, bool* used_fallback) {
  if (height <= 0 || width <= 0)
    fail("random_resized_crop_params", "image is empty (" + std::to_string(width) + "x" +
                                           std::to_string(height) + ")");
  check_range(scale, "scale");
  check_range(ratio, "ratio");
  const double log_lo = std::log(ratio[0]);
  const double log_hi = std::log(ratio[1]);
  for (int attempt = 0; attempt < kCropAttempts; ++attempt) {
    const double s = rng.uniform(scale[0], scale[1]);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    int h = 0, w = 0;
    if (crop_attempt_size(height, width, s, aspect, &h, &w)) {
      CropBox box;
      box.height = h;
      box.width = w;
      box.top = static_cast<int>(rng.uniform_int(height - h + 1));
      box.left = static_cast<int>(rng.uniform_int(width - w + 1));
      if (used_fallback) *used_fallback = false;
      return box;
    }
  }
  if (used_fallback) *used_fallback = true;
  return central_crop_box(height, width, ratio);
}

ImageU8 crop(const ImageU8& image, const CropBox& box) {
  if (box.height <= 0 || box.width <= 0) fail("crop", box_text(box) + " is empty");
  ImageU8 out(box.width, box.height);
  // Only the part of the box inside the image is copied; the rest stays 0 (PIL's crop).
  const int x0 = std::max(box.left, 0);
  const int x1 = std::min(box.left + box.width, image.width);
  if (x1 <= x0) return out;
  const std::size_t bytes = static_cast<std::size_t>(x1 - x0) * ImageU8::kChannels;
  for (int y = 0; y < box.height; ++y) {
    const int sy = box.top + y;
    if (sy < 0 || sy >= image.height) continue;
    std::memcpy(out.row(y) + static_cast<std::size_t>(x0 - box.left) * ImageU8::kChannels,
                image.row(sy) + static_cast<std::size_t>(x0) * ImageU8::kChannels, bytes);
  }
  return out;
}

ImageU8 resized_crop(const ImageU8& image, const CropBox& box, int size) {
  if (size <= 0) fail("resized_crop", "size must be positive, got " + std::to_string(size));
  if (image.empty()) fail("resized_crop", "image is empty");
  return resize_bicubic(crop(image, box), size, size);
}

ImageU8 hflip(const ImageU8& image) {
  ImageU8 out(image.width, image.height);
  const int c = ImageU8::kChannels;
  for (int y = 0; y < image.height; ++y) {
    const std::uint8_t* src = image.row(y);
    std::uint8_t* dst = out.row(y);
    for (int x = 0; x < image.width; ++x)
      std::memcpy(dst + static_cast<std::size_t>(image.width - 1 - x) * c,
                  src + static_cast<std::size_t>(x) * c, c);
  }
  return out;
}

}  // namespace blip::image
