// The parts of the training transform that need no fixtures: TransformRng, the crop parameter
// algorithm, RandomAugment's arg_dict and quirks, and the properties of our own random path
// (same seed -> same tensor, decisions recorded and replayable, BLIP's decision frequencies).
#include "blip/image/augment_ops.h"
#include "blip/image/decode.h"
#include "blip/image/random_augment.h"
#include "blip/image/random_resized_crop.h"
#include "blip/image/train_transform.h"
#include "blip/image/transform_rng.h"
#include "common/expect_error.h"
#include "image/image_fixtures.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace blip::image {
namespace {

using test::compare_images;

void expect_same_image(const std::string& what, const ImageU8& ours, const ImageU8& expected) {
  const auto diff = compare_images(ours, expected);
  EXPECT_EQ(diff.count, 0) << what << ": " << diff.count << " bytes differ, max " << diff.max_abs;
}

bool skip_without_decoder() { return !have_image_decoder(); }

// ---------------------------------------------------------------------------------------------
// TransformRng

TEST(AugmentRng, XoshiroReferenceValues) {
  // xoshiro256** seeded by splitmix64, computed independently: a change here changes every
  // training sample of every seed.
  TransformRng a(0);
  EXPECT_EQ(a.next_u64(), 0x99ec5f36cb75f2b4ull);
  EXPECT_EQ(a.next_u64(), 0xbf6e1f784956452aull);
  EXPECT_EQ(a.next_u64(), 0x1a5f849d4933e6e0ull);
  TransformRng b(12345);
  EXPECT_EQ(b.next_u64(), 0xbe6a36374160d49bull);
  EXPECT_EQ(b.next_u64(), 0x214aaa0637a688c6ull);
  EXPECT_EQ(b.next_u64(), 0xf69d16de9954d388ull);
  // uniform() keeps the top 53 bits.
  TransformRng c(0);
  EXPECT_EQ(c.uniform(), static_cast<double>(0x99ec5f36cb75f2b4ull >> 11) / 9007199254740992.0);
}

TEST(AugmentRng, UniformRangesAndBalance) {
  TransformRng rng(7);
  constexpr int kDraws = 60000;
  double sum = 0;
  std::array<int, 6> counts{};
  for (int i = 0; i < kDraws; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    const double v = rng.uniform(-2.0, 3.0);
    ASSERT_GE(v, -2.0);
    ASSERT_LT(v, 3.0);
    const auto k = rng.uniform_int(6);
    ASSERT_GE(k, 0);
    ASSERT_LT(k, 6);
    ++counts[static_cast<std::size_t>(k)];
  }
  EXPECT_NEAR(sum / kDraws, 0.5, 0.01);
  for (int c : counts) EXPECT_NEAR(c, kDraws / 6.0, kDraws / 6.0 * 0.05);
  EXPECT_EQ(rng.uniform_int(1), 0);
  test::expect_error([&] { rng.uniform_int(0); }, {"uniform_int", "positive"});
}

TEST(AugmentRng, DeriveSeedSeparatesStreams) {
  std::set<std::uint64_t> seen;
  for (std::uint64_t i = 0; i < 1000; ++i) seen.insert(derive_seed(42, i));
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(derive_seed(42, 5), derive_seed(42, 5));
  EXPECT_NE(derive_seed(42, 5), derive_seed(43, 5));
}

// ---------------------------------------------------------------------------------------------
// RandomResizedCrop

TEST(AugmentCrop, CentralCropClampsTheRatio) {
  // 97x211 is narrower than 3/4: full width, h = round(97 / 0.75) = round(129.33) = 129.
  const CropBox tall = central_crop_box(211, 97);
  EXPECT_EQ(tall.top, 41);
  EXPECT_EQ(tall.left, 0);
  EXPECT_EQ(tall.height, 129);
  EXPECT_EQ(tall.width, 97);
  // 1000x100 (w x h) is wider than 4/3: full height, w = round(133.33) = 133.
  const CropBox wide = central_crop_box(100, 1000);
  EXPECT_EQ(wide.height, 100);
  EXPECT_EQ(wide.width, 133);
  EXPECT_EQ(wide.left, (1000 - 133) / 2);
  EXPECT_EQ(wide.top, 0);
  // Inside the range: the whole image.
  const CropBox same = central_crop_box(480, 640);
  EXPECT_TRUE(same == (CropBox{0, 0, 480, 640}));
}

TEST(AugmentCrop, AttemptSizeRoundsHalfToEven) {
  // sqrt(area * scale * aspect) = 2.5 exactly -> Python round gives 2, not 3.
  int h = 0, w = 0;
  EXPECT_TRUE(crop_attempt_size(10, 10, 0.0625, 1.0, &h, &w));
  EXPECT_EQ(w, 2);
  EXPECT_EQ(h, 2);
  EXPECT_TRUE(crop_attempt_size(10, 10, 0.1225, 1.0, &h, &w));  // 3.5 -> 4
  EXPECT_EQ(w, 4);
  EXPECT_FALSE(crop_attempt_size(10, 10, 1.0, 1.3, &h, &w));  // w = 11 > 10
}

TEST(AugmentCrop, CropOutsideTheImageReadsZero) {
  ImageU8 img(2, 2);
  for (auto& p : img.pixels) p = 200;
  const ImageU8 c = crop(img, CropBox{-1, 1, 3, 2});
  ASSERT_EQ(c.width, 2);
  ASSERT_EQ(c.height, 3);
  // Row 0 is above the image; column 1 of the crop is right of it.
  EXPECT_EQ(c.row(0)[0], 0);
  EXPECT_EQ(c.row(1)[0], 200);
  EXPECT_EQ(c.row(1)[3], 0);
  EXPECT_EQ(c.row(2)[0], 200);
  test::expect_error([&] { crop(img, CropBox{0, 0, 0, 1}); }, {"crop", "empty"});
  test::expect_error([&] { resized_crop(img, CropBox{0, 0, 1, 1}, 0); }, {"resized_crop", "size"});
}

TEST(AugmentCrop, RandomParamsStayWithinScaleAndRatio) {
  TransformRng rng(2024);
  struct Shape {
    int h, w;
  };
  for (const Shape s : {Shape{480, 640}, Shape{384, 384}, Shape{211, 97}}) {
    SCOPED_TRACE(std::to_string(s.w) + "x" + std::to_string(s.h));
    constexpr int kDraws = 3000;
    int fallbacks = 0;
    double scale_sum = 0;
    int accepted = 0;
    for (int i = 0; i < kDraws; ++i) {
      bool fb = false;
      const CropBox b = random_resized_crop_params(s.h, s.w, rng, kDefaultCropScale,
                                                   kDefaultCropRatio, &fb);
      ASSERT_GE(b.top, 0);
      ASSERT_GE(b.left, 0);
      ASSERT_GT(b.height, 0);
      ASSERT_GT(b.width, 0);
      ASSERT_LE(b.top + b.height, s.h);
      ASSERT_LE(b.left + b.width, s.w);
      if (fb) {
        ++fallbacks;
        EXPECT_TRUE(b == central_crop_box(s.h, s.w));
        continue;
      }
      // w and h are rounded: allow half a pixel on each side.
      const double area = double(s.h) * s.w;
      const double scale = double(b.height) * b.width / area;
      const double slack = (double(b.height) + b.width + 1) / (2 * area);
      EXPECT_GE(scale, kDefaultCropScale[0] - slack);
      EXPECT_LE(scale, kDefaultCropScale[1] + slack);
      const double ratio = double(b.width) / b.height;
      EXPECT_GE(ratio, kDefaultCropRatio[0] * (1 - 1.0 / b.width) * (1 - 1.0 / b.height));
      EXPECT_LE(ratio, kDefaultCropRatio[1] * (1 + 1.0 / b.width) * (1 + 1.0 / b.height));
      scale_sum += scale;
      ++accepted;
    }
    if (s.w == 97) {
      // Too narrow for most draws: torchvision falls back often here (3 of 4 fixture boxes).
      EXPECT_GT(fallbacks, kDraws / 10);
    } else {
      // All 10 attempts rarely fail on a 4:3 or square image.
      EXPECT_LT(fallbacks, kDraws / 100);
      // scale ~ U(0.5, 1) but large-area draws that do not fit are retried: mean below 0.75
      // for a non-square image, near 0.75 for a square one.
      EXPECT_GT(scale_sum / accepted, 0.6);
      EXPECT_LT(scale_sum / accepted, 0.77);
    }
  }
  test::expect_error([&] { random_resized_crop_params(0, 5, rng); }, {"empty"});
  test::expect_error([&] { random_resized_crop_params(5, 5, rng, {0.9, 0.5}); }, {"scale"});
  test::expect_error([&] { random_resized_crop_params(5, 5, rng, {0.5, 1.0}, {0.0, 1.0}); },
                     {"ratio"});
}

// ---------------------------------------------------------------------------------------------
// RandomAugment ops

TEST(AugmentOps, ArgDictValues) {
  // README section 9's table.
  EXPECT_EQ(augment_args(AugmentOp::Brightness, 5, false).value, 1.0);
  EXPECT_EQ(augment_args(AugmentOp::Sharpness, 10, false).value, 1.9000000000000001);
  EXPECT_EQ(augment_args(AugmentOp::Brightness, 2, false).value, 0.4600000000000001);
  EXPECT_EQ(augment_args(AugmentOp::ShearX, 5, false).value, 0.15);
  EXPECT_EQ(augment_args(AugmentOp::ShearY, 10, true).value, -0.3);
  EXPECT_EQ(augment_args(AugmentOp::TranslateX, 5, true).value, -5.0);
  EXPECT_EQ(augment_args(AugmentOp::TranslateY, 10, false).value, 10.0);
  EXPECT_EQ(augment_args(AugmentOp::Rotate, 5, false).value, 15.0);
  EXPECT_EQ(augment_args(AugmentOp::Rotate, 10, true).value, -30.0);
  EXPECT_EQ(augment_args(AugmentOp::ShearX, 5, false).fill, kAugmentFill);
  // The two sign helpers of randaugment.py compare differently.
  EXPECT_TRUE(augment_sign_negates(AugmentOp::ShearX, 0.75));
  EXPECT_FALSE(augment_sign_negates(AugmentOp::ShearX, 0.5));
  EXPECT_FALSE(augment_sign_negates(AugmentOp::TranslateY, 0.25));
  EXPECT_TRUE(augment_sign_negates(AugmentOp::Rotate, 0.25));
  EXPECT_FALSE(augment_sign_negates(AugmentOp::Rotate, 0.5));
  EXPECT_FALSE(augment_sign_negates(AugmentOp::Equalize, 0.9));
  const auto ops = blip_train_augment_ops();
  ASSERT_EQ(ops.size(), static_cast<std::size_t>(kAugmentOpCount));
  for (const AugmentOp op : ops) EXPECT_EQ(augment_op_from_name(augment_op_name(op)), op);
  test::expect_error([] { augment_op_from_name("Solarize"); }, {"Solarize", "unknown"});
}

TEST(AugmentOps, AutoContrastWrapQuirk) {
  // One channel spanning 64..191: BLIP's offset is (256 - 64) * 255/127 instead of -64 * 255/127,
  // so every value maps above 255 and clips: the channel becomes all 255.
  ImageU8 img(2, 1);
  img.pixels = {64, 0, 10, 191, 255, 10};
  const ImageU8 out = autocontrast(img);
  EXPECT_EQ(out.pixels[0], 255);
  EXPECT_EQ(out.pixels[3], 255);
  // Channel 1 spans 0..255: unchanged; channel 2 is constant: unchanged.
  EXPECT_EQ(out.pixels[1], 0);
  EXPECT_EQ(out.pixels[4], 255);
  EXPECT_EQ(out.pixels[2], 10);
  EXPECT_EQ(out.pixels[5], 10);
}

TEST(AugmentOps, BrightnessUsesFloat32Factor) {
  // Level 6: factor 1.1800000000000002. In double 50 * factor = 59.000000000000014 -> 59; numpy
  // multiplies by float32(factor) = 1.17999995 in float32: 58.9999976 -> 58.
  const AugmentArgs args = augment_args(AugmentOp::Brightness, 6, false);
  EXPECT_EQ(args.value, 1.1800000000000002);
  ImageU8 img(1, 1);
  img.pixels = {50, 100, 220};
  const ImageU8 out = brightness(img, args.value);
  EXPECT_EQ(out.pixels[0], 58);
  EXPECT_EQ(out.pixels[1], 117);
  EXPECT_EQ(out.pixels[2], 255);
}

TEST(AugmentOps, EmptyImageThrows) {
  const ImageU8 empty;
  for (const AugmentOp op : blip_train_augment_ops())
    test::expect_error([&] { apply_augment_op(empty, op, AugmentArgs{}); }, {"empty"});
}

// ---------------------------------------------------------------------------------------------
// Our random path

// A deterministic textured image: a smooth ramp plus hashed noise, so that no two crops, and no
// contrast-stretched versions of them, coincide.
ImageU8 test_image(int w, int h) {
  ImageU8 img(w, h);
  TransformRng noise(99);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      std::uint8_t* p = img.row(y) + x * 3;
      const int n = static_cast<int>(noise.uniform_int(64));
      p[0] = static_cast<std::uint8_t>(x * 191 / std::max(w - 1, 1) + n);
      p[1] = static_cast<std::uint8_t>(y * 191 / std::max(h - 1, 1) + 63 - n);
      p[2] = static_cast<std::uint8_t>((x * 7 + y * 13 + n) % 256);
    }
  return img;
}

