// The training loop on the fixture's tiny model and its 24-pair train set (blip_ref/eval): what it
// writes, that --resume continues bit for bit, and what --evaluate does.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "blip/config.h"
#include "blip/io/checkpoint.h"
#include "blip/train/trainer.h"
#include "common/fixtures.h"

namespace {

namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The tiny fixture config: 24 train pairs, batch 4 -> 6 steps per epoch; val/test 12 images.
blip::RetrievalConfig tiny_config(std::int64_t max_epoch) {
  return blip::load_retrieval_config(blip::test::blip_ref_dir() + "/tiny_config.yaml",
                                     {{"max_epoch", std::to_string(max_epoch)}});
}

blip::train::TrainOptions options(const std::string& dir, std::int64_t max_steps) {
  blip::train::TrainOptions o;
  o.output_dir = dir;
  o.seed = 7;
  o.max_steps = max_steps;
  o.num_workers = 2;
  return o;
}

void expect_same_checkpoints(const std::string& a, const std::string& b) {
  const auto ca = blip::io::load_pth(a), cb = blip::io::load_pth(b);
  ASSERT_EQ(ca.model.size(), cb.model.size());
  ASSERT_GE(ca.model.size(), 180u);
  for (size_t i = 0; i < ca.model.size(); ++i) {
    ASSERT_EQ(ca.model[i].first, cb.model[i].first);
    EXPECT_TRUE(at::equal(ca.model[i].second, cb.model[i].second)) << ca.model[i].first << " differs";
  }
}

TEST(TrainLoop, WritesBlipsFilesAndLearnsOnTheFixture) {
  BLIP_REQUIRE_FIXTURES();
  const std::string dir = blip::test::temp_dir() + "/run";
  const auto r = blip::train::train_retrieval(tiny_config(2), options(dir, 0), blip::dist::DistContext());
  EXPECT_EQ(r.global_step, 12);  // 2 epochs x 6 steps
  EXPECT_EQ(r.epochs_done, 2);
  EXPECT_TRUE(r.has_val);
  for (const char* f : {"config.yaml", "log.txt", "report.html", "checkpoint_best.pth", "checkpoint_last.pth"})
    EXPECT_TRUE(fs::is_regular_file(dir + "/" + f)) << f;
  const auto log = lines_of(dir + "/log.txt");
  ASSERT_EQ(log.size(), 2u);
  // BLIP's key order and formatting: train stats as "%.3f" strings first, epoch/best_epoch last.
  EXPECT_EQ(log[0].rfind("{\"train_lr\": \"0.000\", \"train_loss_itm\": \"", 0), 0u) << log[0];
  EXPECT_NE(log[0].find("\"val_txt_r1\": "), std::string::npos);
  EXPECT_NE(log[1].find("\"epoch\": 1, \"best_epoch\": "), std::string::npos) << log[1];
  const auto best = blip::io::load_pth(dir + "/checkpoint_best.pth");
  ASSERT_TRUE(best.epoch.has_value());
  EXPECT_EQ(*best.epoch, r.best_epoch);
  EXPECT_EQ(best.model.size(), 189u);
  EXPECT_NE(read_text(dir + "/config.yaml").find("queue_size: 64"), std::string::npos);
}

TEST(TrainLoop, ResumeContinuesBitForBit) {
  BLIP_REQUIRE_FIXTURES();
  const std::string root = blip::test::temp_dir();
  // Uninterrupted: 9 steps (epoch 0 and half of epoch 1).
  blip::train::train_retrieval(tiny_config(2), options(root + "/full", 9), blip::dist::DistContext());
  // Interrupted after 4 steps (mid-epoch 0), then resumed up to 9.
  blip::train::train_retrieval(tiny_config(2), options(root + "/part", 4), blip::dist::DistContext());
  auto resumed = options(root + "/part", 9);
  resumed.resume = root + "/part/checkpoint_last.pth";
  const auto r = blip::train::train_retrieval(tiny_config(2), resumed, blip::dist::DistContext());
  EXPECT_EQ(r.global_step, 9);
  expect_same_checkpoints(root + "/full/checkpoint_last.pth", root + "/part/checkpoint_last.pth");
}

TEST(TrainLoop, EvaluateWritesOneEvaluateLine) {
  BLIP_REQUIRE_FIXTURES();
  const std::string dir = blip::test::temp_dir() + "/eval";
  auto o = options(dir, 0);
  o.evaluate = true;
  const auto r = blip::train::train_retrieval(tiny_config(1), o, blip::dist::DistContext());
  EXPECT_TRUE(r.has_val && r.has_test);
  const auto lines = lines_of(dir + "/evaluate.txt");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("{\"val_txt_r1\": ", 0), 0u) << lines[0];
  EXPECT_FALSE(fs::exists(dir + "/checkpoint_last.pth"));
  // BLIP's own itm_eval of this checkpoint on this split (val and test share the annotations).
  std::ifstream f(blip::test::blip_ref_dir() + "/eval/eval_result.json");
  const auto expected = nlohmann::json::parse(f).at("itm_eval");
  size_t checked = 0;
  for (const auto* m : {&r.val, &r.test})
    for (const auto& [key, value] : m->items()) {
      EXPECT_DOUBLE_EQ(value, expected.at(key).get<double>()) << key;
      ++checked;
    }
  EXPECT_EQ(checked, 18u);
}

}  // namespace
