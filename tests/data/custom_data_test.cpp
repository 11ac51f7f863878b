// scripts/prepare_custom_data.py (docs/custom_data.md): a folder of images and a captions file
// (CSV or JSON lines) become the annotation files of `dataset: custom`, which the data layer
// must then read as BLIP's train / val / test sets; bad input is one line on stderr and exit 1.
#include <gtest/gtest.h>

#include "blip/data/retrieval_dataset.h"
#include "blip/data/synthetic_scenes.h"
#include "blip/data/train_dataset.h"
#include "blip/text/pre_caption.h"
#include "common/fixtures.h"
#include "common/run_command.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using namespace blip::data;
using blip::test::quote;
using blip::test::run_command;

constexpr int kImages = 12;
constexpr int kCaptionsPerImage = 3;

std::string script() { return std::string(BLIP_SOURCE_DIR) + "/scripts/prepare_custom_data.py"; }

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string csv_field(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// The value of `key: '...'` in a YAML file the script wrote.
std::string yaml_value(const std::string& yaml, const std::string& key) {
  std::smatch m;
  if (std::regex_search(yaml, m, std::regex("(^|\n)" + key + ": '([^']*)'"))) return m[2];
  return "(missing)";
}

class CustomData : public ::testing::Test {
 protected:
  void SetUp() override {
    if (run_command("command -v python3 >/dev/null").exit_code != 0)
      GTEST_SKIP() << "python3 not installed: scripts/prepare_custom_data.py cannot run";
#ifndef BLIP_WITH_OPENCV
    GTEST_SKIP() << "this build has no OpenCV to draw the test images";
#else
    dir_ = blip::test::temp_dir();
    // Real images (the demo's synthetic scenes) in a folder of the user's own layout; the
    // captions come from the scenes, with a few written the way people write them.
    SyntheticScenesOptions o;
    o.train = kImages, o.val = 0, o.test = 0, o.image_size = 32, o.captions_per_image = kCaptionsPerImage;
    write_synthetic_scenes(dir_ + "/scenes", o);
    images_ = dir_ + "/my photos";
    fs::create_directories(images_ + "/holiday");
    int i = 0;
    for (const SyntheticScene& s : make_scene_split("train", kImages, o)) {
      const std::string name = (i % 2 ? "holiday/" : "") + std::string("photo ") + std::to_string(i) + ".png";
      fs::copy_file(dir_ + "/scenes/" + s.image, images_ + "/" + name);
      std::vector<std::string> caps = s.captions;
      if (i == 0) caps[0] = "A \"quoted\", comma-separated caption: caf\xC3\xA9!";
      for (const std::string& c : caps) pairs_.emplace_back(name, c);
      ++i;
    }
    write_csv(dir_ + "/captions.csv", pairs_);
#endif
  }

  void write_csv(const std::string& path, const std::vector<std::pair<std::string, std::string>>& pairs) {
    std::string csv = "image,caption,photographer\n";
    for (const auto& [image, caption] : pairs) csv += csv_field(image) + "," + csv_field(caption) + ",me\n";
    write_file(path, csv);
  }

  blip::test::CommandResult prepare(const std::string& captions, const std::string& out,
                                    const std::string& extra = "") {
    return run_command("python3 " + quote(script()) + " --images " + quote(images_) + " --captions " +
                       quote(captions) + " --out " + quote(out) + " " + extra);
  }

  // Runs the script with bad input: exit 1, one line naming `needles`, nothing written.
  void expect_rejected(const std::string& captions, const std::vector<std::string>& needles,
                       const std::string& extra = "") {
    const std::string out = dir_ + "/rejected";
    const auto r = prepare(captions, out, extra);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "one line: " << r.output;
    EXPECT_EQ(r.output.rfind("prepare_custom_data: ", 0), 0u) << r.output;
    for (const auto& n : needles) EXPECT_NE(r.output.find(n), std::string::npos) << n << " in " << r.output;
    EXPECT_FALSE(fs::exists(out)) << "nothing is written on bad input";
  }

  std::string dir_, images_;
  std::vector<std::pair<std::string, std::string>> pairs_;
};

TEST_F(CustomData, CsvBecomesSplitsTheLoaderReads) {
  const std::string out = dir_ + "/out";
  const auto r = prepare(dir_ + "/captions.csv", out, "--val-fraction 0.25 --test-fraction 0.25 --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("images: 12 (train 6, val 3, test 3); captions: 36 (train 18, val 9, test 9)"),
            std::string::npos) << r.output;

  // The config points the loader at the files: read its keys as blip_train would.
  const std::string yaml = read_all(out + "/retrieval_custom.yaml");
  EXPECT_EQ(yaml_value(yaml, "dataset"), "custom");
  EXPECT_EQ(fs::path(yaml_value(yaml, "image_root")), fs::absolute(images_));
  EXPECT_EQ(yaml_value(yaml, "ann_root"), "annotation");
  EXPECT_TRUE(fs::is_regular_file(yaml_value(yaml, "med_config"))) << "relative paths of the base made absolute";
  const std::string image_root = yaml_value(yaml, "image_root");
  const std::string ann_root = out + "/" + yaml_value(yaml, "ann_root");

  std::map<std::string, std::vector<std::string>> expected;  // image -> pre_caption'ed captions
  for (const auto& [image, caption] : pairs_) expected[image].push_back(blip::text::pre_caption(caption, kRetrievalMaxWords));

  const TrainDataset train = load_train_dataset({"custom", ann_root, image_root});
  ASSERT_EQ(train.size(), 6 * kCaptionsPerImage);
  EXPECT_EQ(train.num_ids, 6);
  EXPECT_NO_THROW(check_image_files(train));
  std::set<std::string> seen;
  for (std::int64_t i = 0; i < train.size(); ++i) {
    const auto& caps = expected.at(train.image[i]);
    EXPECT_NE(std::find(caps.begin(), caps.end(), train.caption[i]), caps.end()) << train.caption[i];
    // Samples of one image share an id, and different images have different ids.
    for (std::int64_t j = 0; j < i; ++j) EXPECT_EQ(train.idx[i] == train.idx[j], train.image[i] == train.image[j]);
    seen.insert(train.image[i]);
  }
  EXPECT_EQ(seen.size(), 6u);

  for (const char* name : {"val", "test"}) {
    const RetrievalSplit split = load_retrieval_split({"custom", name, ann_root, image_root});
    ASSERT_EQ(split.num_images(), 3) << name;
    ASSERT_EQ(split.num_texts(), 3 * kCaptionsPerImage) << name;
    for (std::int64_t i = 0; i < split.num_images(); ++i) {
      EXPECT_TRUE(seen.insert(split.image[i]).second) << split.image[i] << " is in two splits";
      EXPECT_TRUE(fs::is_regular_file(split.image_path(i))) << split.image_path(i);
      std::vector<std::string> texts;
      for (std::int64_t t : split.img2txt[i]) texts.push_back(split.text[t]);
      EXPECT_EQ(texts, expected.at(split.image[i])) << "captions in file order, " << split.image[i];
    }
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kImages)) << "every image in exactly one split";
  // The caption with a quote, commas and UTF-8 came through the CSV intact.
  const std::string all = read_all(ann_root + "/retrieval_train.json") + read_all(ann_root + "/retrieval_val.json") +
                          read_all(ann_root + "/retrieval_test.json");
  EXPECT_NE(all.find("A \\\"quoted\\\", comma-separated caption: caf\xC3\xA9!"), std::string::npos);
}