TrainTransformConfig small_config() {
  TrainTransformConfig cfg;
  cfg.image_size = 48;
  return cfg;
}

TEST(AugmentRandom, SameSeedSameTensorDifferentSeedsDiffer) {
  if (skip_without_decoder()) GTEST_SKIP() << "warp ops need OpenCV";
  const ImageU8 img = test_image(120, 90);
  const TrainTransformConfig cfg = small_config();
  const at::Tensor a = train_transform(img, cfg, 77);
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  ASSERT_EQ(a.sizes(), (at::IntArrayRef{3, 48, 48}));
  EXPECT_TRUE(at::equal(a, train_transform(img, cfg, 77)));
  constexpr int kSeeds = 24;
  std::vector<at::Tensor> outs;
  std::vector<TrainTransformTrace> traces(kSeeds);
  for (int s = 0; s < kSeeds; ++s) outs.push_back(train_transform(img, cfg, 1000 + s, &traces[s]));
  const auto fired_autocontrast = [](const TrainTransformTrace& t) {
    for (const auto& st : t.ops)
      if (st.fired && st.op == AugmentOp::AutoContrast) return true;
    return false;
  };
  int identical_pairs = 0;
  for (int i = 0; i < kSeeds; ++i)
    for (int j = i + 1; j < kSeeds; ++j) {
      EXPECT_FALSE(traces[i].box == traces[j].box && traces[i].flipped == traces[j].flipped)
          << "seeds " << i << ", " << j << " drew the same crop and flip";
      if (!at::equal(outs[i], outs[j])) continue;
      ++identical_pairs;
      // Only BLIP's AutoContrast quirk (a channel whose minimum is above 0 becomes all 255) can
      // make two different crops equal.
      EXPECT_TRUE(fired_autocontrast(traces[i]) && fired_autocontrast(traces[j]))
          << "seeds " << i << ", " << j;
    }
  EXPECT_LE(identical_pairs, 2);
  // Without RandomAugment every seed gives a different tensor.
  TrainTransformConfig plain = cfg;
  plain.augment = false;
  std::vector<at::Tensor> plain_outs;
  for (int s = 0; s < kSeeds; ++s) plain_outs.push_back(train_transform(img, plain, 1000 + s));
  for (int i = 0; i < kSeeds; ++i)
    for (int j = i + 1; j < kSeeds; ++j)
      EXPECT_FALSE(at::equal(plain_outs[i], plain_outs[j])) << "seeds " << i << ", " << j;
}

