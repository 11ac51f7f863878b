// Bicubic resizing that reproduces Pillow's `Image.resize(size, Image.BICUBIC)` (Pillow 9.4,
// libImaging/Resample.c) bit for bit, which is what torchvision's `Resize(..., BICUBIC)` calls
// on PIL images in BLIP's transform_test.
//
// The filter is Keys' cubic with a = -0.5, widened by the scale factor when shrinking
// (antialiasing); coefficients are normalized per output pixel and rounded to fixed point with
// 22 fractional bits; the horizontal pass runs first (only over the source rows the vertical pass
// reads) and is rounded and clamped to uint8 before the vertical pass. A same-size resize is an
// exact copy.
#pragma once

#include "blip/image/image_u8.h"

namespace blip::image {

// Resizes `image` to out_width x out_height. Throws blip::Error for an empty input image or a
// non-positive output size.
ImageU8 resize_bicubic(const ImageU8& image, int out_width, int out_height);

}  // namespace blip::image
