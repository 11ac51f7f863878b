#include "blip/train/train_log.h"

#include "blip/io/atomic_write.h"
#include "common/expect_error.h"
#include "common/fixtures.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace fs = std::filesystem;

namespace blip::train {
namespace {

// itm_eval's arithmetic on hit counts, in BLIP's order of operations.
eval::RetrievalMetrics metrics_from_hits(const double txt_hits[3], double n_images,
                                         const double img_hits[3], double n_texts) {
  eval::RetrievalMetrics m;
  m.txt_r1 = 100.0 * txt_hits[0] / n_images;
  m.txt_r5 = 100.0 * txt_hits[1] / n_images;
  m.txt_r10 = 100.0 * txt_hits[2] / n_images;
  m.img_r1 = 100.0 * img_hits[0] / n_texts;
  m.img_r5 = 100.0 * img_hits[1] / n_texts;
  m.img_r10 = 100.0 * img_hits[2] / n_texts;
  m.txt_r_mean = (m.txt_r1 + m.txt_r5 + m.txt_r10) / 3;
  m.img_r_mean = (m.img_r1 + m.img_r5 + m.img_r10) / 3;
  m.r_mean = (m.txt_r_mean + m.img_r_mean) / 2;
  return m;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Produced once by Python 3 with BLIP's code path: SmoothedValue meters (lr, loss_itm, loss_ita)
// fed lr [1e-5, 1e-5, 9.5e-6], loss_itm [0.3, 0.2, 0.2345], loss_ita [3.0625] * 4; train_stats =
// {k: "{:.3f}".format(meter.global_avg)}; itm_eval's formulas on the hit counts used below; then
// json.dumps({**train_*, **val_*, **test_*, 'epoch': 3, 'best_epoch': 2}).
const char* const kPythonLine =
    R"({"train_lr": "0.000", "train_loss_itm": "0.245", "train_loss_ita": "3.062", )"
    R"("val_txt_r1": 96.35108481262327, "val_txt_r5": 99.5069033530572, )"
    R"("val_txt_r10": 99.80276134122288, "val_txt_r_mean": 98.55358316896779, )"
    R"("val_img_r1": 86.52859960552269, "val_img_r5": 98.32347140039448, )"
    R"("val_img_r10": 99.25049309664695, "val_img_r_mean": 94.70085470085469, )"
    R"("val_r_mean": 96.62721893491124, "test_txt_r1": 97.1, "test_txt_r5": 99.8, )"
    R"("test_txt_r10": 100.0, "test_txt_r_mean": 98.96666666666665, "test_img_r1": 87.34, )"
    R"("test_img_r5": 97.82, "test_img_r10": 99.06, "test_img_r_mean": 94.74000000000001, )"
    R"("test_r_mean": 96.85333333333332, "epoch": 3, "best_epoch": 2})";

TEST(TrainLog, LineMatchesPythonJsonDumpsByteForByte) {
  AverageMeter lr, loss_itm, loss_ita;
  for (double v : {1e-5, 1e-5, 9.5e-6}) lr.add(v);
  for (double v : {0.3, 0.2, 0.2345}) loss_itm.add(v);
  for (int i = 0; i < 4; ++i) loss_ita.add(3.0625);
  const TrainStats stats{lr.global_avg(), loss_itm.global_avg(), loss_ita.global_avg()};

  const double val_txt[3] = {977, 1009, 1012}, val_img[3] = {4387, 4985, 5032};
  const double test_txt[3] = {971, 998, 1000}, test_img[3] = {4367, 4891, 4953};
  const auto val = metrics_from_hits(val_txt, 1014, val_img, 5070);
  const auto test = metrics_from_hits(test_txt, 1000, test_img, 5000);
  EXPECT_EQ(format_log_line(stats, val, test, 3, 2), kPythonLine);
}

TEST(TrainLog, KeyOrderIsBlips) {
  const blip::eval::RetrievalMetrics zeros;
  const std::string line = format_log_line({}, zeros, zeros, 0, 0);
  const char* keys[] = {"train_lr", "train_loss_itm", "train_loss_ita", "val_txt_r1", "val_r_mean",
                        "test_txt_r1", "test_r_mean", "epoch", "best_epoch"};
  std::size_t previous = 0;
  for (std::size_t i = 0; i < std::size(keys); ++i) {
    const std::size_t at = line.find(std::string("\"") + keys[i] + "\":");
    ASSERT_NE(at, std::string::npos) << keys[i];
    if (i == 0) {
      EXPECT_EQ(at, 1u);
    } else {
      EXPECT_GT(at, previous) << keys[i];
    }
    previous = at;
  }
  EXPECT_EQ(std::count(line.begin(), line.end(), ':'), 3 + 9 + 9 + 2);
  EXPECT_EQ(line.rfind(R"({"train_lr": "0.000", "train_loss_itm": "0.000", )", 0), 0u);
  // Before any epoch improved on val there are no test metrics: no test_* keys at all.
  const std::string no_test = format_log_line({}, zeros, nullptr, 0, 0);
  EXPECT_EQ(no_test.find("test_"), std::string::npos) << no_test;
  EXPECT_EQ(std::count(no_test.begin(), no_test.end(), ':'), 3 + 9 + 2);
}

TEST(TrainLog, Fixed3FollowsPythonFormat) {
  // Values checked against Python's "{:.3f}".format(v).
  EXPECT_EQ(format_fixed3(3.0625), "3.062");  // exact tie: round half to even
  EXPECT_EQ(format_fixed3(0.0005), "0.001");  // binary 0.0005 is just above the tie
  EXPECT_EQ(format_fixed3(2.0005), "2.001");
  EXPECT_EQ(format_fixed3(-0.0), "-0.000");
  EXPECT_EQ(format_fixed3(-0.0001), "-0.000");
  EXPECT_EQ(format_fixed3(-std::numeric_limits<double>::quiet_NaN()), "nan");
  EXPECT_EQ(format_fixed3(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(format_fixed3(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_EQ(format_fixed3(1e20), "100000000000000000000.000");
}

TEST(TrainLog, AverageMeterIsCountWeighted) {
  AverageMeter m;
  EXPECT_TRUE(std::isnan(m.global_avg()));
  m.add(2.0, 3);  // SmoothedValue.update(2.0, n=3)
  m.add(6.0);
  EXPECT_EQ(m.count, 4);
  EXPECT_DOUBLE_EQ(m.total, 12.0);
  EXPECT_DOUBLE_EQ(m.global_avg(), 3.0);
}

TEST(TrainLog, AppendCreatesAndExtendsLeavingNoTemporaryFile) {
  const std::string out = test::temp_dir() + "/run/nested";
  const std::string path = append_log_line(out, R"({"epoch": 0})");
  EXPECT_EQ(path, out + "/log.txt");
  EXPECT_EQ(read_all(path), "{\"epoch\": 0}\n");
  EXPECT_EQ(append_log_line(out, R"({"epoch": 1})"), path);
  EXPECT_EQ(read_all(path), "{\"epoch\": 0}\n{\"epoch\": 1}\n");
  EXPECT_EQ(dir_entries(out), std::vector<std::string>{"log.txt"});
}

TEST(TrainLog, AppendRefusesMultiLineAndNonRegularTargets) {
  const std::string out = test::temp_dir();
  test::expect_error([&] { append_log_line(out, "a\nb"); }, {"log.txt", "line break"});
  EXPECT_FALSE(fs::exists(out + "/log.txt"));

  fs::create_directories(out + "/log.txt");  // a directory where the log should be
  test::expect_error([&] { append_log_line(out, "{}"); }, {"log.txt", "not a regular file"});
  EXPECT_EQ(dir_entries(out), std::vector<std::string>{"log.txt"});
}

TEST(AtomicWrite, ReplacesKeepsModeAndRefusesSymlinks) {
  const std::string dir = test::temp_dir();
  const std::string path = dir + "/f.txt";
  io::write_file_atomic(path, "one");
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  io::write_file_atomic(path, "two two");
  EXPECT_EQ(read_all(path), "two two");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(io::read_file_if_exists(path), "two two");
  EXPECT_EQ(io::read_file_if_exists(dir + "/missing"), "");

  fs::create_symlink(path, dir + "/link.txt");
  test::expect_error([&] { io::write_file_atomic(dir + "/link.txt", "x"); },
                     {"link.txt", "not a regular file"});
  EXPECT_EQ(read_all(path), "two two");
  test::expect_error([&] { io::read_file_if_exists(path, 3); }, {"f.txt", "larger than 3"});
  test::expect_error([&] { io::write_file_atomic(dir + "/no/such/dir/f", "x"); },
                     {"no/such/dir/f", "temporary"});
  EXPECT_EQ(dir_entries(dir), (std::vector<std::string>{"f.txt", "link.txt"}));
}

}  // namespace
}  // namespace blip::train
