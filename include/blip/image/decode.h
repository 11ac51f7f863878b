// Decoding an image file to 8-bit RGB exactly as BLIP's data pipeline sees it:
// `PIL.Image.open(path).convert('RGB')` (Pillow 9.4), through OpenCV's codecs.
//
// What `convert('RGB')` means per source type (and what this decoder does):
//   * grayscale (8-bit, or 1/2/4-bit scaled to 0..255) -> the value replicated to R, G, B;
//   * gray+alpha, RGBA -> the alpha channel is dropped, not composited;
//   * palette PNG -> the palette colours; tRNS transparency is ignored;
//   * 16-bit grayscale PNG (PIL mode "I") -> each value clipped to 255, not scaled;
//   * 16-bit RGB / RGBA / gray+alpha PNG (PIL rawmodes "RGB;16B", "RGBA;16B", "LA;16B") -> the
//     high byte of each sample;
//   * EXIF orientation is NOT applied (PIL's open() does not apply it either).
// Known difference: CMYK JPEGs are converted by OpenCV's formula, not PIL's (rare in practice).
//
// Bad input throws blip::Error("<path>: <reason>"): missing or unreadable file, empty file,
// truncated JPEG/PNG, data that is not an image, and images with more pixels than
// DecodeOptions::max_pixels. For PNG, JPEG, BMP, WebP and TIFF the dimensions are read from the
// header before anything is decoded, so a decompression bomb is refused without allocating it.
// Builds without OpenCV (BLIP_WITH_OPENCV undefined) throw blip::Error for every decode call.
#pragma once

#include "blip/image/image_u8.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace blip::image {

// PIL's Image.MAX_IMAGE_PIXELS (1024 * 1024 * 1024 // 4 // 3): above it PIL warns
// (DecompressionBombWarning), above twice it PIL refuses (DecompressionBombError).
inline constexpr std::int64_t kPilMaxImagePixels = 89'478'485;

// Default pixel limit: the largest image PIL opens without raising, so every image BLIP's own
// pipeline accepts is accepted here too (RGB at this size is ~512 MiB).
inline constexpr std::int64_t kDefaultMaxImagePixels = 2 * kPilMaxImagePixels;

// Files larger than this are refused before they are read into memory.
inline constexpr std::int64_t kDefaultMaxFileBytes = std::int64_t{1} << 30;  // 1 GiB

struct DecodeOptions {
  // Images with width * height above this throw blip::Error (0 or negative: no limit).
  std::int64_t max_pixels = kDefaultMaxImagePixels;
  // Files longer than this throw blip::Error before being read (0 or negative: no limit).
  std::int64_t max_file_bytes = kDefaultMaxFileBytes;
};

// True when this build can decode images (it was built with OpenCV).
bool have_image_decoder();

// Reads and decodes `path` to RGB (see above).
ImageU8 decode_image_file(const std::string& path, const DecodeOptions& options = {});

// Decodes an encoded image held in memory; `what` names it in error messages.
ImageU8 decode_image_bytes(const std::uint8_t* data, std::size_t size, const std::string& what,
                           const DecodeOptions& options = {});

}  // namespace blip::image
