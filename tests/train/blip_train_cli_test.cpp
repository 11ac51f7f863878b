// blip_train as a user runs it on the fixture's tiny model: errors before training (one line
// naming the file or key, exit 1), two ranks like torchrun (same weights on every rank, averaged
// gradients, negatives from all ranks), and a rank that dies.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "blip/io/checkpoint.h"
#include "common/fixtures.h"
#include "common/run_command.h"
#include "common/worker_process.h"

namespace {

namespace fs = std::filesystem;
using blip::test::blip_ref_dir;
using blip::test::quote;
using blip::test::run_command;

std::string tool() { return std::string(BLIP_BINARY_DIR) + "/tools/blip_train"; }

std::string base_args() {
  return tool() + " --threads 1 --quiet --workers 1 --config " + quote(blip_ref_dir() + "/tiny_config.yaml");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void skip_without_tool() {
  if (!fs::exists(tool())) GTEST_SKIP() << tool() << " not built";
}

// Runs blip_train with `args`, expecting exit 1 and one error line holding every needle.
void expect_failure(const std::string& args, std::initializer_list<std::string> needles) {
  const auto r = run_command(base_args() + " " + args);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Exception raised from"), std::string::npos) << r.output;
  for (const auto& n : needles) EXPECT_NE(r.output.find(n), std::string::npos) << "lacks '" << n << "': " << r.output;
}

// A copy of the fixture's annotation folder with `train_json` as the train file.
std::string annotation_copy(const std::string& train_json) {
  const std::string dir = blip::test::temp_dir() + "/ann";
  fs::create_directories(dir);
  for (const char* f : {"coco_karpathy_val.json", "coco_karpathy_test.json"})
    fs::copy_file(blip_ref_dir() + "/eval/" + f, dir + "/" + f);
  std::ofstream(dir + "/coco_karpathy_train.json") << train_json;
  return dir;
}

TEST(BlipTrainCli, BadConfigsFailBeforeTraining) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string out = blip::test::temp_dir() + "/out";
  // BLIP asserts this in the middle of the first epoch (its issue #101).
  expect_failure("--output_dir " + quote(out) + " --set queue_size=30", {"queue_size", "30", "global batch 4"});
  // The checkpoint's queue pointer (60) does not fit a global batch of 8.
  expect_failure("--output_dir " + quote(out) + " --batch_size_train 8", {"tiny_checkpoint.pth", "ptr_queue = 60"});
  expect_failure("--output_dir " + quote(out) + " --set no_such_key=1", {"no_such_key"});
  const std::string empty_ann = blip::test::temp_dir() + "/empty";
  fs::create_directories(empty_ann);
  expect_failure("--output_dir " + quote(out) + " --set ann_root=" + quote(empty_ann), {"coco_karpathy_"});
  const std::string missing_image = annotation_copy(
      R"([{"image": "images/v0_rgb_640x480.jpg", "caption": "a", "image_id": "a"},
          {"image": "images/no_such_image.jpg", "caption": "b", "image_id": "b"}])");
  expect_failure("--output_dir " + quote(out) + " --set ann_root=" + quote(missing_image), {"no_such_image.jpg"});
  const std::string bad_key = annotation_copy(R"([{"image": "images/v0_rgb_640x480.jpg", "text": "a", "image_id": "a"}])");
  expect_failure("--output_dir " + quote(out) + " --set ann_root=" + quote(bad_key), {"coco_karpathy_train.json", "caption"});
  // An output directory that is a file.
  const std::string file = blip::test::temp_dir() + "/a_file";
  std::ofstream(file) << "x";
  expect_failure("--output_dir " + quote(file), {file});
  expect_failure("--output_dir " + quote(out) + " --max_steps 0", {"--max_steps"});
  expect_failure("--output_dir " + quote(out) + " --precision fp16", {"fp16"});
  EXPECT_FALSE(fs::exists(out + "/checkpoint_last.pth"));
}

std::string rank_env(int rank, int port) {
  return "RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) +
         " LOCAL_WORLD_SIZE=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) +
         " timeout 300 ";
}

TEST(BlipTrainCli, TwoRanksLikeTorchrun) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string dir = blip::test::temp_dir();
  const int port = blip::test::unused_loopback_port();
  // A global batch of 4 (2 per rank) continues the checkpoint's queue at ptr 60; negatives are
  // drawn from both ranks.
  const std::string args = " --max_steps 3 --batch_size_train 2 --dist-timeout 60 --set negative_all_rank=true --output_dir " +
                           quote(dir + "/out");
  const auto r = run_command("( " + rank_env(1, port) + base_args() + args + " > " + quote(dir + "/rank1.log") +
                             " 2>&1; echo $? > " + quote(dir + "/rank1.rc") + " ) & " + rank_env(0, port) +
                             base_args() + args + "; rc=$?; wait; exit $rc");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_file(dir + "/rank1.rc"), "0\n") << read_file(dir + "/rank1.log");
  const auto ckpt = blip::io::load_pth(dir + "/out/checkpoint_last.pth");
  // 3 steps of a global batch of 4 moved the queue pointer by 12 (from the checkpoint's 60).
  int found = 0;
  for (const auto& [name, t] : ckpt.model) {
    if (name != "ptr_queue") continue;
    ++found;
    EXPECT_EQ(t.item<int64_t>(), (60 + 12) % 64);
  }
  EXPECT_EQ(found, 1);
  // max_steps stopped epoch 0 after 3 of its 6 steps per rank (24 pairs / 2 ranks / batch 2): one line.
  const std::string log = read_file(dir + "/out/log.txt");
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  EXPECT_NE(log.find("\"epoch\": 0, \"best_epoch\": 0}"), std::string::npos) << log;
}

TEST(BlipTrainCli, ADeadRankMakesTheOtherExitWithAClearError) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string dir = blip::test::temp_dir();
  const int port = blip::test::unused_loopback_port();
  const std::string out = dir + "/out";
  // Rank 1 is killed once training has written its first checkpoint; rank 0 must not hang.
  const std::string args = " --max_epoch 50 --batch_size_train 2 --save-every 1 --dist-timeout 20 --output_dir " + quote(out);
  const std::string script =
      "( " + rank_env(1, port) + base_args() + args + " > " + quote(dir + "/rank1.log") + " 2>&1 ) & r1=$!; " +
      "( for i in $(seq 600); do [ -f " + quote(out + "/checkpoint_last.pth") +
      " ] && break; sleep 0.1; done; kill -9 $r1 ) & " + rank_env(0, port) + base_args() + args +
      "; rc=$?; wait; exit $rc";
  const auto start = std::chrono::steady_clock::now();
  const auto r = run_command("( " + script + " )");  // one subshell: its stderr is captured too
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("blip_train: error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank 0 of 2"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Exception raised from"), std::string::npos) << r.output;
  EXPECT_LT(seconds, 120) << r.output;
  // The last complete checkpoint is still loadable.
  EXPECT_NO_THROW(blip::io::load_pth(out + "/checkpoint_last.pth"));
}

}  // namespace
