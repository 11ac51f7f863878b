// The resampler on small inputs, against outputs of Pillow 9.4's `Image.resize(size,
// Image.BICUBIC)` (generated once with Debian's python3-pil 9.4.0 and pasted below), covering
// downscaling, upscaling, one-axis resizes and a 1x1 output; plus argument checks.
#include "blip/error.h"
#include "blip/image/resize.h"

#include <gtest/gtest.h>

#include <vector>

namespace blip::image {
namespace {

// An 11x7 RGB pattern with strong edges (so that the negative lobes overshoot and clip).
ImageU8 pattern_11x7() {
  ImageU8 img(11, 7);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int c = 0; c < 3; ++c)
        img.row(y)[x * 3 + c] =
            static_cast<std::uint8_t>((x * 37 + y * 101 + c * 53 + (x * y * 7) % 29) % 256);
  return img;
}

struct PillowCase {
  int width, height;
  std::vector<int> pixels;  // HWC
};

// np.array(Image.fromarray(pattern).resize((w, h), Image.BICUBIC)).flatten()
const std::vector<PillowCase>& pillow_cases() {
  static const std::vector<PillowCase> cases = {
    {5, 4, {79, 130, 159, 132, 139, 158, 120, 137, 133, 96, 118, 122, 134, 143, 126, 159, 156, 143, 125, 128, 138, 140, 133, 156, 116, 116, 121, 104, 141, 131, 151, 97, 157, 128, 116, 127, 141, 131, 139, 130, 118, 119, 138, 109, 141, 135, 137, 168, 136, 134, 117, 102, 125, 102, 99, 127, 124, 147, 140, 108}},
    {11, 3, {82, 136, 134, 125, 132, 185, 113, 175, 115, 158, 99, 152, 89, 142, 196, 113, 166, 122, 156, 112, 111, 96, 94, 156, 85, 146, 86, 109, 170, 110, 160, 101, 154, 129, 171, 153, 175, 87, 140, 142, 124, 174, 102, 151, 97, 147, 93, 135, 175, 121, 170, 105, 155, 137, 132, 114, 97, 111, 93, 142, 140, 122, 171, 105, 155, 100, 170, 111, 172, 108, 114, 167, 160, 158, 114, 139, 95, 148, 86, 139, 79, 107, 160, 100, 151, 91, 153, 72, 133, 132, 124, 123, 79, 158, 156, 112, 135, 91, 144}},
    {4, 7, {35, 89, 148, 143, 187, 188, 120, 85, 86, 67, 125, 184, 155, 188, 173, 114, 85, 103, 88, 154, 169, 194, 167, 52, 173, 127, 101, 99, 156, 206, 166, 138, 102, 51, 84, 142, 94, 158, 191, 197, 110, 81, 91, 83, 149, 133, 193, 166, 194, 79, 132, 86, 101, 160, 155, 170, 141, 167, 52, 85, 114, 88, 152, 145, 195, 109, 123, 88, 80, 76, 134, 194, 153, 186, 170, 105, 76, 94, 77, 143, 158, 182, 155, 40}},
    {23, 9, {0, 45, 98, 0, 53, 106, 19, 72, 124, 38, 91, 145, 56, 108, 170, 73, 128, 192, 91, 152, 210, 109, 174, 227, 133, 192, 255, 156, 209, 255, 174, 244, 138, 192, 245, 30, 226, 136, 30, 232, 19, 65, 133, 11, 82, 9, 46, 100, 0, 64, 121, 27, 82, 146, 47, 100, 166, 66, 118, 184, 85, 141, 203, 104, 167, 222, 112, 178, 230, 59, 110, 182, 67, 123, 195, 86, 154, 226, 112, 184, 209, 142, 216, 122, 170, 204, 72, 203, 120, 94, 199, 63, 123, 119, 81, 150, 52, 109, 160, 54, 124, 127, 76, 129, 100, 99, 108, 121, 117, 88, 157, 101, 109, 190, 79, 145, 206, 97, 168, 150, 132, 187, 64, 147, 207, 46, 155, 219, 67, 173, 171, 87, 195, 86, 109, 204, 48, 118, 155, 211, 137, 169, 200, 151, 199, 154, 184, 200, 139, 176, 155, 176, 108, 132, 175, 72, 158, 101, 97, 161, 54, 127, 99, 83, 150, 48, 119, 172, 47, 125, 196, 66, 133, 204, 93, 171, 168, 126, 199, 129, 159, 164, 143, 181, 113, 164, 156, 120, 122, 110, 151, 56, 101, 170, 40, 114, 178, 56, 135, 141, 82, 161, 77, 115, 173, 48, 131, 175, 232, 52, 192, 205, 65, 230, 107, 94, 212, 57, 126, 108, 84, 163, 44, 115, 180, 55, 136, 161, 82, 149, 153, 118, 150, 179, 151, 153, 207, 165, 161, 232, 172, 175, 228, 171, 212, 142, 169, 225, 51, 188, 136, 42, 196, 25, 69, 128, 21, 100, 30, 66, 137, 8, 83, 157, 31, 91, 166, 56, 117, 168, 84, 152, 166, 97, 168, 166, 42, 95, 148, 56, 109, 162, 86, 139, 192, 112, 165, 221, 125, 178, 250, 138, 192, 221, 150, 221, 93, 167, 206, 8, 196, 100, 33, 223, 15, 73, 255, 20, 88, 250, 47, 100, 143, 61, 114, 28, 75, 128, 16, 87, 140, 48, 101, 154, 74, 127, 180, 104, 157, 210, 122, 175, 238, 134, 187, 255, 149, 202, 182, 164, 217, 55, 171, 224, 0, 114, 205, 249, 133, 165, 222, 177, 75, 130, 215, 27, 81, 246, 47, 104, 227, 71, 120, 117, 91, 107, 43, 101, 107, 58, 94, 134, 89, 92, 163, 110, 106, 181, 124, 127, 197, 116, 151, 229, 107, 176, 240, 127, 208, 155, 156, 222, 51, 178, 150, 41, 199, 44, 75, 226, 24, 96, 246, 55, 113, 186, 76, 115, 77, 94, 105, 28, 102, 101, 223, 118, 163, 203, 99, 152, 140, 57, 109, 110, 39, 95, 139, 60, 125, 145, 87, 159, 96, 115, 197, 68, 144, 201, 95, 170, 135, 126, 193, 79, 136, 215, 83, 147, 214, 104, 182, 155, 129, 202, 93, 145, 152, 105, 109, 85, 133, 64, 83, 103, 74, 111, 53, 109, 138, 52, 133, 161, 80, 153, 134, 103, 173, 75, 123, 190, 48, 131, 198, 210, 62, 116, 182, 76, 131, 97, 109, 167, 54, 139, 181, 80, 167, 157, 112, 173, 149, 143, 145, 178, 159, 130, 176, 139, 152, 99, 121, 176, 33, 125, 195, 32, 137, 190, 51, 169, 120, 70, 184, 46, 94, 118, 45, 125, 34, 75, 150, 30, 104, 140, 65, 136, 116, 86, 162, 125, 102, 180, 144, 124, 166, 161, 145, 132, 172, 155, 116, 177, 81, 147, 200, 96, 159, 217, 128, 184, 255, 159, 214, 231, 185, 255, 106, 205, 232, 28, 231, 94, 35, 209, 0, 61, 92, 19, 93, 0, 56, 121, 0, 65, 132, 23, 76, 141, 46, 106, 165, 71, 136, 189, 88, 149, 215, 102, 155, 219, 125, 177, 132, 151, 204, 12, 163, 227, 0, 171, 239, 5, 192, 169, 30, 219, 47, 57, 233, 0, 70}},
    {1, 1, {126, 128, 134}},
    {3, 17, {48, 111, 171, 154, 148, 128, 60, 97, 164, 65, 120, 167, 143, 141, 130, 78, 110, 151, 108, 141, 158, 112, 122, 135, 127, 145, 118, 153, 161, 147, 85, 108, 142, 171, 174, 86, 161, 153, 138, 97, 126, 153, 149, 148, 88, 151, 133, 130, 128, 157, 164, 98, 99, 109, 141, 131, 134, 147, 154, 156, 79, 94, 131, 127, 149, 151, 154, 110, 124, 90, 139, 158, 122, 156, 162, 153, 80, 104, 111, 169, 170, 140, 125, 152, 135, 100, 128, 142, 140, 138, 163, 84, 136, 112, 137, 163, 171, 93, 95, 159, 78, 135, 115, 153, 152, 158, 81, 101, 131, 99, 146, 140, 155, 104, 105, 96, 148, 116, 122, 153, 147, 147, 77, 78, 115, 169, 131, 141, 148, 115, 124, 100, 113, 138, 126, 149, 155, 142, 80, 102, 129, 153, 158, 79, 156, 162, 140, 67, 93, 140, 168, 166, 61}},
  };
  return cases;
}

TEST(ResizeBicubic, MatchesPillowOnSmallPattern) {
  const ImageU8 input = pattern_11x7();
  for (const auto& expected : pillow_cases()) {
    SCOPED_TRACE(std::to_string(expected.width) + "x" + std::to_string(expected.height));
    const ImageU8 out = resize_bicubic(input, expected.width, expected.height);
    ASSERT_EQ(out.width, expected.width);
    ASSERT_EQ(out.height, expected.height);
    ASSERT_EQ(out.pixels.size(), expected.pixels.size());
    int differing = 0, max_abs = 0;
    for (std::size_t i = 0; i < out.pixels.size(); ++i) {
      const int d = std::abs(int(out.pixels[i]) - expected.pixels[i]);
      differing += d != 0;
      max_abs = std::max(max_abs, d);
    }
    EXPECT_EQ(differing, 0) << "max abs diff " << max_abs;
  }
}

TEST(ResizeBicubic, SameSizeIsExactCopy) {
  const ImageU8 input = pattern_11x7();
  const ImageU8 out = resize_bicubic(input, input.width, input.height);
  EXPECT_EQ(out.pixels, input.pixels);
}

TEST(ResizeBicubic, ConstantImageStaysConstant) {
  ImageU8 input(37, 23);
  for (std::size_t i = 0; i < input.pixels.size(); ++i) input.pixels[i] = i % 3 == 0 ? 200 : 17;
  for (const auto& [w, h] : {std::pair{64, 64}, std::pair{5, 9}, std::pair{384, 100}}) {
    const ImageU8 out = resize_bicubic(input, w, h);
    for (std::size_t i = 0; i < out.pixels.size(); ++i)
      ASSERT_EQ(out.pixels[i], i % 3 == 0 ? 200 : 17) << "at byte " << i << " of " << w << "x" << h;
  }
}

void expect_error(const ImageU8& img, int w, int h, const std::string& reason) {
  try {
    resize_bicubic(img, w, h);
    ADD_FAILURE() << "no error for " << w << "x" << h;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("resize_bicubic"), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << msg;
  }
}

TEST(ResizeBicubic, RejectsBadArguments) {
  const ImageU8 input = pattern_11x7();
  expect_error(input, 0, 5, "output size must be positive, got 0x5");
  expect_error(input, 5, -1, "output size must be positive, got 5x-1");
  expect_error(ImageU8(), 5, 5, "input image is empty");
  ImageU8 inconsistent = pattern_11x7();
  inconsistent.pixels.pop_back();
  expect_error(inconsistent, 5, 5, "pixel buffer size does not match");
}

}  // namespace
}  // namespace blip::image
