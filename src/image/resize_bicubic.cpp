// Bicubic resampling with the exact arithmetic of Pillow 9.4's libImaging/Resample.c, so that the
// uint8 output equals `Image.resize(size, Image.BICUBIC)` bit for bit. The order of every
// floating-point operation below matters: a coefficient that lands on a rounding boundary of the
// fixed-point conversion would otherwise differ by one unit and change a pixel.

// Pillow is built without fused multiply-add; contracting a*b+c into an FMA would change the
// double-precision filter weights in the last bit.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "blip/image/resize.h"

#include "blip/error.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace blip::image {
namespace {

// Fixed-point fraction bits of the coefficients: 32 bits minus 8 for the pixel value and 2 of
// headroom, because the cubic's negative lobes let partial sums leave [0, 255].
constexpr int kPrecisionBits = 32 - 8 - 2;

// Keys' cubic convolution kernel with a = -0.5 (support 2).
constexpr double kCubicA = -0.5;
constexpr double kCubicSupport = 2.0;

double cubic_kernel(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((kCubicA + 2.0) * x - (kCubicA + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * kCubicA;
  return 0.0;
}

// Per output pixel along one axis: the first source index, how many source pixels contribute, and
// their fixed-point weights (`taps` of them, stored with stride `stride`).
struct AxisWeights {
  int stride = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<std::int32_t> weights;
};

// Pillow rounds half away from zero when converting a normalized weight to fixed point.
std::int32_t to_fixed_point(double w) {
  const double scaled = w * (1 << kPrecisionBits);
  return static_cast<std::int32_t>(w < 0 ? -0.5 + scaled : 0.5 + scaled);
}

// Weights for mapping [0, in_size) onto out_size pixels (Pillow's precompute_coeffs with the box
// covering the whole image, followed by normalize_coeffs_8bpc).
AxisWeights compute_axis_weights(int in_size, int out_size) {
  // Pillow passes the box edges as float and subtracts them in float before widening.
  const float in0 = 0.0f;
  const float in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  // When shrinking, the kernel is stretched over `scale` source pixels (antialiasing).
  const double filter_scale = scale < 1.0 ? 1.0 : scale;
  const double support = kCubicSupport * filter_scale;

  AxisWeights axis;
  axis.stride = static_cast<int>(std::ceil(support)) * 2 + 1;
  axis.first.resize(out_size);
  axis.count.resize(out_size);
  axis.weights.assign(static_cast<std::size_t>(out_size) * axis.stride, 0);

  std::vector<double> w(axis.stride);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double inv_filter_scale = 1.0 / filter_scale;
    // Pillow rounds the window edges by truncating (value + 0.5) toward zero.
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    const int n = xmax - xmin;

    double total = 0.0;
    for (int x = 0; x < n; ++x) {
      w[x] = cubic_kernel((x + xmin - center + 0.5) * inv_filter_scale);
      total += w[x];
    }
    std::int32_t* fixed = &axis.weights[static_cast<std::size_t>(xx) * axis.stride];
    for (int x = 0; x < n; ++x) {
      const double normalized = total != 0.0 ? w[x] / total : w[x];
      fixed[x] = to_fixed_point(normalized);
    }
    axis.first[xx] = xmin;
    axis.count[xx] = n;
  }
  return axis;
}

// Pillow's clip8: drop the fraction bits (arithmetic shift, i.e. floor) and clamp to [0, 255].
// The accumulators start at one half, so this rounds to nearest.
inline std::uint8_t clip8(std::int32_t acc) {
  const std::int32_t v = acc >> kPrecisionBits;
  return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

constexpr std::int32_t kHalf = std::int32_t{1} << (kPrecisionBits - 1);
constexpr int C = ImageU8::kChannels;

// Horizontal pass over source rows [row_begin, row_begin + rows).
ImageU8 resample_horizontal(const ImageU8& in, int out_width, int row_begin, int rows,
                            const AxisWeights& axis) {
  ImageU8 out(out_width, rows);
  for (int yy = 0; yy < rows; ++yy) {
    const std::uint8_t* src = in.row(row_begin + yy);
    std::uint8_t* dst = out.row(yy);
    for (int xx = 0; xx < out_width; ++xx) {
      const std::int32_t* k = &axis.weights[static_cast<std::size_t>(xx) * axis.stride];
      const std::uint8_t* s = src + static_cast<std::size_t>(axis.first[xx]) * C;
      std::int32_t r = kHalf, g = kHalf, b = kHalf;
      for (int x = 0; x < axis.count[xx]; ++x, s += C) {
        r += s[0] * k[x];
        g += s[1] * k[x];
        b += s[2] * k[x];
      }
      dst[xx * C + 0] = clip8(r);
      dst[xx * C + 1] = clip8(g);
      dst[xx * C + 2] = clip8(b);
    }
  }
  return out;
}

// Vertical pass; `axis.first` is relative to the first row of `in` minus `row_offset`.
ImageU8 resample_vertical(const ImageU8& in, int out_height, int row_offset,
                          const AxisWeights& axis) {
  ImageU8 out(in.width, out_height);
  const std::size_t row_bytes = static_cast<std::size_t>(in.width) * C;
  std::vector<std::int32_t> acc(row_bytes);
  for (int yy = 0; yy < out_height; ++yy) {
    const std::int32_t* k = &axis.weights[static_cast<std::size_t>(yy) * axis.stride];
    const int ymin = axis.first[yy] - row_offset;
    std::fill(acc.begin(), acc.end(), kHalf);
    // Row-major accumulation: same sums as Pillow's per-pixel loop (integer addition is exact).
    for (int y = 0; y < axis.count[yy]; ++y) {
      const std::uint8_t* src = in.row(ymin + y);
      const std::int32_t ky = k[y];
      for (std::size_t i = 0; i < row_bytes; ++i) acc[i] += src[i] * ky;
    }
    std::uint8_t* dst = out.row(yy);
    for (std::size_t i = 0; i < row_bytes; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

}  // namespace

ImageU8 resize_bicubic(const ImageU8& image, int out_width, int out_height) {
  if (image.empty())
    fail("resize_bicubic", "input image is empty (" + std::to_string(image.width) + "x" +
                               std::to_string(image.height) + ")");
  if (image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * C)
    fail("resize_bicubic", "pixel buffer size does not match " + std::to_string(image.width) +
                               "x" + std::to_string(image.height) + "x3");
  if (out_width <= 0 || out_height <= 0)
    fail("resize_bicubic", "output size must be positive, got " + std::to_string(out_width) +
                               "x" + std::to_string(out_height));

  const bool need_horizontal = out_width != image.width;
  const bool need_vertical = out_height != image.height;
  if (!need_horizontal && !need_vertical) return image;  // Pillow returns an exact copy

  const AxisWeights vertical = compute_axis_weights(image.height, out_height);
  if (!need_horizontal) return resample_vertical(image, out_height, 0, vertical);

  // The horizontal pass only covers the source rows the vertical pass will read.
  const int row_first = vertical.first.front();
  const int row_last = vertical.first.back() + vertical.count.back();
  const AxisWeights horizontal = compute_axis_weights(image.width, out_width);
  ImageU8 temp =
      resample_horizontal(image, out_width, row_first, row_last - row_first, horizontal);
  if (!need_vertical) return temp;
  return resample_vertical(temp, out_height, row_first, vertical);
}

}  // namespace blip::image
