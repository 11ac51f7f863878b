// An 8-bit RGB image in memory: what PIL's `Image.convert('RGB')` holds, laid out like
// `np.array(pil_image)` (height x width x 3, row-major, channels R, G, B).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace blip::image {

struct ImageU8 {
  static constexpr int kChannels = 3;

  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // HWC, RGB, size width * height * 3

  ImageU8() = default;
  // A zero-filled image of the given size.
  ImageU8(int w, int h)
      : width(w), height(h), pixels(static_cast<std::size_t>(w) * h * kChannels, 0) {}

  bool empty() const { return width <= 0 || height <= 0; }
  std::uint8_t* row(int y) { return pixels.data() + static_cast<std::size_t>(y) * width * kChannels; }
  const std::uint8_t* row(int y) const {
    return pixels.data() + static_cast<std::size_t>(y) * width * kChannels;
  }
};

}  // namespace blip::image
