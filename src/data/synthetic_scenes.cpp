#include "blip/data/synthetic_scenes.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <system_error>

#include "blip/error.h"
#include "blip/io/atomic_write.h"

#ifdef BLIP_WITH_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace blip::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

// ---- attribute tables (each value's words never name another value) ----
struct ShapeWords {
  const char* singular;
  const char* plural;
};
constexpr std::array<ShapeWords, 5> kShapes{{{"circle", "circles"},
                                             {"square", "squares"},
                                             {"triangle", "triangles"},
                                             {"star", "stars"},
                                             {"cross", "crosses"}}};
struct Colour {
  const char* name;
  std::array<int, 3> rgb;
};
constexpr std::array<Colour, 6> kColours{{{"red", {220, 40, 40}},
                                          {"green", {40, 185, 60}},
                                          {"blue", {50, 95, 235}},
                                          {"yellow", {235, 220, 45}},
                                          {"purple", {155, 60, 205}},
                                          {"orange", {245, 140, 30}}}};
struct Background {
  const char* name;
  std::vector<const char*> words;
  int level;  // grey level
};
const std::array<Background, 3> kBackgrounds{{{"black", {"black", "dark"}, 18},
                                              {"grey", {"grey", "gray"}, 118},
                                              {"white", {"white", "light"}, 235}}};
constexpr int kSizes = 2;
const std::vector<std::vector<const char*>> kSizeWords{{"small", "little"}, {"large", "big"}};
const std::vector<std::vector<const char*>> kCountWords{
    {"a", "one", "a single"}, {"two", "a pair of"}, {"three"}};

// Caption templates: {np} noun phrase ("two large red circles"), {sz} the same with the size as
// "of <size> size", {bg} background word, {be} is/are.
const std::vector<const char*> kTemplates{
    "{np} on a {bg} background",
    "a picture of {np} on {bg}",
    "{bg} background with {np}",
    "there {be} {np} on a {bg} background",
    "{sz} on a {bg} background",
    "on a {bg} background you can see {np}",
    "{np} against a {bg} background",
    "an image of {np} drawn on {bg}",
};

// Drawing proportions, as fractions of the image side. Large is more than twice small, so the
// training crop's zoom (up to ~1.6x) never makes a small shape look large.
constexpr double kRadiusSmall = 0.075;
constexpr double kRadiusLarge = 0.16;
constexpr double kRadiusJitter = 0.08;   // relative
constexpr double kExtent = 1.2;          // every shape lies within kExtent radii of its centre
constexpr double kRegion = 0.05;         // shapes lie within [kRegion, 1 - kRegion] of each side
constexpr double kSpacing = 2.7;         // centre distance of two shapes, in radii (a clear gap)
constexpr int kPlacementTries = 100;
constexpr double kMaxTiltDeg = 12.0;     // squares, triangles, stars and crosses are tilted a little
constexpr int kColourJitter = 20;
constexpr int kBackgroundJitter = 10;    // per image
constexpr int kBackgroundNoise = 8;      // per pixel
constexpr int kMinImageSize = 32;

// Stream tags: each split and each use gets its own random stream.
constexpr std::uint64_t kOrderStream = 0x6f72646572ULL;
constexpr std::uint64_t kCaptionStream = 0x63617074ULL;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
std::uint64_t mix(std::uint64_t a, std::uint64_t b) { return splitmix64(a ^ splitmix64(b)); }

// A small portable generator (the standard distributions differ between libraries).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return state_ = splitmix64(state_); }
  std::int64_t below(std::int64_t n) { return static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(n)); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[static_cast<std::size_t>(below(static_cast<std::int64_t>(v.size())))]; }

 private:
  std::uint64_t state_;
};

std::vector<std::int64_t> shuffled(std::int64_t n, Rng& rng) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  for (std::int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  return order;
}

std::uint64_t split_tag(const std::string& split) {
  if (split == "train") return 1;
  if (split == "val") return 2;
  if (split == "test") return 3;
  fail("synthetic scenes split '" + split + "'", "expected train, val or test");
}

