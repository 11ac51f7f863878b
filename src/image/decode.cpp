#include "blip/image/decode.h"

#include "blip/error.h"
#include "image/image_header.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <system_error>
#include <vector>

#ifdef BLIP_WITH_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

namespace blip::image {
namespace {

using detail::ImageFormat;

std::vector<std::uint8_t> read_file_bytes(const std::string& path, const DecodeOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) fail(path, "no such file");
  if (fs::is_directory(status)) fail(path, "is a directory, not an image file");
  if (!fs::is_regular_file(status)) fail(path, "not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open file: ") + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) fail(path, "cannot determine the file size");
  if (size == 0) fail(path, "empty file (0 bytes), not an image");
  if (options.max_file_bytes > 0 && size > options.max_file_bytes)
    fail(path, "file is " + std::to_string(size) + " bytes, over the limit of " +
                   std::to_string(options.max_file_bytes) + " (DecodeOptions::max_file_bytes)");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  in.seekg(0, std::ios::beg);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size))
    fail(path, "read error after " + std::to_string(in.gcount()) + " of " + std::to_string(size) +
                   " bytes");
  return bytes;
}

void check_pixel_limit(std::int64_t width, std::int64_t height, const std::string& what,
                       const DecodeOptions& options) {
  if (width <= 0 || height <= 0)
    fail(what, "invalid image size " + std::to_string(width) + "x" + std::to_string(height));
  const std::int64_t pixels = width * height;  // both < 2^32: no overflow
  if (options.max_pixels > 0 && pixels > options.max_pixels)
    fail(what, "image is " + std::to_string(width) + "x" + std::to_string(height) + " = " +
                   std::to_string(pixels) + " pixels, over the limit of " +
                   std::to_string(options.max_pixels) +
                   " (DecodeOptions::max_pixels): refused as a possible decompression bomb");
}

#ifdef BLIP_WITH_OPENCV

// PIL's convert('RGB') of what OpenCV decoded with IMREAD_UNCHANGED (see decode.h). OpenCV
// returns gray as 1 channel, colour as BGR, and alpha (PNG gray+alpha, RGBA, palette+tRNS) as a
// 4th channel; 16-bit PNGs keep their 16-bit samples.
ImageU8 to_rgb(const cv::Mat& mat, const std::string& what) {
  const int channels = mat.channels();
  const int depth = mat.depth();
  if (depth != CV_8U && depth != CV_16U)
    fail(what, "unsupported pixel type (OpenCV depth " + std::to_string(depth) +
                   "): only 8- and 16-bit images are supported");
  if (channels != 1 && channels != 3 && channels != 4)
    fail(what, "unsupported number of channels (" + std::to_string(channels) + ")");

  ImageU8 out(mat.cols, mat.rows);
  for (int y = 0; y < mat.rows; ++y) {
    std::uint8_t* dst = out.row(y);
    if (depth == CV_8U) {
      const std::uint8_t* src = mat.ptr<std::uint8_t>(y);
      for (int x = 0; x < mat.cols; ++x, src += channels, dst += 3) {
        if (channels == 1) {
          dst[0] = dst[1] = dst[2] = src[0];
        } else {  // BGR or BGRA: alpha dropped
          dst[0] = src[2];
          dst[1] = src[1];
          dst[2] = src[0];
        }
      }
    } else {
      const std::uint16_t* src = mat.ptr<std::uint16_t>(y);
      for (int x = 0; x < mat.cols; ++x, src += channels, dst += 3) {
        if (channels == 1) {
          // PIL opens 16-bit gray as mode "I"; I -> RGB clips at 255.
          const std::uint8_t v = src[0] > 255 ? 255 : static_cast<std::uint8_t>(src[0]);
          dst[0] = dst[1] = dst[2] = v;
        } else {
          // PIL unpacks 16-bit colour with the ";16B" rawmodes, which keep the high byte.
          dst[0] = static_cast<std::uint8_t>(src[2] >> 8);
          dst[1] = static_cast<std::uint8_t>(src[1] >> 8);
          dst[2] = static_cast<std::uint8_t>(src[0] >> 8);
        }
      }
    }
  }
  return out;
}

#endif  // BLIP_WITH_OPENCV

}  // namespace

bool have_image_decoder() {
#ifdef BLIP_WITH_OPENCV
  return true;
#else
  return false;
#endif
}

ImageU8 decode_image_bytes(const std::uint8_t* data, std::size_t size, const std::string& what,
                           const DecodeOptions& options) {
  if (size == 0 || data == nullptr) fail(what, "empty file (0 bytes), not an image");

  // Header first: refuse oversized or truncated images before the decoder allocates anything.
  const detail::ImageHeader header = detail::read_image_header(data, size, what);
  if (header.has_size) check_pixel_limit(header.width, header.height, what, options);
  if (header.format == ImageFormat::kGif)
    fail(what, "GIF images are not supported (OpenCV has no GIF decoder)");

#ifdef BLIP_WITH_OPENCV
  if (size > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    fail(what, "file too large for the decoder (" + std::to_string(size) + " bytes)");
  // A PNG that stops after its image data but before IEND is decoded with IEND appended, as
  // PIL decodes it; libpng refuses it otherwise.
  std::vector<std::uint8_t> repaired;
  if (header.png_missing_iend) {
    static constexpr std::uint8_t kIendChunk[] = {0, 0, 0, 0, 'I', 'E', 'N', 'D',
                                                  0xAE, 0x42, 0x60, 0x82};
    repaired.assign(data, data + header.png_complete_bytes);
    repaired.insert(repaired.end(), std::begin(kIendChunk), std::end(kIendChunk));
    data = repaired.data();
    size = repaired.size();
  }
  cv::Mat decoded;
  try {
    const cv::Mat buffer(1, static_cast<int>(size), CV_8U, const_cast<std::uint8_t*>(data));
    // IMREAD_UNCHANGED: no EXIF rotation, and the true channel count and bit depth.
    decoded = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    fail(what, std::string("could not decode the image: ") + e.what());
  }
  if (decoded.empty()) {
    if (header.png_missing_iend)
      fail(what, "truncated PNG file (no IEND chunk, and the image data is incomplete)");
    if (header.format == ImageFormat::kUnknown)
      fail(what, "not an image (unrecognised file format)");
    fail(what, std::string("could not decode the ") + detail::format_name(header.format) +
                   " image (corrupt or unsupported data)");
  }
  // Formats whose header was not read are checked after decoding (OpenCV caps them itself at
  // 2^30 pixels).
  check_pixel_limit(decoded.cols, decoded.rows, what, options);
  return to_rgb(decoded, what);
#else
  fail(what, "this build of libblip has no image decoder (built without OpenCV)");
#endif
}

ImageU8 decode_image_file(const std::string& path, const DecodeOptions& options) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path, options);
  return decode_image_bytes(bytes.data(), bytes.size(), path, options);
}

}  // namespace blip::image
