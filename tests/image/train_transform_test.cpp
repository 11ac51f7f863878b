// BLIP's training transform against blip_ref/augment (README section 9): crops, flips, every
// RandomAugment op at every recorded level and sign, and six whole runs replayed from BLIP's
// recorded decisions, all bit for bit. (augment_random_test.cpp covers what needs no fixtures.)
#include "blip/image/augment_ops.h"
#include "blip/image/decode.h"
#include "blip/image/random_augment.h"
#include "blip/image/random_resized_crop.h"
#include "blip/image/train_transform.h"
#include "blip/io/safetensors.h"
#include "common/expect_error.h"
#include "common/fixtures.h"
#include "common/tensor_expect.h"
#include "image/image_fixtures.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>

namespace blip::image {
namespace {

using nlohmann::json;
using test::compare_images;
using test::find_tensor;
using test::image_from_hwc;

// What augment.json holds (a changed fixture set must fail these guards, not pass vacuously).
constexpr int kImages = 3;
constexpr int kBoxesPerImage = 4;
constexpr int kCropEntries = kImages * kBoxesPerImage * 2;  // S64 and S384
constexpr int kHflipEntries = kImages;
constexpr int kOpEntries = 108;  // 36 per image
constexpr int kPipelines = 6;
constexpr int kTinySize = 64;

const json& augment_index() {
  static const json j = [] {
    const std::string path = test::blip_ref_dir() + "/augment/augment.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    return json::parse(in);
  }();
  return j;
}

const io::NamedTensors& augment_tensors() {
  static const io::NamedTensors t =
      io::load_safetensors(test::blip_ref_dir() + "/augment/augment.safetensors");
  return t;
}

ImageU8 fixture_image(const std::string& name) {
  return image_from_hwc(find_tensor(augment_tensors(), name));
}

// The decoded source image (PIL convert('RGB')), cached per file.
const ImageU8& source_image(const std::string& relative) {
  static std::map<std::string, ImageU8> cache;
  auto it = cache.find(relative);
  if (it == cache.end())
    it = cache.emplace(relative, decode_image_file(test::blip_ref_dir() + "/" + relative)).first;
  return it->second;
}

CropBox box_from_json(const json& b) {
  CropBox box;
  box.top = b.at(0).get<int>();
  box.left = b.at(1).get<int>();
  box.height = b.at(2).get<int>();
  box.width = b.at(3).get<int>();
  return box;
}

AugmentArgs args_from_json(const json& a) {
  AugmentArgs args;
  if (a.size() >= 1) args.value = a.at(0).get<double>();
  if (a.size() >= 2)
    for (int c = 0; c < 3; ++c) args.fill[c] = a.at(1).at(c).get<std::uint8_t>();
  return args;
}

void expect_same_image(const std::string& what, const ImageU8& ours, const ImageU8& expected) {
  const auto diff = compare_images(ours, expected);
  EXPECT_EQ(diff.count, 0) << what << ": " << diff.count << " bytes differ, max " << diff.max_abs;
}

bool skip_without_decoder() { return !have_image_decoder(); }

// ---------------------------------------------------------------------------------------------
// RandomResizedCrop

TEST(AugmentCrop, GetParamsAttemptsMatchTorchvision) {
  BLIP_REQUIRE_FIXTURES();
  const json& images = augment_index().at("images");
  ASSERT_EQ(images.size(), static_cast<std::size_t>(kImages));
  int boxes = 0, attempts = 0, fallbacks = 0;
  for (const auto& im : images) {
    const int width = im.at("size_wh").at(0).get<int>();
    const int height = im.at("size_wh").at(1).get<int>();
    for (const auto& b : im.at("boxes")) {
      SCOPED_TRACE(im.at("stem").get<std::string>() + " box " + std::to_string(boxes));
      const CropBox box = box_from_json(b.at("box"));
      const auto& tries = b.at("attempts");
      for (std::size_t k = 0; k < tries.size(); ++k) {
        const auto& t = tries[k];
        // torchvision: aspect = exp(U(log 3/4, log 4/3)) in float32.
        const float lr = t.at("log_ratio_draw").get<float>();
        EXPECT_NEAR(std::exp(lr), t.at("aspect_ratio").get<double>(), 1e-6);
        EXPECT_GE(t.at("scale_draw").get<double>(), kDefaultCropScale[0]);
        EXPECT_LE(t.at("scale_draw").get<double>(), kDefaultCropScale[1]);
        int h = 0, w = 0;
        const bool ok = crop_attempt_size(height, width, t.at("scale_draw").get<double>(),
                                          t.at("aspect_ratio").get<double>(), &h, &w);
        EXPECT_EQ(w, t.at("w").get<int>());
        EXPECT_EQ(h, t.at("h").get<int>());
        EXPECT_EQ(ok, t.at("accepted").get<bool>());
        // Only the last attempt may be accepted.
        if (ok) {
          EXPECT_EQ(k + 1, tries.size());
          EXPECT_EQ(box.height, h);
          EXPECT_EQ(box.width, w);
        }
        ++attempts;
      }
      if (b.at("fallback").get<bool>()) {
        EXPECT_EQ(tries.size(), static_cast<std::size_t>(kCropAttempts));
        EXPECT_TRUE(central_crop_box(height, width) == box);
        ++fallbacks;
      }
      EXPECT_GE(box.top, 0);
      EXPECT_GE(box.left, 0);
      EXPECT_LE(box.top + box.height, height);
      EXPECT_LE(box.left + box.width, width);
      ++boxes;
    }
  }
  EXPECT_EQ(boxes, kImages * kBoxesPerImage);
  EXPECT_EQ(fallbacks, 3);  // three boxes of v3_rgba_97x211 (README section 9)
  EXPECT_GT(attempts, boxes);
}

TEST(AugmentCrop, ResizedCropBitExact) {
  BLIP_REQUIRE_FIXTURES();
  if (skip_without_decoder()) GTEST_SKIP() << "built without OpenCV";
  int checked = 0;
  for (const auto& e : augment_index().at("entries")) {
    if (e.at("kind") != "crop") continue;
    const std::string name = e.at("tensor").get<std::string>();
    SCOPED_TRACE(name);
    const ImageU8 ours = resized_crop(source_image(e.at("image").get<std::string>()),
                                      box_from_json(e.at("box")), e.at("size").get<int>());
    expect_same_image(name, ours, fixture_image(name));
    ++checked;
  }
  EXPECT_EQ(checked, kCropEntries);
}

TEST(AugmentCrop, HflipBitExact) {
  BLIP_REQUIRE_FIXTURES();
  int checked = 0;
  for (const auto& e : augment_index().at("entries")) {
    if (e.at("kind") != "crop_hflip") continue;
    const std::string name = e.at("tensor").get<std::string>();
    const ImageU8 input = fixture_image(e.at("input").get<std::string>());
    const ImageU8 flipped = hflip(input);
    expect_same_image(name, flipped, fixture_image(name));
    expect_same_image(name + " twice", hflip(flipped), input);
    ++checked;
  }
  EXPECT_EQ(checked, kHflipEntries);
}

// ---------------------------------------------------------------------------------------------
// RandomAugment ops

// Interior values whose float32 Sharpness blend truncates outside [0, 255] (README:
// blend_below_0 / blend_above_255), computed from our own degenerate image (factor 0).
std::pair<int, int> sharpness_blend_out_of_range(const ImageU8& in, double factor) {
  const ImageU8 deg = sharpness(in, 0.0);
  const float f = static_cast<float>(factor);
  int below = 0, above = 0;
  for (int y = 1; y + 1 < in.height; ++y)
    for (int x = 1; x + 1 < in.width; ++x)
      for (int c = 0; c < 3; ++c) {
        const float d = deg.row(y)[x * 3 + c];
        volatile float prod = f * (static_cast<float>(in.row(y)[x * 3 + c]) - d);
        const float v = d + prod;
        // The fixture counts values whose truncation leaves 0..255 (those that wrap):
        // -0.7 truncates to 0 and is not counted.
        below += std::trunc(v) < 0.0f;
        above += std::trunc(v) > 255.0f;
      }
  return {below, above};
}

TEST(AugmentOps, EveryOpBitExact) {
  BLIP_REQUIRE_FIXTURES();
  int checked = 0, warps = 0, wrapped_sharpness = 0, lowc = 0;
  std::map<std::string, int> per_op;
  for (const auto& e : augment_index().at("entries")) {
    if (e.at("kind") != "op") continue;
    const std::string name = e.at("tensor").get<std::string>();
    SCOPED_TRACE(name);
    const AugmentOp op = augment_op_from_name(e.at("op").get<std::string>());
    const ImageU8 input = fixture_image(e.at("input").get<std::string>());
    const AugmentArgs args = args_from_json(e.at("args"));
    // The recorded args are arg_dict's at that level and sign.
    if (!e.at("level").is_null()) {
      const bool negate = !e.at("sign").is_null() && e.at("sign").get<int>() < 0;
      const AugmentArgs expected = augment_args(op, e.at("level").get<int>(), negate);
      EXPECT_EQ(expected.value, args.value);
      EXPECT_EQ(expected.fill, args.fill);
    } else {
      ++lowc;
    }
    if (augment_op_is_warp(op)) {
      const auto m = augment_warp_matrix(op, args.value, input.width, input.height);
      const auto& wm = e.at("warp_matrix");
      for (int i = 0; i < 6; ++i) EXPECT_EQ(m[i], wm.at(i / 3).at(i % 3).get<double>()) << i;
      ++warps;
      if (!have_image_decoder()) {
        test::expect_error([&] { apply_augment_op(input, op, args); }, {"OpenCV"});
        ++checked;
        continue;
      }
    }
    if (op == AugmentOp::AutoContrast) {
      // The input's channel range, as recorded.
      for (int c = 0; c < 3; ++c) {
        int lo = 255, hi = 0;
        for (std::size_t i = c; i < input.pixels.size(); i += 3) {
          lo = std::min<int>(lo, input.pixels[i]);
          hi = std::max<int>(hi, input.pixels[i]);
        }
        EXPECT_EQ(lo, e.at("channel_min").at(c).get<int>());
        EXPECT_EQ(hi, e.at("channel_max").at(c).get<int>());
      }
    }
    if (op == AugmentOp::Sharpness && e.contains("blend_below_0")) {
      const auto [below, above] = sharpness_blend_out_of_range(input, args.value);
      EXPECT_EQ(below, e.at("blend_below_0").get<int>());
      EXPECT_EQ(above, e.at("blend_above_255").get<int>());
      if (below + above > 0) ++wrapped_sharpness;
    }
    const ImageU8 expected = fixture_image(name);
    const ImageU8 ours = apply_augment_op(input, op, args);
    expect_same_image(name, ours, expected);
    EXPECT_EQ(compare_images(ours, input).count == 0, e.at("identical_to_input").get<bool>());
    ++per_op[augment_op_name(op)];
    ++checked;
  }
  EXPECT_EQ(checked, kOpEntries);
  EXPECT_EQ(warps, 60);             // 5 ops x 2 levels x 2 signs x 3 images
  EXPECT_EQ(lowc, 12);              // AutoContrast and Equalize on lowc_a / lowc_b
  EXPECT_EQ(wrapped_sharpness, 3);  // Sharpness L10 wraps on every image
  if (have_image_decoder()) {
    EXPECT_EQ(per_op.size(), static_cast<std::size_t>(kAugmentOpCount));
    EXPECT_EQ(per_op["AutoContrast"], 12);
    EXPECT_EQ(per_op["Equalize"], 12);
    EXPECT_EQ(per_op["Brightness"], 9);
  }
}

TEST(AugmentOps, LowContrastInputsAreDerivedAsDocumented) {
  BLIP_REQUIRE_FIXTURES();
  int checked = 0;
  for (const auto& e : augment_index().at("entries")) {
    if (e.at("kind") != "op_input") continue;
    const std::string name = e.at("tensor").get<std::string>();
    const ImageU8 crop0 = fixture_image(e.at("input").get<std::string>());
    const bool b = name.find("lowc_b") != std::string::npos;
    ImageU8 derived = crop0;
    for (auto& p : derived.pixels) p = static_cast<std::uint8_t>(p / 2 + (b ? 64 : 0));
    expect_same_image(name, derived, fixture_image(name));
    ++checked;
  }
  EXPECT_EQ(checked, 2 * kImages);
}

// ---------------------------------------------------------------------------------------------
// Whole runs

TrainTransformTrace trace_from_decisions(const json& d) {
  TrainTransformTrace t;
  t.box = box_from_json(d.at("box"));
  t.crop_fallback = d.at("box_fallback").get<bool>();
  t.flipped = d.at("flip").get<bool>();
  for (const auto& o : d.at("ops")) {
    AugmentStep s;
    s.op = augment_op_from_name(o.at("op").get<std::string>());
    s.level = o.at("level").get<int>();
    s.fire_draw = o.at("fire_draw").get<double>();
    s.fired = o.at("fired").get<bool>();
    if (o.contains("sign_draw")) {
      s.has_sign_draw = true;
      s.sign_draw = o.at("sign_draw").get<double>();
    }
    s.args = args_from_json(o.at("args"));
    t.ops.push_back(s);
  }
  return t;
}

TEST(AugmentPipeline, BlipRunsReplayBitExact) {
  BLIP_REQUIRE_FIXTURES();
  if (skip_without_decoder()) GTEST_SKIP() << "built without OpenCV";
  const json& pipes = augment_index().at("pipelines");
  ASSERT_EQ(pipes.size(), static_cast<std::size_t>(kPipelines));
  const auto augs = blip_train_augment_ops();
  int stages = 0;
  for (const auto& p : pipes) {
    const std::string pname = "pipe" + std::to_string(p.at("pipeline").get<int>());
    SCOPED_TRACE(pname);
    const json& d = p.at("decisions");
    const TrainTransformTrace trace = trace_from_decisions(d);
    // The recorded decisions follow BLIP's rules.
    EXPECT_EQ(trace.flipped, d.at("flip_draw").get<double>() < kHflipProbability);
    ASSERT_EQ(trace.ops.size(), 2u);
    for (std::size_t k = 0; k < trace.ops.size(); ++k) {
      const AugmentStep& s = trace.ops[k];
      EXPECT_EQ(augs.at(d.at("op_choice_index").at(k).get<std::size_t>()), s.op);
      EXPECT_EQ(s.fired, !(s.fire_draw > kAugmentOpProbability));
      EXPECT_EQ(s.has_sign_draw, s.fired && augment_op_is_signed(s.op));
      const AugmentArgs expected =
          augment_args(s.op, s.level, s.has_sign_draw && augment_sign_negates(s.op, s.sign_draw));
      EXPECT_EQ(expected.value, s.args.value);
    }

    TrainTransformConfig cfg;
    cfg.image_size = p.at("size").get<int>();
    ASSERT_EQ(cfg.image_size, kTinySize);
    const ImageU8& src = source_image(p.at("image").get<std::string>());
    const json& names = p.at("tensors");

    // Stage by stage.
    ImageU8 img = resized_crop(src, trace.box, static_cast<int>(cfg.image_size));
    expect_same_image(pname + ".crop", img, fixture_image(names.at("crop").get<std::string>()));
    if (trace.flipped) img = hflip(img);
    expect_same_image(pname + ".augment_input", img,
                      fixture_image(names.at("augment_input").get<std::string>()));
    stages += 2;
    for (std::size_t k = 0; k < trace.ops.size(); ++k) {
      if (!trace.ops[k].fired) continue;
      img = apply_augment_op(img, trace.ops[k].op, trace.ops[k].args);
      const std::string stage = "after_op" + std::to_string(k);
      expect_same_image(pname + "." + stage, img,
                        fixture_image(names.at(stage).get<std::string>()));
      ++stages;
    }
    expect_same_image(pname + ".augmented", img,
                      fixture_image(names.at("augmented").get<std::string>()));

    // The whole replay, to the float tensor.
    const at::Tensor expected = find_tensor(augment_tensors(), names.at("tensor").get<std::string>());
    const at::Tensor ours = train_transform_replay(src, cfg, trace);
    test::expect_tensor_equal(pname + ".tensor", ours, expected);
    expect_same_image(pname + ".replay_image", train_transform_replay_image(src, cfg, trace), img);
    stages += 2;
  }
  EXPECT_EQ(stages, kPipelines * 6);  // crop, augment_input, 2 ops, augmented, tensor
}

// ---------------------------------------------------------------------------------------------
// Decoding

TEST(AugmentPipeline, LoadTrainImageMatchesDecodedPath) {
  BLIP_REQUIRE_FIXTURES();
  if (skip_without_decoder()) GTEST_SKIP() << "built without OpenCV";
  const std::string path = test::blip_ref_dir() + "/images/v3_rgba_97x211.png";
  TrainTransformConfig cfg;
  cfg.image_size = 48;
  const at::Tensor a = load_train_image_tensor(path, cfg, 31);
  ASSERT_EQ(a.sizes(), (at::IntArrayRef{3, 48, 48}));
  EXPECT_TRUE(at::equal(a, train_transform(decode_image_file(path), cfg, 31)));
  test::expect_error([&] { load_train_image_tensor(path + ".missing", cfg, 31); }, {".missing"});
}

}  // namespace
}  // namespace blip::image