std::string replace_all(std::string s, const std::string& key, const std::string& value) {
  for (std::size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + value.size()))
    s.replace(at, key.size(), value);
  return s;
}

std::string shape_word(const SceneSpec& s) {
  return s.count == 1 ? kShapes[s.shape].singular : kShapes[s.shape].plural;
}

std::string caption(const SceneSpec& s, const char* tmpl, Rng& rng) {
  const std::string count = rng.pick(kCountWords[s.count - 1]);
  const std::string size = rng.pick(kSizeWords[s.size]);
  const std::string colour = kColours[s.colour].name;
  const std::string np = count + " " + size + " " + colour + " " + shape_word(s);
  const std::string sz = count + " " + colour + " " + shape_word(s) + " of " + size + " size";
  std::string out = replace_all(tmpl, "{np}", np);
  out = replace_all(out, "{sz}", sz);
  out = replace_all(out, "{bg}", rng.pick(kBackgrounds[s.background].words));
  // "there is a pair of ...", "there are two ..."
  return replace_all(out, "{be}", count.rfind("a ", 0) == 0 || count == "a" || count == "one" ? "is" : "are");
}

std::vector<std::string> captions_for(const SceneSpec& spec, int n, std::uint64_t image_seed) {
  Rng rng(mix(image_seed, kCaptionStream));
  const std::vector<std::int64_t> order = shuffled(static_cast<std::int64_t>(kTemplates.size()), rng);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(caption(spec, kTemplates[order[i]], rng));
  return out;
}

void check_options(const SyntheticScenesOptions& o) {
  const std::string what = "synthetic scenes";
  if (o.train < 0 || o.val < 0 || o.test < 0) fail(what, "split sizes must not be negative");
  if (o.image_size < kMinImageSize)
    fail(what, "image size " + std::to_string(o.image_size) + " is below the minimum of " +
                   std::to_string(kMinImageSize) + " pixels");
  if (o.captions_per_image < 1 || o.captions_per_image > scene_caption_templates())
    fail(what, "captions per image must lie in [1, " + std::to_string(scene_caption_templates()) + "]");
}

std::string image_name(const std::string& split, std::int64_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "%06lld.png", static_cast<long long>(index));
  return "images/" + split + "/" + name;
}

#ifdef BLIP_WITH_OPENCV

std::vector<cv::Point> to_fixed(const std::vector<cv::Point2d>& pts, int shift) {
  std::vector<cv::Point> out;
  const double scale = static_cast<double>(1 << shift);
  for (const auto& p : pts)
    out.emplace_back(static_cast<int>(std::lround(p.x * scale)), static_cast<int>(std::lround(p.y * scale)));
  return out;
}

// Points at `radii` (cycled) around (cx, cy), starting straight up, turned by `tilt` radians.
std::vector<cv::Point2d> polygon(double cx, double cy, int corners, const std::vector<double>& radii,
                                 double tilt) {
  std::vector<cv::Point2d> pts;
  for (int i = 0; i < corners; ++i) {
    const double a = tilt - kPi / 2 + 2 * kPi * i / corners;
    const double r = radii[static_cast<std::size_t>(i) % radii.size()];
    pts.emplace_back(cx + r * std::cos(a), cy + r * std::sin(a));
  }
  return pts;
}

void draw_shape(cv::Mat& img, int shape, double cx, double cy, double r, double tilt, const cv::Scalar& colour) {
  constexpr int kShift = 4;  // sub-pixel coordinates
  std::vector<cv::Point2d> pts;
  switch (shape) {
    case 0:
      cv::circle(img, cv::Point(static_cast<int>(std::lround(cx * 16)), static_cast<int>(std::lround(cy * 16))),
                 static_cast<int>(std::lround(r * 16)), colour, cv::FILLED, cv::LINE_AA, kShift);
      return;
    case 1: pts = polygon(cx, cy, 4, {r * kExtent}, tilt + kPi / 4); break;           // square
    case 2: pts = polygon(cx, cy, 3, {r * kExtent}, tilt); break;                     // triangle
    case 3: pts = polygon(cx, cy, 10, {r * kExtent, r * 0.5}, tilt); break;           // star
    default: {                                                                         // cross
      const double w = r * 0.4, l = r * 1.1;  // corner at 1.17 r
      const double c = std::cos(tilt), s = std::sin(tilt);
      const std::array<std::array<double, 2>, 12> outline{{{-w, -l}, {w, -l}, {w, -w}, {l, -w}, {l, w}, {w, w},
                                                            {w, l}, {-w, l}, {-w, w}, {-l, w}, {-l, -w}, {-w, -w}}};
      for (const auto& p : outline) pts.emplace_back(cx + c * p[0] - s * p[1], cy + s * p[0] + c * p[1]);
    }
  }
  const std::vector<std::vector<cv::Point>> polys{to_fixed(pts, kShift)};
  cv::fillPoly(img, polys, colour, cv::LINE_AA, kShift);
}

