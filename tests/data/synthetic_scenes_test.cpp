// The synthetic demo dataset: deterministic, distinguishable val/test scenes, drawings that show
// what the captions say, and files that BLIP's dataset readers (this project's) accept.
#include <gtest/gtest.h>

#include "blip/data/retrieval_dataset.h"
#include "blip/data/synthetic_scenes.h"
#include "blip/data/train_dataset.h"
#include "blip/image/decode.h"
#include "blip/text/pre_caption.h"
#include "common/expect_error.h"
#include "common/fixtures.h"
#include "common/run_command.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace {

using namespace blip::data;
namespace fs = std::filesystem;

SyntheticScenesOptions small_options() {
  SyntheticScenesOptions o;
  o.train = 12;
  o.val = 5;
  o.test = 7;
  o.image_size = 48;
  o.seed = 7;
  return o;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Pixels that differ from the background, grouped into 4-connected blobs.
struct Blobs {
  int count = 0;
  int pixels = 0;
};
Blobs find_blobs(const blip::image::ImageU8& img) {
  // The background is grey (R = G = B up to noise); shapes are saturated or far from its level.
  const auto at = [&](int x, int y, int c) { return int(img.row(y)[x * 3 + c]); };
  std::vector<int> level;
  for (int x = 0; x < img.width; ++x) level.push_back(at(x, 0, 1));
  std::sort(level.begin(), level.end());
  const int bg = level[level.size() / 2];
  std::vector<char> fg(static_cast<size_t>(img.width * img.height));
  Blobs b;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      int far = 0;  // L1 colour distance
      for (int c = 0; c < 3; ++c) far += std::abs(at(x, y, c) - bg);
      fg[y * img.width + x] = far > 100;
      b.pixels += far > 100;
    }
  std::vector<char> seen(fg.size());
  for (int start = 0; start < static_cast<int>(fg.size()); ++start) {
    if (!fg[start] || seen[start]) continue;
    ++b.count;
    std::vector<int> stack{start};
    seen[start] = 1;
    while (!stack.empty()) {
      const int p = stack.back();
      stack.pop_back();
      const int x = p % img.width, y = p / img.width;
      const int next[4][2] = {{x + 1, y}, {x - 1, y}, {x, y + 1}, {x, y - 1}};
      for (const auto& q : next) {
        if (q[0] < 0 || q[1] < 0 || q[0] >= img.width || q[1] >= img.height) continue;
        const int i = q[1] * img.width + q[0];
        if (fg[i] && !seen[i]) seen[i] = 1, stack.push_back(i);
      }
    }
  }
  return b;
}

TEST(SyntheticScenes, CombinationsRoundTripAndAreDistinct) {
  const std::int64_t n = scene_combinations();
  ASSERT_EQ(n, 5 * 6 * 2 * 3 * 3);
  std::set<std::string> names;
  for (std::int64_t i = 0; i < n; ++i) names.insert(scene_name(scene_from_index(i)));
  EXPECT_EQ(static_cast<std::int64_t>(names.size()), n);
  EXPECT_EQ(scene_name(scene_from_index(0)), "a small red circle on a black background");
  blip::test::expect_error([&] { scene_from_index(n); }, {"scene index", "expected [0, 540)"});
}

TEST(SyntheticScenes, SplitsAreDeterministicAndIndependent) {
  SyntheticScenesOptions o = small_options();
  const auto a = make_scene_split("test", 50, o);
  const auto b = make_scene_split("test", 50, o);
  ASSERT_EQ(a.size(), 50u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].image, b[i].image);
    EXPECT_EQ(a[i].spec, b[i].spec);
    EXPECT_EQ(a[i].captions, b[i].captions);
    EXPECT_EQ(a[i].image_seed, b[i].image_seed);
  }
  EXPECT_EQ(a[3].image, "images/test/000003.png");
  // A split does not depend on the other splits' sizes, but does on the seed and its name.
  o.train = 999;
  EXPECT_EQ(make_scene_split("test", 50, o)[10].captions, a[10].captions);
  o.seed = 8;
  const auto c = make_scene_split("test", 50, o);
  int same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i].captions == c[i].captions;
  EXPECT_LT(same, 5);
  const auto v = make_scene_split("val", 50, small_options());
  same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i].spec == v[i].spec;
  EXPECT_LT(same, 5);

  // Drawing: same seed, same pixels; another seed, other pixels.
  const auto img1 = render_scene(a[0].spec, 48, a[0].image_seed);
  const auto img2 = render_scene(a[0].spec, 48, a[0].image_seed);
  const auto img3 = render_scene(a[0].spec, 48, a[1].image_seed);
  EXPECT_EQ(img1.width, 48);
  EXPECT_EQ(img1.height, 48);
  EXPECT_EQ(img1.pixels, img2.pixels);
  EXPECT_NE(img1.pixels, img3.pixels);
}

