#include "blip/image/augment_ops.h"

#include "blip/error.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#ifdef BLIP_WITH_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace blip::image {
namespace {

constexpr int kC = ImageU8::kChannels;
constexpr int kBins = 256;

void check_image(const ImageU8& image, const char* what) {
  if (image.empty())
    fail(what, "image is empty (" + std::to_string(image.width) + "x" +
                   std::to_string(image.height) + ")");
  if (image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * kC)
    fail(what, "pixel buffer size does not match the image size");
}

using Table = std::array<std::uint8_t, kBins>;

Table identity_table() {
  Table t;
  for (int i = 0; i < kBins; ++i) t[i] = static_cast<std::uint8_t>(i);
  return t;
}

// Applies one lookup table per channel.
ImageU8 apply_tables(const ImageU8& image, const std::array<Table, kC>& tables) {
  ImageU8 out(image.width, image.height);
  const std::size_t n = image.pixels.size();
  for (std::size_t i = 0; i < n; i += kC)
    for (int c = 0; c < kC; ++c) out.pixels[i + c] = tables[c][image.pixels[i + c]];
  return out;
}

std::array<std::array<std::int64_t, kBins>, kC> channel_histograms(const ImageU8& image) {
  std::array<std::array<std::int64_t, kBins>, kC> hist{};
  const std::size_t n = image.pixels.size();
  for (std::size_t i = 0; i < n; i += kC)
    for (int c = 0; c < kC; ++c) ++hist[c][image.pixels[i + c]];
  return hist;
}

// numpy's float32 -> uint8 `astype` on x86-64: the value is truncated to int32 (cvttss2si) and
// the low byte kept, so out-of-range values wrap instead of saturating.
std::uint8_t numpy_float_to_u8(float v) {
  if (!(v > -2147483648.0f && v < 2147483648.0f)) return 0;  // cvttss2si gives INT32_MIN
  return static_cast<std::uint8_t>(static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
}

// OpenCV's BORDER_REFLECT_101 index for i in [-1, n].
int reflect101(int i, int n) {
  if (n == 1) return 0;
  if (i < 0) return -i;
  if (i >= n) return 2 * n - 2 - i;
  return i;
}

}  // namespace

const char* augment_op_name(AugmentOp op) {
  switch (op) {
    case AugmentOp::Identity: return "Identity";
    case AugmentOp::AutoContrast: return "AutoContrast";
    case AugmentOp::Brightness: return "Brightness";
    case AugmentOp::Sharpness: return "Sharpness";
    case AugmentOp::Equalize: return "Equalize";
    case AugmentOp::ShearX: return "ShearX";
    case AugmentOp::ShearY: return "ShearY";
    case AugmentOp::TranslateX: return "TranslateX";
    case AugmentOp::TranslateY: return "TranslateY";
    case AugmentOp::Rotate: return "Rotate";
  }
  return "?";
}

AugmentOp augment_op_from_name(const std::string& name) {
  for (int i = 0; i < kAugmentOpCount; ++i) {
    const AugmentOp op = static_cast<AugmentOp>(i);
    if (name == augment_op_name(op)) return op;
  }
  fail("augment op '" + name + "'",
       "unknown (known: Identity, AutoContrast, Brightness, Sharpness, Equalize, ShearX, ShearY, "
       "TranslateX, TranslateY, Rotate)");
}

bool augment_op_is_warp(AugmentOp op) {
  return op == AugmentOp::ShearX || op == AugmentOp::ShearY || op == AugmentOp::TranslateX ||
         op == AugmentOp::TranslateY || op == AugmentOp::Rotate;
}

std::array<double, 6> augment_warp_matrix(AugmentOp op, double value, int width, int height) {
  // Shear and translate matrices are np.float32 arrays in BLIP: each entry is rounded to float.
  const double f = static_cast<double>(static_cast<float>(value));
  const double neg = static_cast<double>(static_cast<float>(-value));
  switch (op) {
    case AugmentOp::ShearX: return {1.0, f, 0.0, 0.0, 1.0, 0.0};
    case AugmentOp::ShearY: return {1.0, 0.0, 0.0, f, 1.0, 0.0};
    case AugmentOp::TranslateX: return {1.0, 0.0, neg, 0.0, 1.0, 0.0};
    case AugmentOp::TranslateY: return {1.0, 0.0, 0.0, 0.0, 1.0, neg};
    case AugmentOp::Rotate: {
      // cv2.getRotationMatrix2D((W / 2, H / 2), degrees, 1): the centre is a cv::Point2f.
      constexpr double kPi = 3.14159265358979323846;  // CV_PI
      const double cx = static_cast<double>(static_cast<float>(width / 2.0));
      const double cy = static_cast<double>(static_cast<float>(height / 2.0));
      const double angle = value * (kPi / 180.0);
      const double alpha = std::cos(angle);
      const double beta = std::sin(angle);
      return {alpha, beta, (1 - alpha) * cx - beta * cy, -beta, alpha, beta * cx + (1 - alpha) * cy};
    }
    default: break;
  }
  fail("augment_warp_matrix", std::string(augment_op_name(op)) + " is not a warp op");
}

ImageU8 autocontrast(const ImageU8& image) {
  check_image(image, "AutoContrast");
  const auto hist = channel_histograms(image);
  std::array<Table, kC> tables;
  for (int c = 0; c < kC; ++c) {
    int low = 0, high = kBins - 1;
    while (hist[c][low] == 0) ++low;
    while (hist[c][high] == 0) --high;
    if (high <= low) {
      tables[c] = identity_table();
      continue;
    }
    const double scale = static_cast<double>(kBins - 1) / static_cast<double>(high - low);
    // BLIP's `-low` negates a numpy uint8: it wraps to (256 - low) % 256.
    const double wrapped_neg_low = static_cast<double>(static_cast<std::uint8_t>(-low));
    const double offset = wrapped_neg_low * scale;
    for (int i = 0; i < kBins; ++i) {
      double v = static_cast<double>(i) * scale + offset;
      v = std::min(std::max(v, 0.0), 255.0);
      tables[c][i] = static_cast<std::uint8_t>(v);  // astype(uint8) of a value in [0, 255]
    }
  }
  return apply_tables(image, tables);
}

ImageU8 equalize(const ImageU8& image) {
  check_image(image, "Equalize");
  const auto hist = channel_histograms(image);
  std::array<Table, kC> tables;
  for (int c = 0; c < kC; ++c) {
    // BLIP works in float32 (cv2.calcHist); counts below 2^24 are exact there, so integers give
    // the same table.
    std::int64_t total = 0, last_nonzero = 0;
    for (int i = 0; i < kBins; ++i)
      if (hist[c][i] != 0) {
        total += hist[c][i];
        last_nonzero = hist[c][i];
      }
    const std::int64_t step = (total - last_nonzero) / (kBins - 1);
    if (step == 0) {
      tables[c] = identity_table();
      continue;
    }
    std::int64_t cum = step / 2;
    for (int i = 0; i < kBins; ++i) {
      tables[c][i] = static_cast<std::uint8_t>(std::min<std::int64_t>(cum / step, 255));
      cum += hist[c][i];
    }
  }
  return apply_tables(image, tables);
}

ImageU8 brightness(const ImageU8& image, double factor) {
  check_image(image, "Brightness");
  // np.arange(256, dtype=float32) * factor: numpy casts the Python float to float32 first.
  const float f = static_cast<float>(factor);
  Table t;
  for (int i = 0; i < kBins; ++i) {
    const float v = std::min(std::max(static_cast<float>(i) * f, 0.0f), 255.0f);
    t[i] = static_cast<std::uint8_t>(v);
  }
  return apply_tables(image, {t, t, t});
}

ImageU8 sharpness(const ImageU8& image, double factor) {
  check_image(image, "Sharpness");
  if (factor == 1.0) return image;
  const int w = image.width, h = image.height;
  // cv2.filter2D with float32 weights 1/13 (5/13 at the centre), rounded to uint8: the exact
  // value k / 13 (k = 3x3 sum + 4 * centre) is never within 1/26 of a .5 tie, far more than the
  // float rounding, so integer round-to-nearest of k / 13 is what OpenCV returns.
  ImageU8 degenerate(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < kC; ++c) {
        int k = 0;
        for (int dy = -1; dy <= 1; ++dy) {
          const std::uint8_t* row = image.row(reflect101(y + dy, h));
          for (int dx = -1; dx <= 1; ++dx) k += row[reflect101(x + dx, w) * kC + c];
        }
        k += 4 * image.row(y)[x * kC + c];
        degenerate.row(y)[x * kC + c] = static_cast<std::uint8_t>((2 * k + 13) / 26);
      }
  if (factor == 0.0) return degenerate;
  // out[1:-1, 1:-1] = deg + factor * (img - deg) in float32; the 1-pixel frame keeps the input.
  ImageU8 out = image;
  const float f = static_cast<float>(factor);
  for (int y = 1; y + 1 < h; ++y)
    for (int x = 1; x + 1 < w; ++x)
      for (int c = 0; c < kC; ++c) {
        const std::size_t i = static_cast<std::size_t>(x) * kC + c;
        const float d = degenerate.row(y)[i];
        const float diff = static_cast<float>(image.row(y)[i]) - d;
        // Rounded separately (no fused multiply-add), as numpy's two array operations.
        volatile float prod = f * diff;
        out.row(y)[i] = numpy_float_to_u8(d + prod);
      }
  return out;
}

ImageU8 warp_affine_linear(const ImageU8& image, const std::array<double, 6>& matrix,
                           const std::array<std::uint8_t, 3>& fill) {
  check_image(image, "warpAffine");
#ifdef BLIP_WITH_OPENCV
  cv::Mat src(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.pixels.data()));
  ImageU8 out(image.width, image.height);
  cv::Mat dst(out.height, out.width, CV_8UC3, out.pixels.data());
  cv::Mat m(2, 3, CV_64F);
  for (int i = 0; i < 6; ++i) m.at<double>(i / 3, i % 3) = matrix[i];
  cv::warpAffine(src, dst, m, cv::Size(image.width, image.height), cv::INTER_LINEAR,
                 cv::BORDER_CONSTANT, cv::Scalar(fill[0], fill[1], fill[2]));
  if (dst.data != out.pixels.data())  // OpenCV reallocated: never for a same-size 8UC3 output
    fail("warpAffine", "unexpected output buffer");
  return out;
#else
  (void)matrix;
  (void)fill;
  fail("warpAffine", "this build has no OpenCV (BLIP_WITH_OPENCV is off): the shear, translate "
                     "and rotate augmentations are unavailable");
#endif
}

ImageU8 apply_augment_op(const ImageU8& image, AugmentOp op, const AugmentArgs& args) {
  check_image(image, augment_op_name(op));
  switch (op) {
    case AugmentOp::Identity: return image;
    case AugmentOp::AutoContrast: return autocontrast(image);
    case AugmentOp::Equalize: return equalize(image);
    case AugmentOp::Brightness: return brightness(image, args.value);
    case AugmentOp::Sharpness: return sharpness(image, args.value);
    case AugmentOp::ShearX:
    case AugmentOp::ShearY:
    case AugmentOp::TranslateX:
    case AugmentOp::TranslateY:
    case AugmentOp::Rotate:
      return warp_affine_linear(
          image, augment_warp_matrix(op, args.value, image.width, image.height), args.fill);
  }
  fail("apply_augment_op", "unknown op " + std::to_string(static_cast<int>(op)));
}

}  // namespace blip::image