#endif  // BLIP_WITH_OPENCV

}  // namespace

std::int64_t scene_combinations() {
  return static_cast<std::int64_t>(kShapes.size() * kColours.size() * kBackgrounds.size()) * kSizes *
         kSceneMaxCount;
}

std::int64_t scene_tuples() { return scene_combinations() / static_cast<std::int64_t>(kShapes.size()); }

SceneSpec scene_from_index(std::int64_t index) {
  if (index < 0 || index >= scene_combinations())
    fail("scene index " + std::to_string(index), "expected [0, " + std::to_string(scene_combinations()) + ")");
  SceneSpec s;
  s.background = static_cast<int>(index % static_cast<std::int64_t>(kBackgrounds.size()));
  index /= static_cast<std::int64_t>(kBackgrounds.size());
  s.count = static_cast<int>(index % kSceneMaxCount) + 1;
  index /= kSceneMaxCount;
  s.size = static_cast<int>(index % kSizes);
  index /= kSizes;
  s.colour = static_cast<int>(index % static_cast<std::int64_t>(kColours.size()));
  s.shape = static_cast<int>(index / static_cast<std::int64_t>(kColours.size()));
  return s;
}

std::string scene_name(const SceneSpec& s) {
  static const std::array<const char*, kSceneMaxCount> counts{"a", "two", "three"};
  return std::string(counts[s.count - 1]) + " " + kSizeWords[s.size][0] + " " + kColours[s.colour].name + " " +
         shape_word(s) + " on a " + kBackgrounds[s.background].name + " background";
}

int scene_caption_templates() { return static_cast<int>(kTemplates.size()); }

std::vector<SyntheticScene> make_scene_split(const std::string& split, std::int64_t count,
                                             const SyntheticScenesOptions& options) {
  check_options(options);
  const std::uint64_t tag = split_tag(split);
  const std::int64_t combos = scene_combinations();
  if (count < 0) fail("synthetic scenes " + split, "the split size must not be negative");
  if (split != "train" && count > combos)
    fail("synthetic scenes " + split,
         std::to_string(count) + " images requested, but only " + std::to_string(combos) +
             " attribute combinations exist (each " + split + " image needs its own)");
  const std::uint64_t split_seed = mix(options.seed, tag);
  // Val and test: the images first differ in colour, size, count or background (the attributes
  // a small model picks up first), with a random shape each; once every such tuple is used, the
  // next pass gives each tuple the next shape, so every image still has its own combination.
  const std::int64_t shapes = static_cast<std::int64_t>(kShapes.size());
  const std::int64_t tuples = scene_tuples();  // scene index = shape * tuples + tuple
  Rng order_rng(mix(split_seed, kOrderStream));
  const std::vector<std::int64_t> tuple_order = shuffled(tuples, order_rng);
  std::vector<std::int64_t> first_shape;
  for (std::int64_t t = 0; t < tuples; ++t) first_shape.push_back(order_rng.below(shapes));
  std::vector<SyntheticScene> scenes;
  std::vector<std::int64_t> order;
  for (std::int64_t i = 0; i < count; ++i) {
    std::int64_t index = 0;
    if (split == "train") {
      // A fresh shuffled pass over every combination each time: all are seen equally often.
      if (i % combos == 0) {
        Rng rng(mix(split_seed, kOrderStream + 1 + static_cast<std::uint64_t>(i / combos)));
        order = shuffled(combos, rng);
      }
      index = order[static_cast<std::size_t>(i % combos)];
    } else {
      const std::int64_t tuple = tuple_order[static_cast<std::size_t>(i % tuples)];
      index = ((first_shape[static_cast<std::size_t>(tuple)] + i / tuples) % shapes) * tuples + tuple;
    }
    SyntheticScene s;
    s.image = image_name(split, i);
    s.spec = scene_from_index(index);
    s.image_seed = mix(split_seed, static_cast<std::uint64_t>(i));
    s.captions = captions_for(s.spec, options.captions_per_image, s.image_seed);
    scenes.push_back(std::move(s));
  }
  return scenes;
}

