// Retrieval splits built as BLIP's coco_karpathy_retrieval_eval builds them, compared with the
// texts / images / txt2img / img2txt BLIP produced for the fixture set; and every bad input.
#include <gtest/gtest.h>

#include "blip/error.h"
#include "blip/data/retrieval_dataset.h"
#include "common/fixtures.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace {

using namespace blip::data;
namespace fs = std::filesystem;

std::string eval_dir() { return blip::test::blip_ref_dir() + "/eval"; }

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Runs f, expects a blip::Error whose message contains every needle.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no blip::Error thrown";
  } catch (const blip::Error& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "message '" << e.what() << "' lacks '" << n << "'";
  }
}

TEST(RetrievalDataset, FixtureSplitMatchesBlip) {
  BLIP_REQUIRE_FIXTURES();
  const nlohmann::json ref = read_json(eval_dir() + "/eval_result.json");
  for (const std::string split_name : {"val", "test"}) {
    RetrievalSplitSpec spec;
    spec.split = split_name;
    spec.ann_root = eval_dir();
    spec.image_root = blip::test::blip_ref_dir();
    const RetrievalSplit s = load_retrieval_split(spec);
    EXPECT_EQ(s.name, split_name);
    EXPECT_EQ(s.annotation_file, eval_dir() + "/coco_karpathy_" + split_name + ".json");
    EXPECT_EQ(s.num_images(), ref["num_images"].get<std::int64_t>());
    EXPECT_EQ(s.num_texts(), ref["num_texts"].get<std::int64_t>());
    EXPECT_EQ(s.text, ref["texts_after_pre_caption"].get<std::vector<std::string>>());
    EXPECT_EQ(s.image, ref["images"].get<std::vector<std::string>>());
    EXPECT_EQ(s.txt2img, ref["txt2img"].get<std::vector<std::int64_t>>());
    EXPECT_EQ(s.img2txt, ref["img2txt"].get<std::vector<std::vector<std::int64_t>>>());
    for (const auto& p : s.image_paths()) EXPECT_TRUE(fs::exists(p)) << p;
  }
}

TEST(RetrievalDataset, FileNamesAndUrls) {
  EXPECT_EQ(annotation_file_name("coco", "val"), "coco_karpathy_val.json");
  EXPECT_EQ(annotation_file_name("flickr", "test"), "flickr30k_test.json");
  EXPECT_EQ(annotation_file_name("custom", "val"), "retrieval_val.json");
  EXPECT_EQ(annotation_download_url("coco", "test"),
            "https://storage.googleapis.com/sfr-vision-language-research/datasets/"
            "coco_karpathy_test.json");
  EXPECT_EQ(annotation_download_url("flickr", "val"),
            "https://storage.googleapis.com/sfr-vision-language-research/datasets/"
            "flickr30k_val.json");
  EXPECT_EQ(annotation_download_url("custom", "test"), "");
  expect_error([] { annotation_file_name("nocaps", "val"); }, {"nocaps", "unknown retrieval dataset"});
  expect_error([] { annotation_file_name("coco", "train"); }, {"train", "unknown retrieval split"});
}

TEST(RetrievalDataset, CustomDatasetAndPathJoin) {
  const std::string dir = blip::test::temp_dir();
  write_file(dir + "/retrieval_val.json",
             R"([{"image": "a.jpg", "caption": ["A dog!", "Two  cats."]},
                 {"image": "/abs/b.png", "caption": []},
                 {"image": "sub/c.jpg", "caption": ["x"], "image_id": 7}])");
  RetrievalSplitSpec spec;
  spec.dataset = "custom";
  spec.split = "val";
  spec.ann_root = dir;
  spec.image_root = "/data/imgs/";
  const RetrievalSplit s = load_retrieval_split(spec);
  EXPECT_EQ(s.text, (std::vector<std::string>{"a dog", "two cats", "x"}));
  EXPECT_EQ(s.txt2img, (std::vector<std::int64_t>{0, 0, 2}));
  EXPECT_EQ(s.img2txt, (std::vector<std::vector<std::int64_t>>{{0, 1}, {}, {2}}));
  EXPECT_EQ(s.image_path(0), "/data/imgs/a.jpg");
  EXPECT_EQ(s.image_path(1), "/abs/b.png");  // os.path.join: an absolute entry wins
  EXPECT_EQ(s.image_path(2), "/data/imgs/sub/c.jpg");
}

