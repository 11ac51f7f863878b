// Training sets built as BLIP's coco_karpathy_train / flickr30k_train build them (img_ids in
// order of first appearance, pre_caption with max_words 30), the fixture set, and every bad input.
#include <gtest/gtest.h>

#include "blip/data/train_dataset.h"
#include "blip/error.h"
#include "common/expect_error.h"
#include "common/fixtures.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace {

using namespace blip::data;
using blip::test::expect_error;
namespace fs = std::filesystem;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(TrainDataset, FileNamesAndUrls) {
  EXPECT_EQ(train_annotation_file_name("coco"), "coco_karpathy_train.json");
  EXPECT_EQ(train_annotation_file_name("flickr"), "flickr30k_train.json");
  EXPECT_EQ(train_annotation_file_name("custom"), "retrieval_train.json");
  EXPECT_EQ(train_annotation_download_url("coco"),
            "https://storage.googleapis.com/sfr-vision-language-research/datasets/"
            "coco_karpathy_train.json");
  EXPECT_EQ(train_annotation_download_url("flickr"),
            "https://storage.googleapis.com/sfr-vision-language-research/datasets/"
            "flickr30k_train.json");
  EXPECT_EQ(train_annotation_download_url("custom"), "");
  expect_error([] { train_annotation_file_name("nocaps"); }, {"nocaps", "unknown retrieval dataset"});
  expect_error([] { train_annotation_download_url("vqa"); }, {"vqa", "unknown retrieval dataset"});
}

TEST(TrainDataset, ImgIdsInOrderOfFirstAppearance) {
  // Python dict semantics: "7" and 7 are different keys; ids repeat out of order.
  const TrainDataset d = parse_train_dataset(
      R"([{"image": "a.jpg", "caption": "A dog!", "image_id": "x"},
          {"image": "b.jpg", "caption": "Two  cats.", "image_id": 7},
          {"image": "a.jpg", "caption": "(Another) dog", "image_id": "x"},
          {"image": "c.jpg", "caption": "c", "image_id": "7"},
          {"image": "b.jpg", "caption": "b", "image_id": 7},
          {"image": "d.jpg", "caption": "d", "image_id": -3},
          {"image": "e.jpg", "caption": "e", "image_id": 18446744073709551615}])",
      "mem", "/data/imgs/");
  EXPECT_EQ(d.size(), 7);
  EXPECT_EQ(d.num_ids, 5);
  EXPECT_EQ(d.idx, (std::vector<std::int64_t>{0, 1, 0, 2, 1, 3, 4}));
  EXPECT_EQ(d.caption,
            (std::vector<std::string>{"a dog", "two cats", "another dog", "c", "b", "d", "e"}));
  EXPECT_EQ(d.image, (std::vector<std::string>{"a.jpg", "b.jpg", "a.jpg", "c.jpg", "b.jpg",
                                               "d.jpg", "e.jpg"}));
  EXPECT_EQ(d.annotation_file, "mem");
  EXPECT_EQ(d.image_path(0), "/data/imgs/a.jpg");
}

TEST(TrainDataset, MaxWordsAndPathJoin) {
  const TrainDataset d = parse_train_dataset(
      R"([{"image": "/abs/a.jpg", "caption": "one two three four", "image_id": 1},
          {"image": "sub/b.jpg", "caption": "x", "image_id": 2}])",
      "mem", "root", 2);
  EXPECT_EQ(d.caption[0], "one two");
  EXPECT_EQ(d.image_path(0), "/abs/a.jpg");  // os.path.join: an absolute entry wins
  EXPECT_EQ(d.image_path(1), "root/sub/b.jpg");
  // The default is BLIP's max_words = 30.
  std::string long_caption;
  for (int i = 0; i < 40; ++i) long_caption += "w" + std::to_string(i) + " ";
  const TrainDataset l = parse_train_dataset(
      R"([{"image": "a", "caption": ")" + long_caption + R"(", "image_id": 0}])", "mem", "");
  std::string expected;
  for (int i = 0; i < 30; ++i) expected += (i ? " w" : "w") + std::to_string(i);
  EXPECT_EQ(l.caption[0], expected);
}

