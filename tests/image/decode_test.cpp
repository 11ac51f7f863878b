// Decoding: PIL convert('RGB') semantics for each PNG colour type and bit depth (crafted PNGs; the
// expected values were checked against Debian's Pillow 9.4), EXIF orientation left alone, and
// lossless formats round-tripping through OpenCV's encoders.
#include "blip/error.h"
#include "blip/image/decode.h"
#include "common/fixtures.h"
#include "image/png_writer.h"

#include <gtest/gtest.h>

#ifdef BLIP_WITH_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

#include <string>
#include <vector>

namespace blip::image {
namespace {

using test::encode_png;
using test::png_spec;
using test::PngSpec;

#define REQUIRE_DECODER() \
  if (!have_image_decoder()) GTEST_SKIP() << "built without OpenCV"

ImageU8 decode(const std::vector<std::uint8_t>& bytes, const DecodeOptions& options = {}) {
  return decode_image_bytes(bytes.data(), bytes.size(), "crafted.png", options);
}

std::vector<std::uint8_t> be16_samples(const std::vector<int>& v) {
  std::vector<std::uint8_t> out;
  for (int x : v) {
    out.push_back(static_cast<std::uint8_t>(x >> 8));
    out.push_back(static_cast<std::uint8_t>(x & 0xFF));
  }
  return out;
}

// The RGB triple of pixel i.
std::vector<int> rgb(const ImageU8& img, int i) {
  return {img.pixels[i * 3], img.pixels[i * 3 + 1], img.pixels[i * 3 + 2]};
}

TEST(Decode, Gray16IsClippedNotScaled) {
  REQUIRE_DECODER();
  // PIL opens 16-bit gray PNGs as mode "I"; convert('RGB') clips at 255.
  const std::vector<int> values = {0, 1, 254, 255, 256, 1000, 65535};
  PngSpec spec = png_spec(7, 1, 16, 0, be16_samples(values));
  const ImageU8 img = decode(encode_png(spec));
  ASSERT_EQ(img.width, 7);
  const std::vector<int> expected = {0, 1, 254, 255, 255, 255, 255};
  for (int i = 0; i < 7; ++i) EXPECT_EQ(rgb(img, i), std::vector<int>(3, expected[i])) << i;
}

TEST(Decode, Color16KeepsTheHighByte) {
  REQUIRE_DECODER();
  // RGB;16B / RGBA;16B / LA;16B rawmodes keep the most significant byte.
  const ImageU8 rgb16 =
      decode(encode_png(png_spec(2, 1, 16, 2, be16_samples({0x1234, 0xABFF, 0x00FF, 0xFF00, 0x0100, 0x7F80}))));
  EXPECT_EQ(rgb(rgb16, 0), (std::vector<int>{0x12, 0xAB, 0x00}));
  EXPECT_EQ(rgb(rgb16, 1), (std::vector<int>{0xFF, 0x01, 0x7F}));
  const ImageU8 rgba16 = decode(encode_png(png_spec(1, 1, 16, 6, be16_samples({0x1234, 0x5678, 0x9ABC, 0x0000}))));
  EXPECT_EQ(rgb(rgba16, 0), (std::vector<int>{0x12, 0x56, 0x9A}));
  const ImageU8 la16 = decode(encode_png(png_spec(1, 1, 16, 4, be16_samples({0xC3FF, 0x0001}))));
  EXPECT_EQ(rgb(la16, 0), (std::vector<int>{0xC3, 0xC3, 0xC3}));
}

TEST(Decode, AlphaIsDroppedNotComposited) {
  REQUIRE_DECODER();
  // Fully transparent pixels keep their colour.
  const ImageU8 rgba = decode(encode_png(png_spec(2, 1, 8, 6, {10, 20, 30, 0, 200, 100, 50, 128})));
  EXPECT_EQ(rgb(rgba, 0), (std::vector<int>{10, 20, 30}));
  EXPECT_EQ(rgb(rgba, 1), (std::vector<int>{200, 100, 50}));
  const ImageU8 la = decode(encode_png(png_spec(2, 1, 8, 4, {77, 0, 250, 255})));
  EXPECT_EQ(rgb(la, 0), (std::vector<int>{77, 77, 77}));
  EXPECT_EQ(rgb(la, 1), (std::vector<int>{250, 250, 250}));
}

TEST(Decode, PaletteGivesItsColoursAndIgnoresTransparency) {
  REQUIRE_DECODER();
  PngSpec spec = png_spec(4, 1, 8, 3, {0, 1, 2, 1});
  spec.plte = {255, 0, 0, 0, 128, 0, 1, 2, 3};
  spec.trns = {0, 64};  // entry 0 fully transparent, entry 1 partly
  const ImageU8 img = decode(encode_png(spec));
  EXPECT_EQ(rgb(img, 0), (std::vector<int>{255, 0, 0}));
  EXPECT_EQ(rgb(img, 1), (std::vector<int>{0, 128, 0}));
  EXPECT_EQ(rgb(img, 2), (std::vector<int>{1, 2, 3}));
  // 4-bit indices: 0x21 -> entries 2, 1.
  PngSpec packed = png_spec(2, 1, 4, 3, {0x21});
  packed.plte = spec.plte;
  const ImageU8 img4 = decode(encode_png(packed));
  EXPECT_EQ(rgb(img4, 0), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(rgb(img4, 1), (std::vector<int>{0, 128, 0}));
}

TEST(Decode, LowBitDepthGrayIsScaledToFullRange) {
  REQUIRE_DECODER();
  // PIL: mode "1" -> 0/255, "L;2" -> v * 85, "L;4" -> v * 17.
  const ImageU8 g1 = decode(encode_png(png_spec(8, 1, 1, 0, {0xA5})));  // 1010 0101
  const std::vector<int> bits = {1, 0, 1, 0, 0, 1, 0, 1};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(rgb(g1, i), std::vector<int>(3, bits[i] * 255)) << i;
  const ImageU8 g2 = decode(encode_png(png_spec(4, 1, 2, 0, {0x1B})));  // 00 01 10 11
  for (int i = 0; i < 4; ++i) EXPECT_EQ(rgb(g2, i), std::vector<int>(3, i * 85)) << i;
  const ImageU8 g4 = decode(encode_png(png_spec(2, 1, 4, 0, {0x7E})));
  EXPECT_EQ(rgb(g4, 0), std::vector<int>(3, 7 * 17));
  EXPECT_EQ(rgb(g4, 1), std::vector<int>(3, 14 * 17));
}

TEST(Decode, GrayAndRgbWithTrnsKeepTheirValues) {
  REQUIRE_DECODER();
  PngSpec gray = png_spec(2, 1, 8, 0, {7, 9});
  gray.trns = {0, 7};
  const ImageU8 g = decode(encode_png(gray));
  EXPECT_EQ(rgb(g, 0), std::vector<int>(3, 7));
  EXPECT_EQ(rgb(g, 1), std::vector<int>(3, 9));
  PngSpec color = png_spec(1, 1, 8, 2, {1, 2, 3});
  color.trns = {0, 1, 0, 2, 0, 3};
  EXPECT_EQ(rgb(decode(encode_png(color)), 0), (std::vector<int>{1, 2, 3}));
}

TEST(Decode, MultiRowRgbKeepsLayout) {
  REQUIRE_DECODER();
  PngSpec spec = png_spec(3, 2, 8, 2, {});
  for (int i = 0; i < 18; ++i) spec.rows.push_back(static_cast<std::uint8_t>(i * 13));
  spec.idat_bytes = 7;  // several IDAT chunks
  const ImageU8 img = decode(encode_png(spec));
  ASSERT_EQ(img.width, 3);
  ASSERT_EQ(img.height, 2);
  EXPECT_EQ(img.pixels, spec.rows);
}

#ifdef BLIP_WITH_OPENCV

cv::Mat pattern_bgr(int w, int h) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      m.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(x * 9), static_cast<uchar>(y * 5),
                                        static_cast<uchar>((x * y) % 251));
  return m;
}

std::vector<std::uint8_t> encode(const std::string& ext, const cv::Mat& m,
                                 const std::vector<int>& params = {}) {
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, m, buf, params)) << ext;
  return buf;
}