TEST(RetrievalDataset, MaxWordsTruncates) {
  const RetrievalSplit s = parse_retrieval_split(
      R"([{"image": "a.jpg", "caption": ["one two three four"]}])", "mem", "", 2);
  EXPECT_EQ(s.text, (std::vector<std::string>{"one two"}));
}

TEST(RetrievalDataset, WithoutImagesRenumbers) {
  const RetrievalSplit s = parse_retrieval_split(
      R"([{"image": "a", "caption": ["a1", "a2"]}, {"image": "b", "caption": ["b1"]},
          {"image": "c", "caption": ["c1", "c2"]}])",
      "mem", "root");
  std::vector<std::int64_t> kept_texts, kept_images;
  const RetrievalSplit r = without_images(s, {1}, &kept_texts, &kept_images);
  EXPECT_EQ(r.image, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(r.text, (std::vector<std::string>{"a1", "a2", "c1", "c2"}));
  EXPECT_EQ(r.txt2img, (std::vector<std::int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(r.img2txt, (std::vector<std::vector<std::int64_t>>{{0, 1}, {2, 3}}));
  EXPECT_EQ(kept_texts, (std::vector<std::int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(kept_images, (std::vector<std::int64_t>{0, 2}));
  // Same as parsing the file without that entry.
  const RetrievalSplit direct = parse_retrieval_split(
      R"([{"image": "a", "caption": ["a1", "a2"]}, {"image": "c", "caption": ["c1", "c2"]}])",
      "mem", "root");
  EXPECT_EQ(r.text, direct.text);
  EXPECT_EQ(r.txt2img, direct.txt2img);
  EXPECT_EQ(r.img2txt, direct.img2txt);
  expect_error([&] { without_images(s, {3}); }, {"cannot drop image 3"});
}

TEST(RetrievalDataset, MissingFileNamesPathAndDownloadUrl) {
  const std::string dir = blip::test::temp_dir();
  RetrievalSplitSpec spec;
  spec.ann_root = dir;
  spec.split = "val";
  expect_error([&] { load_retrieval_split(spec); },
               {dir + "/coco_karpathy_val.json", "not found",
                "https://storage.googleapis.com/sfr-vision-language-research/datasets/"
                "coco_karpathy_val.json"});
  spec.dataset = "flickr";
  spec.split = "test";
  expect_error([&] { load_retrieval_split(spec); },
               {dir + "/flickr30k_test.json", "not found", "datasets/flickr30k_test.json"});
  spec.dataset = "custom";
  expect_error([&] { load_retrieval_split(spec); },
               {dir + "/retrieval_test.json", "not found", "custom"});
  fs::create_directories(dir + "/retrieval_val.json");
  spec.split = "val";
  expect_error([&] { load_retrieval_split(spec); }, {dir + "/retrieval_val.json", "is a directory"});
}

TEST(RetrievalDataset, BadContentNamesFileAndReason) {
  const std::string dir = blip::test::temp_dir();
  const std::string path = dir + "/retrieval_test.json";
  RetrievalSplitSpec spec;
  spec.dataset = "custom";
  spec.ann_root = dir;
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"", {path, "invalid JSON"}},
      {R"([{"image": "a.jpg", "caption": ["x"]})", {path, "invalid JSON at byte"}},
      {R"({"image": "a.jpg"})", {path, "expected a JSON list", "object"}},
      {"[]", {path, "empty"}},
      {R"([{"image": "a.jpg", "caption": []}])", {path, "no captions"}},
      {R"([1])", {path, "entry 0", "expected an object"}},
      {R"([{"image": "a", "caption": ["x"]}, {"caption": ["x"]}])", {path, "entry 1", "\"image\""}},
      {R"([{"image": 5, "caption": ["x"]}])", {path, "entry 0", "\"image\" must be a string"}},
      {R"([{"image": "", "caption": ["x"]}])", {path, "entry 0", "empty path"}},
      {R"([{"image": "a.jpg"}])", {path, "entry 0", "missing key \"caption\""}},
      {R"([{"image": "a.jpg", "caption": "a dog"}])", {path, "entry 0", "must be a list"}},
      {R"([{"image": "a.jpg", "caption": ["ok", 3]}])", {path, "entry 0", "caption 1", "string"}},
      {"[{\"image\": \"a.jpg\", \"caption\": [\"bad \xff utf8\"]}]", {path, "invalid JSON", "UTF-8"}},
  };
  for (const auto& [content, needles] : cases) {
    SCOPED_TRACE(content);
    write_file(path, content);
    expect_error([&] { load_retrieval_split(spec); }, needles);
  }
}

}  // namespace
