// Bad input: every case must throw blip::Error naming the file and the reason, never crash,
// hang, or return a partial image. Truncation follows PIL: a JPEG without its end, or a PNG cut
// before its image data is complete, is an error; a PNG missing only IEND decodes.
#include "blip/error.h"
#include "blip/image/decode.h"
#include "blip/image/transform.h"
#include "common/fixtures.h"
#include "image/image_fixtures.h"
#include "image/png_writer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace blip::image {
namespace {

using test::encode_png;
using test::png_spec;
using test::PngSpec;
using test::write_bytes;

#define REQUIRE_DECODER() \
  if (!have_image_decoder()) GTEST_SKIP() << "built without OpenCV"

std::vector<std::uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<std::uint8_t> head(const std::vector<std::uint8_t>& v, std::size_t n) {
  return std::vector<std::uint8_t>(v.begin(), v.begin() + n);
}

// Writes `bytes` to a temp file called `name`, decodes it, and checks that blip::Error names the
// file and contains `reason`.
void expect_file_error(const std::vector<std::uint8_t>& bytes, const std::string& name,
                       const std::string& reason, const DecodeOptions& options = {}) {
  const std::string path = write_bytes(test::temp_dir() + "/" + name, bytes);
  try {
    const ImageU8 img = decode_image_file(path, options);
    ADD_FAILURE() << name << ": decoded to " << img.width << "x" << img.height
                  << " instead of failing with '" << reason << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << "message does not start with the path: " << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << "expected '" << reason << "' in: " << msg;
  }
}

std::string ref_image(const std::string& name) {
  return test::blip_ref_dir() + "/images/" + name;
}

TEST(BadInput, MissingFile) {
  const std::string path = test::temp_dir() + "/does_not_exist.jpg";
  try {
    decode_image_file(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": no such file");
  }
}

TEST(BadInput, Directory) {
  const std::string dir = test::temp_dir();
  EXPECT_THROW(
      {
        try {
          decode_image_file(dir);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find(dir + ": is a directory"), std::string::npos);
          throw;
        }
      },
      Error);
}

TEST(BadInput, EmptyFile) { expect_file_error({}, "empty.jpg", "empty file (0 bytes)"); }

TEST(BadInput, EmptyBuffer) {
  try {
    decode_image_bytes(nullptr, 0, "buffer");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("buffer: empty file"), std::string::npos) << e.what();
  }
}

TEST(BadInput, NotAnImage) {
  REQUIRE_DECODER();
  const std::string text = "this is a caption file, not an image\n";
  expect_file_error(std::vector<std::uint8_t>(text.begin(), text.end()), "caption.jpg",
                    "not an image (unrecognised file format)");
}

TEST(BadInput, GarbageAfterJpegMagic) {
  REQUIRE_DECODER();
  std::vector<std::uint8_t> bytes = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10};
  for (int i = 0; i < 200; ++i) bytes.push_back(static_cast<std::uint8_t>(i * 7 + 3));
  expect_file_error(bytes, "garbage.jpg", "JPEG file");
}

TEST(BadInput, Gif) {
  const std::vector<std::uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0, ';'};
  expect_file_error(gif, "anim.gif", "GIF images are not supported");
}

TEST(BadInput, TruncatedJpeg) {
  BLIP_REQUIRE_FIXTURES();
  REQUIRE_DECODER();
  for (const std::string name : {"v0_rgb_640x480.jpg", "v7_rgb_64x64.jpg"}) {
    SCOPED_TRACE(name);
    const auto full = read_all(ref_image(name));
    // Cut in the middle of the scan data, just before EOI, and inside the headers; PIL raises
    // "image file is truncated" / "Truncated File Read" for all of them.
    expect_file_error(head(full, full.size() / 2), "half_" + name, "truncated JPEG file");
    expect_file_error(head(full, full.size() - 2), "noeoi_" + name,
                      "truncated JPEG file (it ends at byte " + std::to_string(full.size() - 2) +
                          " before the end-of-image marker)");
    expect_file_error(head(full, 40), "head_" + name, "truncated JPEG file");
    expect_file_error(head(full, 3), "magic_" + name, "truncated JPEG file");
  }
}

TEST(BadInput, TruncatedPng) {
  BLIP_REQUIRE_FIXTURES();
  REQUIRE_DECODER();
  const auto full = read_all(ref_image("v1_rgb_500x333.png"));
  expect_file_error(head(full, full.size() / 2), "half.png", "truncated PNG file (chunk 'IDAT'");
  expect_file_error(head(full, 20), "ihdr.png", "truncated PNG file (the IHDR chunk is incomplete)");
  expect_file_error(head(full, 40), "noidat.png", "before any image data");
}

TEST(BadInput, PngMissingOnlyIendDecodesLikePil) {
  BLIP_REQUIRE_FIXTURES();
  REQUIRE_DECODER();
  const std::string path = ref_image("v1_rgb_500x333.png");
  const ImageU8 expected = decode_image_file(path);
  const auto full = read_all(path);
  for (std::size_t cut : {full.size() - 12, full.size() - 2}) {
    const auto bytes = head(full, cut);
    const ImageU8 img = decode_image_bytes(bytes.data(), bytes.size(), "cut.png");
    EXPECT_EQ(img.pixels, expected.pixels) << "cut at " << cut;
  }
}