TEST(AugmentRandom, TraceReplaysToTheSameTensor) {
  if (skip_without_decoder()) GTEST_SKIP() << "warp ops need OpenCV";
  const ImageU8 img = test_image(100, 140);
  const TrainTransformConfig cfg = small_config();
  int fired = 0, flips = 0;
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    TrainTransformTrace t;
    const at::Tensor a = train_transform(img, cfg, seed, &t);
    ASSERT_EQ(t.ops.size(), 2u);
    for (const auto& s : t.ops) fired += s.fired;
    flips += t.flipped;
    EXPECT_TRUE(at::equal(a, train_transform_replay(img, cfg, t))) << "seed " << seed;
  }
  EXPECT_GT(fired, 0);
  EXPECT_GT(flips, 0);
}

TEST(AugmentRandom, DecisionFrequencies) {
  if (skip_without_decoder()) GTEST_SKIP() << "warp ops need OpenCV";
  const ImageU8 img = test_image(40, 30);
  TrainTransformConfig cfg = small_config();
  cfg.image_size = 16;
  constexpr int kRuns = 2000;
  int flips = 0, chosen = 0, fired = 0, signed_fired = 0, negated = 0;
  std::map<AugmentOp, int> per_op;
  for (int s = 0; s < kRuns; ++s) {
    TrainTransformTrace t;
    train_transform_image(img, cfg, static_cast<std::uint64_t>(s), &t);
    flips += t.flipped;
    for (const auto& st : t.ops) {
      ++chosen;
      ++per_op[st.op];
      EXPECT_EQ(st.level, cfg.augment_m);
      if (!st.fired) {
        EXPECT_FALSE(st.has_sign_draw);
        continue;
      }
      ++fired;
      if (st.has_sign_draw) {
        ++signed_fired;
        negated += st.args.value < 0;
      }
    }
  }
  EXPECT_NEAR(flips, kRuns * 0.5, kRuns * 0.05);
  EXPECT_EQ(chosen, 2 * kRuns);
  EXPECT_NEAR(fired, chosen * 0.5, chosen * 0.05);
  EXPECT_NEAR(negated, signed_fired * 0.5, signed_fired * 0.08);
  ASSERT_EQ(per_op.size(), static_cast<std::size_t>(kAugmentOpCount));
  for (const auto& [op, n] : per_op) EXPECT_NEAR(n, chosen / 10.0, chosen / 10.0 * 0.3) << augment_op_name(op);
}

