// blip_extract as a user runs it: output file contents, and one clear error (exit 1) per bad input.
#include <gtest/gtest.h>

#include <fstream>

#include "blip/io/safetensors.h"
#include "common/fixtures.h"
#include "common/run_command.h"

using blip::test::blip_ref_dir;
using blip::test::quote;
using blip::test::run_command;

namespace {

std::string tool() { return std::string(BLIP_BINARY_DIR) + "/tools/blip_extract"; }

std::string base_args() {
  return tool() + " --threads 1 --config " + quote(blip_ref_dir() + "/tiny_config.yaml");
}

void expect_failure(const std::string& args, const std::vector<std::string>& needles) {
  const auto r = run_command(base_args() + " " + args);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  for (const auto& n : needles) EXPECT_NE(r.output.find(n), std::string::npos) << "lacks '" << n << "':\n" << r.output;
}

}  // namespace

TEST(BlipExtractCli, WritesAllTensors) {
  BLIP_REQUIRE_FIXTURES();
  const auto dir = blip::test::temp_dir();
  std::ofstream(dir + "/c.json") << R"(["a man riding a wave", "two dogs\nin the snow", "a cat"])";
  const auto out = dir + "/f.safetensors";
  const auto r = run_command(base_args() + " --image " + quote(blip_ref_dir() + "/images/v0_rgb_640x480.jpg") +
                             " --image " + quote(blip_ref_dir() + "/images/v5_pal_17x23.png") +
                             " --captions-json " + quote(dir + "/c.json") + " --out " + quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::map<std::string, std::string> meta;
  const auto tensors = blip::io::load_safetensors(out, &meta);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& [n, t] : tensors) shapes[n] = t.sizes().vec();
  EXPECT_EQ(shapes["pixel_values"], (std::vector<int64_t>{2, 3, 64, 64}));
  EXPECT_EQ(shapes["image_embeds"], (std::vector<int64_t>{2, 17, 64}));
  EXPECT_EQ(shapes["image_feat"], (std::vector<int64_t>{2, 16}));
  EXPECT_EQ(shapes["input_ids"], (std::vector<int64_t>{3, 35}));
  EXPECT_EQ(shapes["attention_mask"], (std::vector<int64_t>{3, 35}));
  EXPECT_EQ(shapes["text_embeds"], (std::vector<int64_t>{3, 35, 24}));
  EXPECT_EQ(shapes["text_feat"], (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(shapes["itm_logits"], (std::vector<int64_t>{2, 3, 2}));
  EXPECT_NE(meta["captions"].find("two dogs\\nin the snow"), std::string::npos) << meta["captions"];
}

TEST(BlipExtractCli, MissingImageIsOneClearError) {
  BLIP_REQUIRE_FIXTURES();
  const auto dir = blip::test::temp_dir();
  expect_failure("--image " + dir + "/nope.jpg --caption hi --out " + dir + "/o.safetensors",
                 {"error", dir + "/nope.jpg"});
}

TEST(BlipExtractCli, InvalidUtf8CaptionNamesFileAndLine) {
  BLIP_REQUIRE_FIXTURES();
  const auto dir = blip::test::temp_dir();
  std::ofstream(dir + "/c.txt", std::ios::binary) << "fine\nbad \xC3\x28 byte\n";
  expect_failure("--captions-file " + dir + "/c.txt --out " + dir + "/o.safetensors", {dir + "/c.txt:2", "UTF-8"});
}

TEST(BlipExtractCli, BadConfigKeyAndMissingCheckpoint) {
  BLIP_REQUIRE_FIXTURES();
  const auto dir = blip::test::temp_dir();
  std::ofstream(dir + "/bad.yaml") << "vit: base\nimage_sise: 384\nmed_config: " << blip_ref_dir()
                                   << "/tiny_med_config.json\n";
  const auto r = run_command(tool() + " --config " + dir + "/bad.yaml --caption hi --out " + dir + "/o.safetensors");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("image_sise"), std::string::npos) << r.output;
  expect_failure("--checkpoint " + dir + "/none.pth --caption hi --out " + dir + "/o.safetensors", {dir + "/none.pth"});
}

TEST(BlipExtractCli, NeedsImagesOrCaptions) {
  BLIP_REQUIRE_FIXTURES();
  const auto dir = blip::test::temp_dir();
  expect_failure("--out " + dir + "/o.safetensors", {"--image"});
}

TEST(BlipExtractCli, ImageOverThePixelLimitIsRefused) {
  BLIP_REQUIRE_FIXTURES();
  const auto dir = blip::test::temp_dir();
  // v0 is 640x480 = 307200 pixels.
  expect_failure("--max-pixels 100000 --image " + quote(blip_ref_dir() + "/images/v0_rgb_640x480.jpg") +
                     " --caption hi --out " + dir + "/o.safetensors",
                 {"v0_rgb_640x480.jpg", "pixels"});
}