image::ImageU8 render_scene(const SceneSpec& spec, int image_size, std::uint64_t image_seed) {
#ifdef BLIP_WITH_OPENCV
  if (image_size < kMinImageSize)
    fail("synthetic scene", "image size " + std::to_string(image_size) + " is below the minimum of " +
                                std::to_string(kMinImageSize) + " pixels");
  if (spec.shape < 0 || spec.shape >= static_cast<int>(kShapes.size()) || spec.colour < 0 ||
      spec.colour >= static_cast<int>(kColours.size()) || spec.size < 0 || spec.size >= kSizes ||
      spec.count < 1 || spec.count > kSceneMaxCount || spec.background < 0 ||
      spec.background >= static_cast<int>(kBackgrounds.size()))
    fail("synthetic scene", "attribute index out of range");
  Rng rng(image_seed);
  const double side = image_size;

  // Background: one grey level per image plus per-pixel noise (a flat field would let
  // RandomAugment's AutoContrast stretch a channel of nearly one value to the full range).
  const int level = kBackgrounds[spec.background].level +
                    static_cast<int>(rng.below(2 * kBackgroundJitter + 1)) - kBackgroundJitter;
  cv::Mat img(image_size, image_size, CV_8UC3);  // channels in RGB order
  for (int y = 0; y < image_size; ++y) {
    std::uint8_t* row = img.ptr<std::uint8_t>(y);
    for (int i = 0; i < image_size * 3; ++i)
      row[i] = static_cast<std::uint8_t>(
          std::clamp(level + static_cast<int>(rng.below(2 * kBackgroundNoise + 1)) - kBackgroundNoise, 0, 255));
  }

  cv::Scalar colour;
  for (int c = 0; c < 3; ++c) {
    const int v = kColours[spec.colour].rgb[c] + static_cast<int>(rng.below(2 * kColourJitter + 1)) - kColourJitter;
    colour[c] = std::clamp(v, 0, 255);
  }
  const double base = side * (spec.size == 0 ? kRadiusSmall : kRadiusLarge);
  std::vector<double> radii;
  for (int i = 0; i < spec.count; ++i) radii.push_back(base * rng.uniform(1 - kRadiusJitter, 1 + kRadiusJitter));
  // Centres: uniform within the central region, each redrawn until it keeps clear of the others;
  // when a shape finds no room, all are drawn again. The fallback (rarely needed) is a regular
  // polygon around the centre with sides of the spacing, which always fits.
  std::vector<cv::Point2d> centres;
  for (int round = 0; round < kPlacementTries && static_cast<int>(centres.size()) < spec.count; ++round) {
    centres.clear();
    for (int i = 0; i < spec.count; ++i) {
      const double lo = side * kRegion + kExtent * radii[i], hi = side - lo;
      for (int attempt = 0; attempt < kPlacementTries; ++attempt) {
        const cv::Point2d c(rng.uniform(lo, hi), rng.uniform(lo, hi));
        bool clear = true;
        for (std::size_t j = 0; j < centres.size(); ++j)
          if (cv::norm(c - centres[j]) < kSpacing * std::max(radii[i], radii[j])) clear = false;
        if (clear) {
          centres.push_back(c);
          break;
        }
      }
      if (static_cast<int>(centres.size()) <= i) break;
    }
  }
  if (static_cast<int>(centres.size()) < spec.count) {
    centres.clear();
    const double r_max = *std::max_element(radii.begin(), radii.end());
    const double around = spec.count == 1 ? 0.0 : kSpacing * r_max / (2 * std::sin(kPi / spec.count));
    for (int i = 0; i < spec.count; ++i) {
      const double a = -kPi / 2 + 2 * kPi * i / spec.count;
      centres.emplace_back(side / 2 + around * std::cos(a), side / 2 + around * std::sin(a));
    }
  }
  for (int i = 0; i < spec.count; ++i) {
    const double tilt = rng.uniform(-kMaxTiltDeg, kMaxTiltDeg) * kPi / 180;
    draw_shape(img, spec.shape, centres[i].x, centres[i].y, radii[i], tilt, colour);
  }
  image::ImageU8 out(image_size, image_size);
  for (int y = 0; y < image_size; ++y) std::copy_n(img.ptr<std::uint8_t>(y), image_size * 3, out.row(y));
  return out;
#else
  (void)spec;
  (void)image_size;
  (void)image_seed;
  fail("synthetic scene", "libblip was built without OpenCV (BLIP_WITH_OPENCV), which draws the scenes");
#endif
}