TEST(Decode, LosslessFormatsRoundTripInRgbOrder) {
  const cv::Mat bgr = pattern_bgr(29, 17);
  for (const std::string ext : {".png", ".bmp", ".tiff", ".webp"}) {
    SCOPED_TRACE(ext);
    const auto bytes = ext == ".webp" ? encode(ext, bgr, {cv::IMWRITE_WEBP_QUALITY, 101})
                                      : encode(ext, bgr);
    const ImageU8 img = decode_image_bytes(bytes.data(), bytes.size(), "x" + ext);
    ASSERT_EQ(img.width, 29);
    ASSERT_EQ(img.height, 17);
    int mismatches = 0;
    for (int y = 0; y < 17; ++y)
      for (int x = 0; x < 29; ++x) {
        const cv::Vec3b p = bgr.at<cv::Vec3b>(y, x);
        const std::uint8_t* q = img.row(y) + x * 3;
        mismatches += q[0] != p[2] || q[1] != p[1] || q[2] != p[0];
      }
    EXPECT_EQ(mismatches, 0);
  }
}

// Inserts an APP1 Exif segment with Orientation = 6 (rotate 90) right after SOI.
std::vector<std::uint8_t> with_exif_orientation(const std::vector<std::uint8_t>& jpeg) {
  const std::vector<std::uint8_t> tiff = {'I', 'I', 42, 0, 8, 0, 0, 0,     // header, IFD at 8
                                          1, 0,                            // one entry
                                          0x12, 0x01, 3, 0, 1, 0, 0, 0,    // Orientation SHORT 1
                                          6, 0, 0, 0,                      // value 6
                                          0, 0, 0, 0};                     // no next IFD
  std::vector<std::uint8_t> payload = {'E', 'x', 'i', 'f', 0, 0};
  payload.insert(payload.end(), tiff.begin(), tiff.end());
  const std::size_t len = payload.size() + 2;
  std::vector<std::uint8_t> out(jpeg.begin(), jpeg.begin() + 2);
  out.insert(out.end(), {0xFF, 0xE1, static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len)});
  out.insert(out.end(), payload.begin(), payload.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

TEST(Decode, ExifOrientationIsNotApplied) {
  const auto jpeg = encode(".jpg", pattern_bgr(40, 24));
  const ImageU8 plain = decode_image_bytes(jpeg.data(), jpeg.size(), "plain.jpg");
  const auto rotated_tag = with_exif_orientation(jpeg);
  const ImageU8 tagged = decode_image_bytes(rotated_tag.data(), rotated_tag.size(), "exif.jpg");
  EXPECT_EQ(tagged.width, 40);
  EXPECT_EQ(tagged.height, 24);
  EXPECT_EQ(tagged.pixels, plain.pixels);
}

TEST(Decode, GrayJpegIsReplicated) {
  cv::Mat gray(16, 24, CV_8UC1);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 24; ++x) gray.at<uchar>(y, x) = static_cast<uchar>(x * 10 + y);
  const auto jpeg = encode(".jpg", gray);
  const ImageU8 img = decode_image_bytes(jpeg.data(), jpeg.size(), "gray.jpg");
  ASSERT_EQ(img.width, 24);
  for (int i = 0; i < img.width * img.height; ++i) {
    ASSERT_EQ(img.pixels[i * 3], img.pixels[i * 3 + 1]);
    ASSERT_EQ(img.pixels[i * 3], img.pixels[i * 3 + 2]);
  }
}

#endif  // BLIP_WITH_OPENCV

TEST(Decode, BuildsWithoutDecoderSayWhy) {
  if (have_image_decoder()) GTEST_SKIP() << "this build has a decoder";
  const auto png = encode_png(png_spec(1, 1, 8, 0, {5}));
  try {
    decode_image_bytes(png.data(), png.size(), "x.png");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no image decoder"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace blip::image
