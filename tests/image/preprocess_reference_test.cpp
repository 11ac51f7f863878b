// transform_test against the reference fixtures made with Pillow 9.4 / torchvision:
// decode -> BICUBIC resize (uint8, must be bit-exact) -> ToTensor + Normalize (float32).
#include "blip/image/decode.h"
#include "blip/image/resize.h"
#include "blip/image/transform.h"
#include "blip/io/safetensors.h"
#include "common/fixtures.h"
#include "image/image_fixtures.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <iostream>

namespace blip::image {
namespace {

using test::compare_images;
using test::find_tensor;
using test::image_from_hwc;
using test::preprocess_tensors;
using test::reference_images;

constexpr int kTinySize = 64;
constexpr int kFullSize = 384;

TEST(PreprocessReference, DecodeMatchesPilConvertRgb) {
  BLIP_REQUIRE_FIXTURES();
  if (!have_image_decoder()) GTEST_SKIP() << "built without OpenCV";
  int checked = 0;
  for (const auto& ref : reference_images()) {
    if (ref.decoded_path.empty()) continue;
    SCOPED_TRACE(ref.stem);
    const ImageU8 ours = decode_image_file(ref.path);
    // The reference PNGs are lossless 8-bit RGB; decoding them is a plain copy.
    const ImageU8 expected = decode_image_file(ref.decoded_path);
    const auto diff = compare_images(ours, expected);
    std::cout << "[decode] " << ref.stem << ": " << ours.width << "x" << ours.height << ", "
              << diff.count << " bytes differ (max " << diff.max_abs << ")\n";
    EXPECT_EQ(diff.count, 0) << "max abs diff " << diff.max_abs;
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

void check_resize(int size) {
  const auto& tensors = preprocess_tensors();
  const auto refs = reference_images();
  ASSERT_EQ(refs.size(), 8u);
  for (const auto& ref : refs) {
    SCOPED_TRACE(ref.stem);
    const std::string name = ref.stem + ".resized_" + std::to_string(size);
    const ImageU8 expected = image_from_hwc(find_tensor(tensors, name));
    const ImageU8 ours = resize_bicubic(decode_image_file(ref.path), size, size);
    const auto diff = compare_images(ours, expected);
    std::cout << "[resize " << size << "] " << ref.stem << ": " << diff.count
              << " bytes differ (max " << diff.max_abs << ")\n";
    EXPECT_EQ(diff.count, 0) << "max abs diff " << diff.max_abs;
  }
}

TEST(PreprocessReference, ResizeTinyIsBitExact) {
  BLIP_REQUIRE_FIXTURES();
  if (!have_image_decoder()) GTEST_SKIP() << "built without OpenCV";
  check_resize(kTinySize);
}

TEST(PreprocessReference, Resize384IsBitExact) {
  BLIP_REQUIRE_FIXTURES();
  if (!have_image_decoder()) GTEST_SKIP() << "built without OpenCV";
  check_resize(kFullSize);
}

// The resampler alone, fed the lossless reference decodes (independent of the JPEG decoder).
TEST(PreprocessReference, ResizeOfReferenceDecodesIsBitExact) {
  BLIP_REQUIRE_FIXTURES();
  if (!have_image_decoder()) GTEST_SKIP() << "built without OpenCV";
  const auto& tensors = preprocess_tensors();
  for (const auto& ref : reference_images()) {
    if (ref.decoded_path.empty()) continue;
    SCOPED_TRACE(ref.stem);
    const ImageU8 decoded = decode_image_file(ref.decoded_path);
    for (const auto& [size, suffix] :
         {std::pair{kTinySize, std::string(".resized_64")}, std::pair{kFullSize, std::string(".resized_384")}}) {
      const ImageU8 expected = image_from_hwc(find_tensor(tensors, ref.stem + suffix));
      const auto diff = compare_images(resize_bicubic(decoded, size, size), expected);
      EXPECT_EQ(diff.count, 0) << "size " << size << ", max abs diff " << diff.max_abs;
    }
  }
}

// Decoder-independent (runs in builds without OpenCV): two images are already at a fixture size,
// so their stored resize output at that size is the decoded image itself (a same-size resize is a
// copy). v2 is 384x384 (-> shrink to 64), v7 is 64x64 (-> enlarge to 384).
TEST(PreprocessReference, ResizeFromStoredSameSizeOutputsIsBitExact) {
  BLIP_REQUIRE_FIXTURES();
  const auto& tensors = preprocess_tensors();
  struct Case {
    std::string stem;
    int from, to;
  };
  for (const Case& c : {Case{"v2_gray_384x384", kFullSize, kTinySize},
                        Case{"v7_rgb_64x64", kTinySize, kFullSize}}) {
    SCOPED_TRACE(c.stem);
    const ImageU8 source =
        image_from_hwc(find_tensor(tensors, c.stem + ".resized_" + std::to_string(c.from)));
    const ImageU8 expected =
        image_from_hwc(find_tensor(tensors, c.stem + ".resized_" + std::to_string(c.to)));
    const auto diff = compare_images(resize_bicubic(source, c.to, c.to), expected);
    EXPECT_EQ(diff.count, 0) << "max abs diff " << diff.max_abs;
    const auto tensor = to_normalized_tensor(expected);
    if (c.to == kTinySize) {
      EXPECT_TRUE(tensor.equal(find_tensor(tensors, c.stem + ".tensor_64")));
    }
  }
}

struct FloatDiff {
  double max_abs = 0;
  std::int64_t differing = 0;
};

FloatDiff float_diff(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  EXPECT_EQ(b.scalar_type(), at::kFloat);
  FloatDiff d;
  d.max_abs = (a - b).abs().max().item<double>();
  d.differing = a.ne(b).sum().item<std::int64_t>();
  return d;
}

TEST(PreprocessReference, TensorTinyMatches) {
  BLIP_REQUIRE_FIXTURES();
  if (!have_image_decoder()) GTEST_SKIP() << "built without OpenCV";
  const auto& tensors = preprocess_tensors();
  for (const auto& ref : reference_images()) {
    SCOPED_TRACE(ref.stem);
    const at::Tensor ours = load_image_tensor(ref.path, kTinySize);
    const auto d = float_diff(ours, find_tensor(tensors, ref.stem + ".tensor_64"));
    std::cout << "[tensor 64] " << ref.stem << ": max abs diff " << d.max_abs << ", "
              << d.differing << " values differ\n";
    EXPECT_LE(d.max_abs, 1e-6);
    EXPECT_EQ(d.differing, 0);
  }
}

TEST(PreprocessReference, Tensor384Matches) {
  BLIP_REQUIRE_FIXTURES();
  if (!have_image_decoder()) GTEST_SKIP() << "built without OpenCV";
  const auto& tensors = preprocess_tensors();
  int stored = 0;
  for (const auto& ref : reference_images()) {
    SCOPED_TRACE(ref.stem);
    const at::Tensor ours = load_image_tensor(ref.path, kFullSize);
    if (ref.float_384_stored) {
      const auto d = float_diff(ours, find_tensor(tensors, ref.stem + ".tensor_384"));
      std::cout << "[tensor 384] " << ref.stem << ": max abs diff " << d.max_abs << ", "
                << d.differing << " values differ\n";
      EXPECT_LE(d.max_abs, 1e-6);
      EXPECT_EQ(d.differing, 0);
      ++stored;
    }
    // For every image the fixture's float tensor is (float32(u8)/255 - mean)/std of
    // resized_384; compare with that identity computed by ATen ops.
    const at::Tensor u8 = find_tensor(tensors, ref.stem + ".resized_384");
    const at::Tensor mean = at::tensor({0.48145466f, 0.4578275f, 0.40821073f}).view({3, 1, 1});
    const at::Tensor std = at::tensor({0.26862954f, 0.26130258f, 0.27577711f}).view({3, 1, 1});
    const at::Tensor expected = (u8.permute({2, 0, 1}).to(at::kFloat).div(255) - mean) / std;
    EXPECT_EQ(float_diff(ours, expected).differing, 0);
  }
  EXPECT_EQ(stored, 1);
}

TEST(PreprocessReference, PosembedImageAt96Matches) {
  BLIP_REQUIRE_FIXTURES();
  if (!have_image_decoder()) GTEST_SKIP() << "built without OpenCV";
  const auto tensors = io::load_safetensors(test::blip_ref_dir() + "/posembed/posembed.safetensors");
  const auto ref = reference_images().front();
  const ImageU8 resized = resize_bicubic(decode_image_file(ref.path), 96, 96);
  const auto diff = compare_images(resized, image_from_hwc(find_tensor(tensors, "image_resized_u8")));
  EXPECT_EQ(diff.count, 0) << "max abs diff " << diff.max_abs;
  const at::Tensor batch = load_image_batch({ref.path}, 96);
  const auto d = float_diff(batch, find_tensor(tensors, "image"));
  std::cout << "[posembed 96] " << ref.stem << ": " << diff.count << " bytes differ, float max abs diff "
            << d.max_abs << "\n";
  EXPECT_LE(d.max_abs, 1e-6);
  EXPECT_EQ(d.differing, 0);
}

TEST(PreprocessReference, BatchStacksPerImageTensors) {
  BLIP_REQUIRE_FIXTURES();
  if (!have_image_decoder()) GTEST_SKIP() << "built without OpenCV";
  std::vector<std::string> paths;
  for (const auto& ref : reference_images()) paths.push_back(ref.path);
  const at::Tensor batch = load_image_batch(paths, kTinySize);
  ASSERT_EQ(batch.sizes(), (at::IntArrayRef{8, 3, kTinySize, kTinySize}));
  const auto& tensors = preprocess_tensors();
  for (std::size_t i = 0; i < paths.size(); ++i)
    EXPECT_TRUE(batch[i].equal(find_tensor(tensors, reference_images()[i].stem + ".tensor_64")));
}

}  // namespace
}  // namespace blip::image
