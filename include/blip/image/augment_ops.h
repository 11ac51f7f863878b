// The image operations of BLIP's RandomAugment (transform/randaugment.py, `func_dict`), applied
// to 8-bit RGB images (HWC, as the numpy arrays BLIP passes) with the same arithmetic, including
// its numpy/OpenCV quirks:
//   * AutoContrast: per channel, min/max stretch with cutoff 0. BLIP computes the offset as
//     `-low * scale` with `low` a numpy uint8, so `-low` wraps to 256 - low: a channel whose
//     minimum is above 0 maps almost every value to 255. No change when max <= min.
//   * Equalize: PIL's ImageOps.equalize algorithm per channel (step = (pixels - count of the
//     last non-empty bin) // 255; no change when step is 0).
//   * Brightness: a float32 table, trunc(clip(float32(i) * float32(factor), 0, 255)).
//   * Sharpness: degenerate = 3x3 [1 1 1; 1 5 1; 1 1 1] / 13 smoothing (cv2.filter2D, reflect-101
//     border, rounded to uint8); factor 0 -> degenerate, 1 -> unchanged, else the interior
//     (not the 1-pixel frame) becomes deg + factor * (img - deg) in float32, converted like
//     numpy's `astype(np.uint8)` on x86: truncate to int32 and keep the low byte, so values
//     below 0 or above 255 wrap around (e.g. -1.5 -> 255, 257.9 -> 1).
//   * ShearX/ShearY/TranslateX/TranslateY/Rotate: cv2.warpAffine, bilinear, constant border
//     `fill`, with the forward matrix BLIP builds (np.float32 for shear/translate, so 0.15 is the
//     float 0.15000000596046448; cv2.getRotationMatrix2D about (W/2, H/2) for Rotate).
// The warp ops need OpenCV: builds without it (BLIP_WITH_OPENCV undefined) throw blip::Error for
// them. Everything else is plain C++.
#pragma once

#include "blip/image/image_u8.h"

#include <array>
#include <cstdint>
#include <string>

namespace blip::image {

// The ops of BLIP's transform_train augs list (Solarize, Color, Contrast, Posterize and Cutout
// exist in randaugment.py but BLIP's training transform does not use them).
enum class AugmentOp {
  Identity,
  AutoContrast,
  Brightness,
  Sharpness,
  Equalize,
  ShearX,
  ShearY,
  TranslateX,
  TranslateY,
  Rotate,
};

inline constexpr int kAugmentOpCount = 10;

// BLIP's name of the op ("ShearX", ...), and back (throws blip::Error for an unknown name).
const char* augment_op_name(AugmentOp op);
AugmentOp augment_op_from_name(const std::string& name);

// The grey BLIP fills uncovered pixels with (randaugment.py `replace_value`).
inline constexpr std::array<std::uint8_t, 3> kAugmentFill{128, 128, 128};

// The arguments of one op after the image (BLIP's `args` tuple).
struct AugmentArgs {
  // Brightness/Sharpness: the enhance factor; ShearX/ShearY: the shear factor; TranslateX/
  // TranslateY: the offset in pixels; Rotate: degrees (counter-clockwise, as PIL). Unused by
  // Identity, AutoContrast and Equalize.
  double value = 0.0;
  // Warp ops: the border colour, per channel (R, G, B).
  std::array<std::uint8_t, 3> fill = kAugmentFill;
};

// The forward 2x3 matrix (row-major) BLIP hands to cv2.warpAffine for a warp op on a
// width x height image. Throws blip::Error for a non-warp op.
std::array<double, 6> augment_warp_matrix(AugmentOp op, double value, int width, int height);
bool augment_op_is_warp(AugmentOp op);

// The ops one by one (see the top of this file).
ImageU8 autocontrast(const ImageU8& image);
ImageU8 equalize(const ImageU8& image);
ImageU8 brightness(const ImageU8& image, double factor);
ImageU8 sharpness(const ImageU8& image, double factor);
// cv2.warpAffine(image, matrix, (W, H), flags=INTER_LINEAR, borderMode=BORDER_CONSTANT,
// borderValue=fill) with `matrix` the forward map (OpenCV inverts it).
ImageU8 warp_affine_linear(const ImageU8& image, const std::array<double, 6>& matrix,
                           const std::array<std::uint8_t, 3>& fill);

// func_dict[op](image, *args). Throws blip::Error for an empty image.
ImageU8 apply_augment_op(const ImageU8& image, AugmentOp op, const AugmentArgs& args);

}  // namespace blip::image
