// blip_extract as a user runs it: output file contents, and one clear error (exit 1) per bad input.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

namespace {

std::size_t line_count(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

mode_t file_type(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & S_IFMT;
}

struct CliCase {
  std::string args;    // appended to the base command; @DIR@ is the test's temp dir
  std::string needle;  // the one error line must contain it
};

std::string expand(std::string s, const std::string& dir) {
  for (std::size_t at; (at = s.find("@DIR@")) != std::string::npos;) s.replace(at, 5, dir);
  return s;
}

// Runs each case (under `timeout`: a blocking read would otherwise hang the test) and expects
// exit 1, exactly one line of output, naming the flag or file, and no C++ backtrace.
void expect_one_line_failures(const std::string& command, const std::string& dir, const std::vector<CliCase>& cases) {
  for (const auto& c : cases) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = run_command("timeout 60 " + command + " " + expand(c.args, dir));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.exit_code, 1) << c.args << ":\n" << r.output;
    EXPECT_NE(r.output.find(expand(c.needle, dir)), std::string::npos) << c.args << ":\n" << r.output;
    EXPECT_EQ(line_count(r.output), 1u) << c.args << ":\n" << r.output;
    EXPECT_LT(r.output.size(), 400u) << c.args << ":\n" << r.output;  // no 309-digit numbers
    EXPECT_EQ(r.output.find("Exception raised from"), std::string::npos) << r.output;
    EXPECT_LT(seconds, 30) << c.args;  // refused before any real work
  }
}

}  // namespace

// Issue 9, items 4, 6, 7: usage errors and special files exit 1 with one line.
TEST(BlipExtractCli, UsageErrorsExitOneWithOneLine) {
  BLIP_REQUIRE_FIXTURES();
  const auto dir = blip::test::temp_dir();
  std::filesystem::create_directory(dir + "/a_dir");
  ASSERT_EQ(::mkfifo((dir + "/fifo").c_str(), 0600), 0);
  const std::string image = " --image " + quote(blip_ref_dir() + "/images/v0_rgb_640x480.jpg");
  const std::string ok = " --caption hi --out @DIR@/o.safetensors";
  expect_one_line_failures(
      base_args(), dir,
      {
          {"--out ''" + image, "blip_extract: --out: empty path"},
          {"--max-pixels -1" + image + ok, "--max-pixels: expected an integer in [0, 1099511627776], got '-1'"},
          {"--max-pixels 1e3" + image + ok, "--max-pixels: expected an integer in [0, 1099511627776], got '1e3'"},
          {"--threads 0" + ok, "--threads: expected an integer in [1, 4096], got '0'"},
          {"--threads 1" + std::string(320, '0') + ok, "--threads: expected an integer in [1, 4096]"},
          {"--image-batch -3" + ok, "--image-batch: expected an integer in [1, 1048576], got '-3'"},
          {"--no-such-flag" + ok, "--no-such-flag"},
          {"--captions-file /dev/zero --out @DIR@/o.safetensors",
           "/dev/zero: is not a regular file (a character device); expected a captions file"},
          {"--captions-file @DIR@/fifo --out @DIR@/o.safetensors",
           "@DIR@/fifo: is not a regular file (a FIFO); expected a captions file"},
          {"--captions-file @DIR@/a_dir --out @DIR@/o.safetensors", "@DIR@/a_dir: is a directory, not a captions file"},
          {"--captions-json @DIR@/a_dir --out @DIR@/o.safetensors", "@DIR@/a_dir: is a directory, not a captions file"},
          {"--vocab /dev/zero" + ok, "/dev/zero: is not a regular file (a character device); expected a vocabulary file"},
          {"--vocab @DIR@/fifo" + ok, "@DIR@/fifo: is not a regular file (a FIFO); expected a vocabulary file"},
          {"--device tpu" + ok, "--device tpu: not a device name (use cpu, cuda or cuda:<n>)"},
          {"--checkpoint @DIR@/a_dir" + ok, "@DIR@/a_dir: is a directory, not a checkpoint file"},
          {"--checkpoint /dev/zero" + ok,
           "/dev/zero: is not a regular file (a character device); expected a checkpoint file"},
          {"--checkpoint @DIR@/fifo" + ok, "@DIR@/fifo: is not a regular file (a FIFO); expected a checkpoint file"},
      });
  expect_one_line_failures(
      tool() + " --threads 1", dir,
      {
          {"--config @DIR@/a_dir" + ok, "@DIR@/a_dir: is a directory, not a config file"},
          {"--config /dev/zero" + ok, "/dev/zero: is not a regular file (a character device); expected a config file"},
          {"--config @DIR@/none.yaml" + ok, "@DIR@/none.yaml: config file not found"},
      });
  EXPECT_FALSE(std::filesystem::exists(dir + "/o.safetensors"));
  const auto help = run_command(tool() + " --help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_NE(help.output.find("--captions-file"), std::string::npos) << help.output;
}

// Issue 9, item 1: `--out /dev/null` (as root) replaced the device with a regular file.
TEST(BlipExtractCli, OutputThatIsNotARegularFileIsLeftAlone) {
  BLIP_REQUIRE_FIXTURES();
  const auto dir = blip::test::temp_dir();
  ASSERT_EQ(::mkfifo((dir + "/fifo.safetensors").c_str(), 0600), 0);
  std::vector<CliCase> cases = {
      {"--caption hi --out @DIR@/fifo.safetensors",
       "@DIR@/fifo.safetensors: is not a regular file (a FIFO); refusing to replace it"},
  };
  const bool dev_null = file_type("/dev/null") == S_IFCHR && ::access("/dev/null", W_OK) == 0;
  if (dev_null)
    cases.push_back({"--caption hi --out /dev/null",
                     "/dev/null: is not a regular file (a character device); refusing to replace it"});
  expect_one_line_failures(base_args(), dir, cases);
  EXPECT_EQ(file_type(dir + "/fifo.safetensors"), S_IFIFO);
  EXPECT_EQ(file_type("/dev/null"), S_IFCHR) << "/dev/null was replaced";
  if (!dev_null) GTEST_SKIP() << "/dev/null is not a writable character device here; the FIFO case ran";
}

// Issue 9, item 5: image_size 16000 allocated for 18 s, then exited 2 with a c10 backtrace.
TEST(BlipExtractCli, ImageSizeAboveTheLimitIsRefusedAtOnce) {
  BLIP_REQUIRE_FIXTURES();
  const auto dir = blip::test::temp_dir();
  std::ofstream(dir + "/huge.yaml") << "vit: base\nimage_size: 16000\nmed_config: " << blip_ref_dir()
                                    << "/tiny_med_config.json\ntokenizer: " << blip_ref_dir()
                                    << "/../bert-base-uncased-vocab.txt\n";
  expect_one_line_failures(tool() + " --threads 1", dir,
                           {{"--config @DIR@/huge.yaml --caption hi --out @DIR@/o.safetensors",
                             "@DIR@/huge.yaml: key 'image_size' must be a multiple of the patch size (16) in "
                             "[16, 4096], got 16000"}});
}
