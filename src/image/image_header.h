// Recognising an encoded image and reading its dimensions from the header, without decoding it,
// so that oversized images (decompression bombs) can be refused before any pixel memory is
// allocated; and checking that PNG and JPEG streams are complete, because OpenCV's decoders
// return a partly grey image for a truncated JPEG where PIL raises.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace blip::image::detail {

enum class ImageFormat { kUnknown, kPng, kJpeg, kBmp, kWebp, kTiff, kGif };

const char* format_name(ImageFormat format);

// The format told by the file's magic bytes.
ImageFormat sniff_format(const std::uint8_t* data, std::size_t size);

struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  bool has_size = false;  // false where the format's header was not parsed
  std::int64_t width = 0;
  std::int64_t height = 0;
  // PNG whose data ends before IEND but after the image data (PIL decodes such files): the
  // decoder gets the first `png_complete_bytes` bytes (whole chunks) followed by an IEND chunk.
  bool png_missing_iend = false;
  std::size_t png_complete_bytes = 0;
};

// Sniffs the format and reads the dimensions. For PNG and JPEG it also walks the chunk / marker
// structure up to IEND / EOI and throws blip::Error("<what>: truncated ...") when the data ends
// first (for PNG: inside or before the IDAT chunks), or blip::Error("<what>: invalid ...") when
// the structure is broken.
ImageHeader read_image_header(const std::uint8_t* data, std::size_t size, const std::string& what);

}  // namespace blip::image::detail