TEST(TrainDataset, LoadsEachDatasetsFile) {
  const std::string dir = blip::test::temp_dir();
  const std::string entry = R"([{"image": "a.jpg", "caption": "Hi.", "image_id": 3}])";
  for (const std::string dataset : {"coco", "flickr", "custom"}) {
    SCOPED_TRACE(dataset);
    write_file(dir + "/" + train_annotation_file_name(dataset), entry);
    TrainDatasetSpec spec;
    spec.dataset = dataset;
    spec.ann_root = dir;
    spec.image_root = "imgs";
    const TrainDataset d = load_train_dataset(spec);
    EXPECT_EQ(d.annotation_file, dir + "/" + train_annotation_file_name(dataset));
    EXPECT_EQ(d.caption, (std::vector<std::string>{"hi"}));
    EXPECT_EQ(d.image_path(0), "imgs/a.jpg");
  }
}

TEST(TrainDataset, MissingOrUnreadableFileNamed) {
  const std::string dir = blip::test::temp_dir();
  TrainDatasetSpec spec;
  spec.ann_root = dir;
  expect_error([&] { load_train_dataset(spec); },
               {dir + "/coco_karpathy_train.json", "not found",
                "https://storage.googleapis.com/sfr-vision-language-research/datasets/"
                "coco_karpathy_train.json"});
  spec.dataset = "flickr";
  expect_error([&] { load_train_dataset(spec); },
               {dir + "/flickr30k_train.json", "not found", "datasets/flickr30k_train.json"});
  spec.dataset = "custom";
  expect_error([&] { load_train_dataset(spec); },
               {dir + "/retrieval_train.json", "not found", "custom", "image_id"});
  spec.dataset = "bogus";
  expect_error([&] { load_train_dataset(spec); }, {"bogus", "unknown retrieval dataset"});

  spec.dataset = "custom";
  fs::create_directories(dir + "/retrieval_train.json");
  expect_error([&] { load_train_dataset(spec); }, {dir + "/retrieval_train.json", "is a directory"});
  fs::remove(dir + "/retrieval_train.json");
  // A device that never ends must be refused, not read.
  fs::create_symlink("/dev/zero", dir + "/retrieval_train.json");
  expect_error([&] { load_train_dataset(spec); },
               {dir + "/retrieval_train.json", "not a regular file"});
  fs::remove(dir + "/retrieval_train.json");
  // Too large (a sparse file: no disk space used).
  {
    std::ofstream(dir + "/retrieval_train.json") << "[";
    fs::resize_file(dir + "/retrieval_train.json", kMaxTrainAnnotationBytes + 1);
  }
  expect_error([&] { load_train_dataset(spec); },
               {dir + "/retrieval_train.json", "is larger than 1024 MiB, the limit for an annotation file"});
}

TEST(TrainDataset, BadContentNamesFileEntryAndKey) {
  const std::string dir = blip::test::temp_dir();
  const std::string path = dir + "/retrieval_train.json";
  TrainDatasetSpec spec;
  spec.dataset = "custom";
  spec.ann_root = dir;
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"", {path, "invalid JSON"}},
      {R"([{"image": "a.jpg", "caption": "x", "image_id": 1})", {path, "invalid JSON at byte"}},
      {R"({"image": "a.jpg"})", {path, "expected a JSON list", "object"}},
      {"[]", {path, "empty"}},
      {R"([1])", {path, "entry 0", "expected an object", "number"}},
      {R"([{"image": "a", "caption": "x", "image_id": 1}, {"caption": "x", "image_id": 1}])",
       {path, "entry 1", "missing key \"image\""}},
      {R"([{"image": 5, "caption": "x", "image_id": 1}])",
       {path, "entry 0", "\"image\" must be a string", "number"}},
      {R"([{"image": "", "caption": "x", "image_id": 1}])", {path, "entry 0", "empty path"}},
      {R"([{"image": "a.jpg", "image_id": 1}])", {path, "entry 0", "missing key \"caption\""}},
      {R"([{"image": "a.jpg", "caption": ["a dog"], "image_id": 1}])",
       {path, "entry 0", "\"caption\" must be a string", "array"}},
      {R"([{"image": "a.jpg", "caption": null, "image_id": 1}])",
       {path, "entry 0", "\"caption\" must be a string", "null"}},
      {R"([{"image": "a", "caption": "x", "image_id": 1}, {"image": "a.jpg", "caption": "x"}])",
       {path, "entry 1", "missing key \"image_id\""}},
      {R"([{"image": "a.jpg", "caption": "x", "image_id": 1.5}])",
       {path, "entry 0", "\"image_id\" must be a string or an integer", "float 1.5"}},
      {R"([{"image": "a.jpg", "caption": "x", "image_id": true}])",
       {path, "entry 0", "\"image_id\"", "boolean"}},
      {R"([{"image": "a.jpg", "caption": "x", "image_id": [1]}])",
       {path, "entry 0", "\"image_id\"", "array"}},
      {"[{\"image\": \"a.jpg\", \"caption\": \"bad \xff utf8\", \"image_id\": 1}]",
       {path, "invalid JSON", "UTF-8"}},
      {"[{\"image\": \"a\xc3.jpg\", \"caption\": \"x\", \"image_id\": 1}]",
       {path, "invalid JSON", "UTF-8"}},
  };
  for (const auto& [content, needles] : cases) {
    SCOPED_TRACE(content);
    write_file(path, content);
    expect_error([&] { load_train_dataset(spec); }, needles);
  }
}