TEST(AugmentRandom, SwitchesAndNoAugmentPath) {
  const ImageU8 img = test_image(64, 48);
  TrainTransformConfig cfg = small_config();
  cfg.hflip = false;
  cfg.augment = false;
  TrainTransformTrace t;
  const ImageU8 out = train_transform_image(img, cfg, 5, &t);
  EXPECT_FALSE(t.flipped);
  EXPECT_TRUE(t.ops.empty());
  // Only the crop: equal to resizing the recorded box.
  expect_same_image("crop only", out, resized_crop(img, t.box, 48));
  // scale (1, 1) on a 4:3 image: the only box that fits is the whole image.
  cfg.min_scale = cfg.max_scale = 1.0;
  train_transform_image(img, cfg, 9, &t);
  EXPECT_TRUE(t.box == (CropBox{0, 0, 48, 64}));
}

TEST(AugmentRandom, BadConfigThrows) {
  const ImageU8 img = test_image(8, 8);
  TrainTransformConfig cfg = small_config();
  cfg.image_size = 0;
  test::expect_error([&] { train_transform(img, cfg, 1); }, {"image_size"});
  cfg = small_config();
  cfg.min_scale = 0.8;
  cfg.max_scale = 0.5;
  test::expect_error([&] { train_transform(img, cfg, 1); }, {"min_scale"});
  cfg = small_config();
  cfg.augment_n = -1;
  test::expect_error([&] { train_transform(img, cfg, 1); }, {"augment_n"});
  cfg = small_config();
  cfg.augment_m = -2;
  test::expect_error([&] { train_transform(img, cfg, 1); }, {"augment_m"});
  test::expect_error([&] { train_transform(ImageU8{}, small_config(), 1); }, {"empty"});
  RandomAugment aug;
  aug.ops.clear();
  TransformRng rng(1);
  test::expect_error([&] { aug.apply(img, rng); }, {"RandomAugment", "empty"});
}

}  // namespace
}  // namespace blip::image