TEST(BadInput, PngCutBetweenImageDataChunks) {
  REQUIRE_DECODER();
  PngSpec spec = png_spec(16, 16, 8, 2, std::vector<std::uint8_t>(16 * 16 * 3, 90));
  spec.idat_bytes = 100;
  const auto png = encode_png(spec);
  // End of the first IDAT chunk: signature, IHDR (25 bytes), IDAT (12 + 100 bytes).
  const std::size_t first_idat_end = 8 + 25 + 112;
  ASSERT_EQ(std::string(png.begin() + 8 + 25 + 4, png.begin() + 8 + 25 + 8), "IDAT");
  expect_file_error(head(png, first_idat_end), "cut_idat.png",
                    "truncated PNG file (no IEND chunk, and the image data is incomplete)");
}

TEST(BadInput, CorruptPngData) {
  REQUIRE_DECODER();
  auto png = encode_png(png_spec(4, 4, 8, 2, std::vector<std::uint8_t>(48, 7)));
  png[8 + 25 + 8 + 10] ^= 0x55;  // a byte of IDAT data: the CRC no longer matches
  expect_file_error(png, "crc.png", "could not decode the PNG image");
}

TEST(BadInput, InvalidPngStructure) {
  auto png = encode_png(png_spec(4, 4, 8, 2, std::vector<std::uint8_t>(48, 7)));
  png[12] = 'X';  // first chunk is no longer IHDR
  expect_file_error(png, "noihdr.png", "invalid PNG file (no IHDR chunk first)");
}

// A PNG header claiming a huge image, with almost no data: refused from the header alone, before
// anything is allocated (so it is instant).
TEST(BadInput, DecompressionBombPngHeader) {
  for (const auto& [w, h] : {std::pair<std::uint32_t, std::uint32_t>{100000, 100000},
                             std::pair<std::uint32_t, std::uint32_t>{0x7FFFFFFF, 0x7FFFFFFF},
                             std::pair<std::uint32_t, std::uint32_t>{20000, 9000}}) {
    SCOPED_TRACE(std::to_string(w) + "x" + std::to_string(h));
    PngSpec spec = png_spec(w, h, 8, 0, std::vector<std::uint8_t>(w > 100000 ? 0 : w, 0));
    const auto start = std::chrono::steady_clock::now();
    expect_file_error(encode_png(spec), "bomb.png",
                      std::to_string(w) + "x" + std::to_string(h) + " = " +
                          std::to_string(std::int64_t{w} * h) + " pixels, over the limit of " +
                          std::to_string(kDefaultMaxImagePixels));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(ms, 500.0);
  }
}

TEST(BadInput, DecompressionBombJpegHeader) {
  // SOI, SOF0 claiming 65535x65535 with 3 components, then EOI: refused from the header.
  const std::vector<std::uint8_t> jpeg = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 8,    0xFF, 0xFF,
                                          0xFF, 0xFF, 3,    1,    0x22, 0,    2,    0x11, 1,
                                          3,    0x11, 1,    0xFF, 0xD9};
  expect_file_error(jpeg, "bomb.jpg", "65535x65535 = 4294836225 pixels, over the limit");
}

TEST(BadInput, DecompressionBombBmpHeader) {
  std::vector<std::uint8_t> bmp(54, 0);
  bmp[0] = 'B';
  bmp[1] = 'M';
  bmp[14] = 40;                                   // BITMAPINFOHEADER
  bmp[18] = 0x40, bmp[19] = 0x9C;                 // width 40000
  bmp[22] = 0xC0, bmp[23] = 0x63, bmp[24] = 0xFF, bmp[25] = 0xFF;  // height -40000 (top-down)
  bmp[26] = 1, bmp[28] = 24;
  expect_file_error(bmp, "bomb.bmp", "40000x40000 = 1600000000 pixels, over the limit");
}

TEST(BadInput, PixelLimitIsConfigurable) {
  REQUIRE_DECODER();
  const auto png = encode_png(png_spec(30, 20, 8, 0, std::vector<std::uint8_t>(600, 1)));
  DecodeOptions tight;
  tight.max_pixels = 599;
  expect_file_error(png, "small.png", "30x20 = 600 pixels, over the limit of 599", tight);
  tight.max_pixels = 600;
  EXPECT_EQ(decode_image_bytes(png.data(), png.size(), "ok.png", tight).width, 30);
  tight.max_pixels = 0;  // no limit
  EXPECT_EQ(decode_image_bytes(png.data(), png.size(), "ok.png", tight).width, 30);
}

TEST(BadInput, FileSizeLimitIsConfigurable) {
  const auto png = encode_png(png_spec(30, 20, 8, 0, std::vector<std::uint8_t>(600, 1)));
  DecodeOptions tight;
  tight.max_file_bytes = 100;
  expect_file_error(png, "big.png",
                    std::to_string(png.size()) + " bytes, over the limit of 100", tight);
}

TEST(BadInput, TransformArguments) {
  BLIP_REQUIRE_FIXTURES();
  const std::string path = ref_image("v5_pal_17x23.png");
  try {
    load_image_tensor(path, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "image_size: must be positive, got 0");
  }
  EXPECT_THROW(load_image_batch({path}, -3), Error);
  EXPECT_THROW(to_normalized_tensor(ImageU8()), Error);
  NormalizeStats zero_std;
  zero_std.std[1] = 0.0f;
  EXPECT_THROW(to_normalized_tensor(ImageU8(2, 2), zero_std), Error);
}

TEST(BadInput, BatchNamesTheFailingFile) {
  BLIP_REQUIRE_FIXTURES();
  REQUIRE_DECODER();
  const std::string missing = test::temp_dir() + "/missing.png";
  try {
    load_image_batch({ref_image("v5_pal_17x23.png"), missing}, 16);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), missing + ": no such file");
  }
}

}  // namespace
}  // namespace blip::image