TEST(TrainDataset, CheckImageFilesNamesFirstMissingAndCount) {
  const std::string dir = blip::test::temp_dir();
  write_file(dir + "/a.jpg", "x");
  fs::create_directories(dir + "/dir.jpg");
  fs::create_symlink(dir + "/a.jpg", dir + "/link.jpg");
  const std::string ok_json =
      R"([{"image": "a.jpg", "caption": "x", "image_id": 1},
          {"image": "link.jpg", "caption": "x", "image_id": 2},
          {"image": "a.jpg", "caption": "y", "image_id": 1}])";
  check_image_files(parse_train_dataset(ok_json, "ok.json", dir));

  const TrainDataset bad = parse_train_dataset(
      R"([{"image": "a.jpg", "caption": "x", "image_id": 1},
          {"image": "gone.jpg", "caption": "x", "image_id": 2},
          {"image": "gone.jpg", "caption": "y", "image_id": 2},
          {"image": "dir.jpg", "caption": "x", "image_id": 3},
          {"image": "also_gone.jpg", "caption": "x", "image_id": 4}])",
      "bad.json", dir);
  expect_error([&] { check_image_files(bad); },
               {dir + "/gone.jpg", "not found", "sample 1", "bad.json",
                "3 of 4 distinct images"});
  const TrainDataset dir_only =
      parse_train_dataset(R"([{"image": "dir.jpg", "caption": "x", "image_id": 3}])", "d.json", dir);
  expect_error([&] { check_image_files(dir_only); },
               {dir + "/dir.jpg", "not a regular file", "1 of 1"});
}

TEST(TrainDataset, FixtureCocoKarpathyTrain) {
  BLIP_REQUIRE_FIXTURES();
  const std::string ref = blip::test::blip_ref_dir();
  TrainDatasetSpec spec;
  spec.ann_root = ref + "/eval";
  spec.image_root = ref;
  const TrainDataset d = load_train_dataset(spec);
  // 12 images x 2 captions, image_ids blipref_visible_0..11, consecutive.
  ASSERT_EQ(d.size(), 24);
  EXPECT_EQ(d.num_ids, 12);
  for (std::int64_t i = 0; i < d.size(); ++i) EXPECT_EQ(d.idx[i], i / 2) << i;
  EXPECT_EQ(d.image[0], "images/v0_rgb_640x480.jpg");
  EXPECT_EQ(d.image[2], "images/v1_rgb_500x333.png");
  EXPECT_EQ(d.caption[0], "a tall giraffe standing near a snowy hill it's blurry");
  check_image_files(d);

  // The captions BLIP's coco_karpathy_train.__getitem__ returned (augment/augment.json).
  std::ifstream in(ref + "/augment/augment.json");
  const nlohmann::json aug = nlohmann::json::parse(in);
  const auto& pipelines = aug.at("pipelines");
  ASSERT_EQ(pipelines.size(), 6u);
  for (const auto& p : pipelines) {
    const auto i = p.at("dataset_index").get<std::int64_t>();
    ASSERT_LT(i, d.size());
    EXPECT_EQ(d.caption[i], p.at("caption").get<std::string>()) << i;
    EXPECT_EQ(d.image[i], p.at("image").get<std::string>()) << i;
  }
}

}  // namespace

// Found by fuzz_annotation_json: a number beyond double's range made nlohmann throw out_of_range,
// not parse_error, and it escaped as an internal error without the file's name.
TEST(TrainDatasetOverflow, NumberOutOfRangeIsInvalidJsonNamingTheFile) {
  blip::test::expect_error([] { blip::data::parse_train_dataset("[1e400]", "ann.json", "/images"); },
                           {"ann.json", "invalid JSON", "1e400"});
  blip::test::expect_error(
      [] { blip::data::parse_train_dataset(R"([{"image": "a.jpg", "caption": "c", "image_id": 1e999}])", "ann.json", "/images"); },
      {"ann.json", "invalid JSON"});
}
