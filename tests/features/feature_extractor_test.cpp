// End to end against the Python original: blip_extract's library path on the forward fixture
// (4 images, 6 raw captions) must reproduce BLIP's preprocessing, tokens, features and ITM logits.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "blip/config.h"
#include "blip/error.h"
#include "blip/features/feature_extractor.h"
#include "blip/io/safetensors.h"
#include "blip/models/factory.h"
#include "blip/text/tokenizer.h"
#include "common/fixtures.h"
#include "common/tensor_expect.h"

namespace fs = std::filesystem;
using blip::test::blip_ref_dir;

namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::string image_path(const std::string& stem) {
  for (const auto& e : fs::directory_iterator(blip_ref_dir() + "/images"))
    if (e.path().stem() == stem && e.is_regular_file()) return e.path().string();
  ADD_FAILURE() << "no image for stem " << stem;
  return {};
}

std::map<std::string, at::Tensor> by_name(const blip::io::NamedTensors& list) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [n, t] : list) out[n] = t;
  return out;
}

}  // namespace

TEST(FeatureExtractor, ReproducesBlipForwardFixture) {
  BLIP_REQUIRE_FIXTURES();
  const auto forward = read_json(blip_ref_dir() + "/forward.json");
  const auto text = read_json(blip_ref_dir() + "/text.json");
  std::vector<std::string> images;
  for (const auto& stem : forward["images"]) images.push_back(image_path(stem.get<std::string>()));
  std::vector<blip::features::Caption> captions;
  for (const auto& id : forward["caption_ids"])
    captions.push_back({text["captions"][id.get<size_t>()]["raw"].get<std::string>(), "text.json"});

  const auto config = blip::load_retrieval_config(blip_ref_dir() + "/tiny_config.yaml");
  auto model = blip::models::load_blip_retrieval(config, "", {}, /*with_momentum=*/false);
  const auto tokenizer = blip::text::load_tokenizer(config.tokenizer);
  blip::features::ExtractOptions options;
  options.image_batch = 3;  // exercise batching: 4 images in two ViT batches
  options.text_batch = 4;
  const auto out = by_name(blip::features::extract_features(*model, *tokenizer, images, captions, options));
  const auto ref = by_name(blip::io::load_safetensors(blip_ref_dir() + "/forward.safetensors"));

  blip::test::expect_tensor_equal("pixel_values", out.at("pixel_values"), ref.at("image"));
  blip::test::expect_tensor_equal("input_ids", out.at("input_ids"), ref.at("text.input_ids"));
  blip::test::expect_tensor_equal("attention_mask", out.at("attention_mask"), ref.at("text.attention_mask"));
  blip::test::expect_tensor_close("image_embeds", out.at("image_embeds"), ref.at("vit.out"));
  blip::test::expect_tensor_close("image_feat", out.at("image_feat"), ref.at("image_feat"));
  blip::test::expect_tensor_close("text_embeds", out.at("text_embeds"), ref.at("text.last_hidden_state"));
  blip::test::expect_tensor_close("text_feat", out.at("text_feat"), ref.at("text_feat"));
  blip::test::expect_tensor_close("itm_logits", out.at("itm_logits"), ref.at("itm.logits"));
  blip::test::expect_tensor_close("sim_i2t", at::matmul(out.at("image_feat"), out.at("text_feat").t()),
                                  ref.at("sim_i2t"));
}

TEST(FeatureExtractor, CaptionsFromTextAndJsonFiles) {
  const auto dir = blip::test::temp_dir();
  {
    std::ofstream(dir + "/c.txt", std::ios::binary) << "first caption\r\nsecond: one\n\nlast";
    std::ofstream(dir + "/c.json") << R"(["with\nnewline", "-starts with dash"])";
  }
  const auto lines = blip::features::read_captions_file(dir + "/c.txt");
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].text, "first caption");
  EXPECT_EQ(lines[1].text, "second: one");
  EXPECT_EQ(lines[2].text, "");
  EXPECT_EQ(lines[3].source, dir + "/c.txt:4");
  const auto json = blip::features::read_captions_json(dir + "/c.json");
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[0].text, "with\nnewline");
  EXPECT_EQ(json[1].text, "-starts with dash");
}

TEST(FeatureExtractor, BadCaptionFilesNameTheFile) {
  const auto dir = blip::test::temp_dir();
  {
    std::ofstream(dir + "/obj.json") << R"({"a": 1})";
    std::ofstream(dir + "/num.json") << R"(["ok", 3])";
    std::ofstream(dir + "/broken.json") << R"(["unterminated)";
    std::ofstream(dir + "/empty.txt") << "";
  }
  for (const auto& [file, reason] : std::vector<std::pair<std::string, std::string>>{
           {"obj.json", "JSON array"}, {"num.json", "element 1"}, {"broken.json", "not valid JSON"}}) {
    try {
      blip::features::read_captions_json(dir + "/" + file);
      ADD_FAILURE() << file << " accepted";
    } catch (const blip::Error& e) {
      EXPECT_NE(std::string(e.what()).find(dir + "/" + file), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(blip::features::read_captions_file(dir + "/empty.txt"), blip::Error);
  EXPECT_THROW(blip::features::read_captions_file(dir + "/missing.txt"), blip::Error);
}