TEST(SyntheticScenes, TestCaptionsIdentifyTheirImage) {
  const SyntheticScenesOptions o = small_options();
  const std::int64_t n = scene_combinations();
  const auto scenes = make_scene_split("test", n, o);
  ASSERT_EQ(static_cast<std::int64_t>(scenes.size()), n);
  std::set<std::int64_t> specs;
  std::map<std::string, size_t> owner;  // caption -> image
  size_t captions = 0;
  for (size_t i = 0; i < scenes.size(); ++i) {
    const SceneSpec& s = scenes[i].spec;
    specs.insert(((((s.shape * 6 + s.colour) * 2 + s.size) * 3 + (s.count - 1)) * 3) + s.background);
    ASSERT_EQ(scenes[i].captions.size(), 5u);
    const std::set<std::string> own(scenes[i].captions.begin(), scenes[i].captions.end());
    EXPECT_EQ(own.size(), 5u) << "an image has a repeated caption";
    for (const auto& c : scenes[i].captions) {
      ++captions;
      EXPECT_EQ(blip::text::pre_caption(c, kRetrievalMaxWords), c) << "caption not in pre_caption form";
      const auto [it, inserted] = owner.emplace(c, i);
      EXPECT_TRUE(inserted || it->second == i) << "'" << c << "' describes images " << it->second << " and " << i;
    }
  }
  EXPECT_EQ(static_cast<std::int64_t>(specs.size()), n);
  EXPECT_EQ(owner.size(), captions);
  // The first scene_tuples() differ in more than shape.
  ASSERT_EQ(scene_tuples(), 6 * 2 * 3 * 3);
  std::set<std::int64_t> tuples;
  for (std::int64_t i = 0; i < scene_tuples(); ++i) {
    const SceneSpec& s = scenes[static_cast<size_t>(i)].spec;
    tuples.insert((((s.colour * 2 + s.size) * 3 + (s.count - 1)) * 3) + s.background);
  }
  EXPECT_EQ(static_cast<std::int64_t>(tuples.size()), scene_tuples());
  std::set<int> shapes_used;
  for (std::int64_t i = 0; i < scene_tuples(); ++i) shapes_used.insert(scenes[static_cast<size_t>(i)].spec.shape);
  EXPECT_EQ(shapes_used.size(), 5u);
  blip::test::expect_error([&] { make_scene_split("test", n + 1, o); },
                           {"test", std::to_string(n + 1) + " images requested", "540"});
  blip::test::expect_error([&] { make_scene_split("dev", 1, o); }, {"dev", "expected train, val or test"});
  // Train may be larger: it cycles through every combination evenly.
  const auto train = make_scene_split("train", 2 * n, o);
  std::map<std::string, int> uses;
  for (const auto& s : train) ++uses[scene_name(s.spec)];
  ASSERT_EQ(static_cast<std::int64_t>(uses.size()), n);
  for (const auto& [name, k] : uses) EXPECT_EQ(k, 2) << name;
}

TEST(SyntheticScenes, DrawingsShowTheCaptionedAttributes) {
  if (!blip::image::have_image_decoder()) GTEST_SKIP() << "built without OpenCV";
  // Every combination: as many separate shapes as the caption counts, large ones bigger than
  // small ones, and the background of the named darkness.
  const std::int64_t n = scene_combinations();
  int checked = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    SceneSpec s = scene_from_index(i);
    for (std::uint64_t seed : {1u, 2u, 3u}) {
      const auto img = render_scene(s, 64, seed * 1000 + static_cast<std::uint64_t>(i));
      const Blobs blobs = find_blobs(img);
      EXPECT_EQ(blobs.count, s.count) << scene_name(s) << " seed " << seed;
      SceneSpec other = s;
      other.size = 1 - s.size;
      const Blobs alt = find_blobs(render_scene(other, 64, seed * 1000 + static_cast<std::uint64_t>(i)));
      const Blobs& small = s.size == 0 ? blobs : alt;
      const Blobs& large = s.size == 0 ? alt : blobs;
      EXPECT_GT(large.pixels, 3 * small.pixels) << scene_name(s);
      int corner = 0;
      for (int c = 0; c < 3; ++c) corner += img.row(0)[c];
      const int named = corner / 3 < 70 ? 0 : corner / 3 < 180 ? 1 : 2;  // black, grey, white
      EXPECT_EQ(named, s.background) << scene_name(s);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3 * n);
  blip::test::expect_error([] { render_scene(SceneSpec{}, 16, 0); }, {"below the minimum of 32"});
  SceneSpec bad;
  bad.count = 4;
  blip::test::expect_error([&] { render_scene(bad, 64, 0); }, {"out of range"});
}