SyntheticScenesSummary write_synthetic_scenes(const std::string& out_dir, const SyntheticScenesOptions& options) {
  namespace fs = std::filesystem;
  check_options(options);
#ifndef BLIP_WITH_OPENCV
  fail(out_dir, "libblip was built without OpenCV (BLIP_WITH_OPENCV), which draws and writes the scenes");
#else
  const fs::path root(out_dir);
  SyntheticScenesSummary summary;
  std::string captions_txt;
  for (const std::string split : {"train", "val", "test"}) {
    const std::int64_t n = split == "train" ? options.train : split == "val" ? options.val : options.test;
    const std::vector<SyntheticScene> scenes = make_scene_split(split, n, options);
    std::error_code ec;
    fs::create_directories(root / "images" / split, ec);
    if (ec) fail((root / "images" / split).string(), "cannot create folder: " + ec.message());
    nlohmann::json ann = nlohmann::json::array();
    std::int64_t captions = 0;
    for (std::size_t i = 0; i < scenes.size(); ++i) {
      const SyntheticScene& s = scenes[i];
      const image::ImageU8 rgb = render_scene(s.spec, options.image_size, s.image_seed);
      cv::Mat bgr(rgb.height, rgb.width, CV_8UC3);
      for (int y = 0; y < rgb.height; ++y) {
        const std::uint8_t* src = rgb.row(y);
        std::uint8_t* dst = bgr.ptr<std::uint8_t>(y);
        for (int x = 0; x < rgb.width; ++x)
          for (int c = 0; c < 3; ++c) dst[x * 3 + c] = src[x * 3 + 2 - c];
      }
      const std::string path = (root / s.image).string();
      bool ok = false;
      try {
        ok = cv::imwrite(path, bgr);
      } catch (const cv::Exception& e) {
        fail(path, std::string("cannot write PNG: ") + e.what());
      }
      if (!ok) fail(path, "cannot write PNG");
      if (split == "train") {
        for (const auto& c : s.captions) {
          ann.push_back({{"image", s.image}, {"caption", c}, {"image_id", split + "_" + std::to_string(i)}});
          captions_txt += c + "\n";
        }
      } else {
        ann.push_back({{"image", s.image}, {"caption", s.captions}});
      }
      captions += static_cast<std::int64_t>(s.captions.size());
    }
    fs::create_directories(root / "annotation", ec);
    if (ec) fail((root / "annotation").string(), "cannot create folder: " + ec.message());
    io::write_file_atomic((root / "annotation" / ("retrieval_" + split + ".json")).string(), ann.dump());
    const auto images = static_cast<std::int64_t>(scenes.size());
    if (split == "train") summary.train_images = images, summary.train_captions = captions;
    if (split == "val") summary.val_images = images, summary.val_captions = captions;
    if (split == "test") summary.test_images = images, summary.test_captions = captions;
  }
  io::write_file_atomic((root / "captions.txt").string(), captions_txt);
  return summary;
#endif
}

}  // namespace blip::data