TEST_F(CustomData, SplitIsDeterministicAndJsonLinesMatchCsv) {
  ASSERT_EQ(prepare(dir_ + "/captions.csv", dir_ + "/a", "--seed 7 --test-fraction 0.2").exit_code, 0);
  // The same pairs, rows of different images in reverse order, as JSON lines (captions of one image as a list).
  std::map<std::string, std::vector<std::string>> by_image;
  std::vector<std::string> order;
  for (const auto& [image, caption] : pairs_) {
    if (by_image[image].empty()) order.push_back(image);
    by_image[image].push_back(caption);
  }
  std::reverse(order.begin(), order.end());
  std::string jsonl;
  for (std::size_t i = 0; i < order.size(); ++i) {
    nlohmann::json line = {{"image", order[i]}};
    if (i % 2) {
      line["caption"] = by_image[order[i]];
      jsonl += line.dump() + "\n";
    } else {
      for (const auto& c : by_image[order[i]]) jsonl += nlohmann::json{{"image", "./" + order[i]}, {"caption", c}}.dump() + "\n\n";
    }
  }
  write_file(dir_ + "/captions.jsonl", jsonl);
  const auto r = prepare(dir_ + "/captions.jsonl", dir_ + "/b", "--seed 7 --test-fraction 0.2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(prepare(dir_ + "/captions.csv", dir_ + "/c", "--seed 8 --test-fraction 0.2").exit_code, 0);
  for (const char* f : {"retrieval_train.json", "retrieval_val.json", "retrieval_test.json"}) {
    const std::string a = read_all(dir_ + "/a/annotation/" + f);
    ASSERT_FALSE(a.empty()) << f;
    EXPECT_EQ(a, read_all(dir_ + "/b/annotation/" + f)) << f << ": same split whatever the file order or format";
  }
  EXPECT_NE(read_all(dir_ + "/a/annotation/retrieval_test.json"), read_all(dir_ + "/c/annotation/retrieval_test.json"))
      << "another seed, another split";
  // 12 images: test 0.2 -> 2, val 0.1 -> 1.
  EXPECT_EQ(load_retrieval_split({"custom", "test", dir_ + "/a/annotation", images_}).num_images(), 2);
  EXPECT_EQ(load_retrieval_split({"custom", "val", dir_ + "/a/annotation", images_}).num_images(), 1);
}

TEST_F(CustomData, BadInputIsOneLineAndExitOne) {
  auto with = [&](std::size_t row, const std::string& image, const std::string& caption) {
    auto p = pairs_;
    p[row] = {image, caption};
    const std::string path = dir_ + "/bad" + std::to_string(row) + ".csv";
    write_csv(path, p);
    return path;
  };
  // Row 4 of the pairs is line 6 of the file (header, and the first caption spans one line).
  expect_rejected(with(4, "no such.png", "a dog"), {"bad4.csv line 6", "image 'no such.png' not found"});
  expect_rejected(with(5, "photo 0.png", "   "), {"bad5.csv line 7", "empty caption"});
  expect_rejected(with(6, "../captions.csv", "x"), {"line 8", "outside"});
  write_file(dir_ + "/header.csv", "file,text\na.png,b\n");
  expect_rejected(dir_ + "/header.csv", {"header.csv line 1", "image and caption"});
  write_file(dir_ + "/fields.csv", "image,caption\nphoto 0.png,a,b\n");
  expect_rejected(dir_ + "/fields.csv", {"fields.csv line 2", "3 fields"});
  write_file(dir_ + "/quote.csv", "image,caption\n\"photo 0.png,\"a\n");
  expect_rejected(dir_ + "/quote.csv", {"quote.csv line 2", "malformed CSV"});
  write_file(dir_ + "/bad.jsonl", "{\"image\": \"photo 0.png\", \"caption\": \"x\"}\n{\"image\": \"photo 0.png\"}\n");
  expect_rejected(dir_ + "/bad.jsonl", {"bad.jsonl line 2", "missing key \"caption\""});
  write_file(dir_ + "/two.csv", "image,caption\nphoto 0.png,a\nphoto 2.png,b\n");
  expect_rejected(dir_ + "/two.csv", {"2 images", "too few"});
  expect_rejected(dir_ + "/captions.csv", {"--val-fraction", "(0, 1)"}, "--val-fraction 1.5");
  expect_rejected(dir_ + "/missing.csv", {"missing.csv", "not found"});
}

}  // namespace