TEST(SyntheticScenes, WritesBlipAnnotationFiles) {
  if (!blip::image::have_image_decoder()) GTEST_SKIP() << "built without OpenCV";
  const SyntheticScenesOptions o = small_options();
  const std::string dir = blip::test::temp_dir() + "/scenes";
  const SyntheticScenesSummary s = write_synthetic_scenes(dir, o);
  EXPECT_EQ(s.train_images, 12);
  EXPECT_EQ(s.train_captions, 60);
  EXPECT_EQ(s.val_images, 5);
  EXPECT_EQ(s.val_captions, 25);
  EXPECT_EQ(s.test_images, 7);
  EXPECT_EQ(s.test_captions, 35);

  // Train: one entry per caption with image, caption and image_id (coco_karpathy_train.json).
  const auto train = nlohmann::json::parse(read_text(fs::path(dir) / "annotation/retrieval_train.json"));
  ASSERT_TRUE(train.is_array());
  ASSERT_EQ(train.size(), 60u);
  for (const auto& e : train) {
    ASSERT_EQ(e.size(), 3u);
    EXPECT_TRUE(e.at("image").is_string());
    EXPECT_TRUE(e.at("caption").is_string());
    EXPECT_TRUE(e.at("image_id").is_string());
  }
  // Val/test: one entry per image with a caption list (coco_karpathy_test.json).
  for (const std::string split : {"val", "test"}) {
    const auto ann = nlohmann::json::parse(read_text(fs::path(dir) / ("annotation/retrieval_" + split + ".json")));
    ASSERT_EQ(ann.size(), split == "val" ? 5u : 7u);
    for (const auto& e : ann) {
      ASSERT_EQ(e.size(), 2u);
      EXPECT_EQ(e.at("caption").size(), 5u);
    }
    EXPECT_EQ(ann[1].at("image"), "images/" + split + "/000001.png");
    EXPECT_EQ(ann[1].at("caption"), make_scene_split(split, 2, o)[1].captions);
  }

  // The project's readers of BLIP's formats take them as dataset "custom".
  TrainDatasetSpec ts;
  ts.dataset = "custom";
  ts.ann_root = dir + "/annotation";
  ts.image_root = dir;
  const TrainDataset td = load_train_dataset(ts);
  EXPECT_EQ(td.size(), 60);
  EXPECT_EQ(td.num_ids, 12);
  EXPECT_EQ(td.idx[0], td.idx[4]);  // an image's captions share its id
  EXPECT_NE(td.idx[4], td.idx[5]);
  EXPECT_NO_THROW(check_image_files(td));
  RetrievalSplitSpec rs;
  rs.dataset = "custom";
  rs.split = "test";
  rs.ann_root = dir + "/annotation";
  rs.image_root = dir;
  const RetrievalSplit test = load_retrieval_split(rs);
  EXPECT_EQ(test.num_images(), 7);
  EXPECT_EQ(test.num_texts(), 35);
  for (std::int64_t i = 0; i < test.num_images(); ++i) {
    const auto img = blip::image::decode_image_file(test.image_path(i));
    EXPECT_EQ(img.width, 48);
    EXPECT_EQ(img.height, 48);
    EXPECT_EQ(img.pixels, render_scene(make_scene_split("test", 7, o)[i].spec, 48,
                                       make_scene_split("test", 7, o)[i].image_seed)
                              .pixels);
  }

  // captions.txt: the train captions, one per line, in annotation order.
  std::string expected;
  for (const auto& e : train) expected += e.at("caption").get<std::string>() + "\n";
  EXPECT_EQ(read_text(fs::path(dir) / "captions.txt"), expected);

  // Same seed, same bytes.
  const std::string again = blip::test::temp_dir() + "/again";
  write_synthetic_scenes(again, o);
  EXPECT_EQ(read_text(fs::path(again) / "annotation/retrieval_train.json"),
            read_text(fs::path(dir) / "annotation/retrieval_train.json"));
  EXPECT_EQ(read_text(fs::path(again) / "images/val/000004.png"), read_text(fs::path(dir) / "images/val/000004.png"));
}

TEST(SyntheticScenes, RejectsBadOptions) {
  SyntheticScenesOptions o = small_options();
  o.image_size = 20;
  blip::test::expect_error([&] { make_scene_split("train", 1, o); }, {"image size 20", "minimum of 32"});
  o = small_options();
  o.captions_per_image = 0;
  blip::test::expect_error([&] { make_scene_split("train", 1, o); }, {"captions per image"});
  o = small_options();
  o.test = scene_combinations() + 1;
  blip::test::expect_error([&] { write_synthetic_scenes(blip::test::temp_dir() + "/x", o); }, {"only 540"});
}

TEST(SyntheticScenes, ToolWritesTheDataset) {
  const std::string tool = std::string(BLIP_BINARY_DIR) + "/tools/blip_demo_data";
  if (!fs::exists(tool)) GTEST_SKIP() << tool << " is not built";
  const std::string dir = blip::test::temp_dir() + "/tool";
  auto r = blip::test::run_command(blip::test::quote(tool) + " --out " + blip::test::quote(dir) +
                                   " --train 4 --val 2 --test 3 --size 40 --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("train 4 images (20 captions), val 2 (10), test 3 (15)"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(fs::path(dir) / "images/test/000002.png"));
  EXPECT_EQ(blip::image::decode_image_file(dir + "/images/train/000003.png").width, 40);
  r = blip::test::run_command(blip::test::quote(tool) + " --out " + blip::test::quote(dir) + " --test 100000");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("blip_demo_data: error: synthetic scenes test: 100000 images requested"), std::string::npos)
      << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

}  // namespace
