// blip_eval as a user runs it on the tiny fixture: BLIP's evaluate.txt line byte for byte, the
// score files (only with --save-scores), the issue's flag names and their aliases, one clear error
// (exit 1) per bad input, and a 2-process torchrun-style launch.
#include <gtest/gtest.h>

#include "blip/bf16_hardware.h"
#include "blip/eval/itm_metrics.h"
#include "blip/eval/report.h"
#include "blip/io/safetensors.h"
#include "common/fixtures.h"
#include "common/run_command.h"
#include "common/worker_process.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using blip::test::blip_ref_dir;
using blip::test::quote;
using blip::test::run_command;

std::string tool() { return std::string(BLIP_BINARY_DIR) + "/tools/blip_eval"; }

std::string base_args() {
  return tool() + " --threads 1 --quiet --config " + quote(blip_ref_dir() + "/tiny_config.yaml");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// BLIP's metrics on the fixture (eval_result.json), as a RetrievalMetrics.
blip::eval::RetrievalMetrics blip_metrics() {
  std::ifstream in(blip_ref_dir() + "/eval/eval_result.json");
  const auto j = nlohmann::json::parse(in)["itm_eval"];
  blip::eval::RetrievalMetrics m;
  m.txt_r1 = j["txt_r1"];
  m.txt_r5 = j["txt_r5"];
  m.txt_r10 = j["txt_r10"];
  m.txt_r_mean = j["txt_r_mean"];
  m.img_r1 = j["img_r1"];
  m.img_r5 = j["img_r5"];
  m.img_r10 = j["img_r10"];
  m.img_r_mean = j["img_r_mean"];
  m.r_mean = j["r_mean"];
  return m;
}

void skip_without_tool() {
  if (!std::filesystem::exists(tool())) GTEST_SKIP() << tool() << " not built";
}

void expect_failure(const std::string& args, const std::vector<std::string>& needles) {
  const auto r = run_command(base_args() + " " + args);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  for (const auto& n : needles)
    EXPECT_NE(r.output.find(n), std::string::npos) << "lacks '" << n << "':\n" << r.output;
}

TEST(BlipEvalCli, WritesBlipsEvaluateLineAndScores) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string out = blip::test::temp_dir() + "/out";
  const auto r = run_command(base_args() + " --save-scores --output_dir " + quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::printf("%s", r.output.c_str());
  // val and test are the same file in the fixture set, so both carry BLIP's metrics.
  const auto m = blip_metrics();
  const std::string expected = blip::eval::evaluate_log_line({{"val", m}, {"test", m}}) + "\n";
  EXPECT_EQ(read_file(out + "/evaluate.txt"), expected);
  EXPECT_NE(expected.find("\"val_txt_r_mean\": 33.333333333333336"), std::string::npos);

  const auto blip_scores = blip::io::load_safetensors(blip_ref_dir() + "/eval/scores.safetensors");
  for (const std::string split : {"val", "test"}) {
    const auto ours = blip::io::load_safetensors(out + "/scores_" + split + ".safetensors");
    ASSERT_EQ(ours.size(), 2u);
    for (const auto& [name, t] : ours)
      for (const auto& [bname, bt] : blip_scores)
        if (bname == name) {
          EXPECT_TRUE(at::equal(t == -100.0f, bt == -100.0f)) << name;
          EXPECT_LE((t - bt).abs().max().item<float>(), 1e-4f) << name;
        }
  }
  // A second run appends, as BLIP's open(..., "a") does (and --output-dir is an alias).
  ASSERT_EQ(run_command(base_args() + " --output-dir " + quote(out) + " --split test --mode reference")
                .exit_code,
            0);
  EXPECT_EQ(read_file(out + "/evaluate.txt"),
            expected + blip::eval::evaluate_log_line({{"test", m}}) + "\n");
}

// BLIP writes no score files: without --save-scores neither do we. The issue's flag names (and
// the older spellings) reach the evaluation: k_test 5 changes the metrics.
TEST(BlipEvalCli, FlagNamesAndNoScoreFilesByDefault) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string out = blip::test::temp_dir() + "/out";
  const auto r = run_command(base_args() + " --output_dir " + quote(out) +
                             " --split test --device cpu --seed 7 --k_test 10 --batch_size 3"
                             " --precision fp32");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_file(out + "/evaluate.txt"),
            blip::eval::evaluate_log_line({{"test", blip_metrics()}}) + "\n");
  for (const auto& e : std::filesystem::directory_iterator(out))
    EXPECT_EQ(e.path().filename().string(), "evaluate.txt") << "unexpected file " << e.path();
  EXPECT_EQ(r.output.find("wrote"), std::string::npos) << r.output;

  const std::string out5 = blip::test::temp_dir() + "/out5";
  const auto r5 = run_command(base_args() + " --output-dir " + quote(out5) + " --split test --k-test 5 --batch-size 4");
  ASSERT_EQ(r5.exit_code, 0) << r5.output;
  EXPECT_NE(read_file(out5 + "/evaluate.txt"),
            blip::eval::evaluate_log_line({{"test", blip_metrics()}}) + "\n");

  // Without --quiet, stderr says how the ViT tokens are held.
  const auto loud = run_command(tool() + " --threads 1 --config " + quote(blip_ref_dir() + "/tiny_config.yaml") +
                                " --split test --image-block 5 --output_dir " + quote(out5));
  ASSERT_EQ(loud.exit_code, 0) << loud.output;
  EXPECT_NE(loud.output.find("test: fp32, ViT tokens recomputed for the rerank in blocks of 5 images"),
            std::string::npos)
      << loud.output;
}

TEST(BlipEvalCli, BfloatPrecisionRuns) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string out = blip::test::temp_dir() + "/out";
  const auto r = run_command(base_args() + " --split test --precision bf16 --save-scores --output_dir " + quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // A CPU without usable AMX gets told that bf16 is not faster there (blip/bf16_hardware.h).
  EXPECT_EQ(r.output.find("blip_eval: note: ") != std::string::npos, !blip::bf16_hardware().amx_usable()) << r.output;
  const auto ours = blip::io::load_safetensors(out + "/scores_test.safetensors");
  const auto blip_scores = blip::io::load_safetensors(blip_ref_dir() + "/eval/scores.safetensors");
  ASSERT_EQ(ours.size(), 2u);
  for (const auto& [name, t] : ours) {
    EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
    for (const auto& [bname, bt] : blip_scores)
      if (bname == name) {
        const at::Tensor both = (t != -100.0f).logical_and(bt != -100.0f);
        const float d = (t - bt).abs().masked_select(both).max().item<float>();
        std::printf("  bf16 CLI %s vs BLIP fp32: max|diff| %.4g\n", name.c_str(), d);
        EXPECT_LE(d, 0.2f) << name;  // see kBf16ScoreTolerance in retrieval_eval_test.cpp
      }
  }
}

TEST(BlipEvalCli, MissingAnnotationNamesFileAndUrl) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string dir = blip::test::temp_dir();
  expect_failure("--output-dir " + quote(dir) + " --set ann_root=" + quote(dir),
                 {"error", dir + "/coco_karpathy_val.json", "not found",
                  "https://storage.googleapis.com/sfr-vision-language-research/datasets/"
                  "coco_karpathy_val.json"});
}

TEST(BlipEvalCli, BadImageStopsOrIsSkipped) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string dir = blip::test::temp_dir();
  std::ifstream in(blip_ref_dir() + "/eval/coco_karpathy_test.json");
  nlohmann::json ann = nlohmann::json::parse(in);
  for (auto& e : ann) e["image"] = blip_ref_dir() + "/" + e["image"].get<std::string>();
  ann.push_back({{"image", dir + "/broken.jpg"}, {"caption", {"a broken picture"}}});
  std::ofstream(dir + "/broken.jpg") << "not an image";
  std::ofstream(dir + "/retrieval_test.json") << ann.dump();
  const std::string args = "--split test --output-dir " + quote(dir + "/out") +
                           " --set dataset=custom --set ann_root=" + quote(dir);
  expect_failure(args, {"error", dir + "/broken.jpg", "--skip-bad-images"});
  const auto r = run_command(base_args() + " " + args + " --skip-bad-images");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("skipped 1 unreadable image"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(dir + "/out/evaluate.txt"),
            blip::eval::evaluate_log_line({{"test", blip_metrics()}}) + "\n");
}

TEST(BlipEvalCli, BadOptions) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string dir = blip::test::temp_dir();
  expect_failure("--output-dir " + quote(dir) + " --set no_such_key=1", {"error", "no_such_key"});
  expect_failure("--output-dir " + quote(dir) + " --device tpu", {"error", "--device tpu"});
  if (!at::hasCUDA())
    expect_failure("--output-dir " + quote(dir) + " --device cuda", {"error", "--device cuda", "without CUDA"});
  expect_failure("--output-dir " + quote(dir) + " --precision fp16",
                 {"error", "precision fp16: needs a CUDA device (use bf16 on the CPU)"});
  // Unknown flags and bad values: named, exit 1 as README promises (not CLI11's 104-109).
  for (const std::string bad : {"--no-scores", "--k_tset 3"}) {
    const auto u = run_command(base_args() + " --output-dir " + quote(dir) + " " + bad);
    EXPECT_EQ(u.exit_code, 1) << bad;
    EXPECT_NE(u.output.find(bad.substr(0, bad.find(' '))), std::string::npos) << u.output;
  }
  const auto p = run_command(base_args() + " --output-dir " + quote(dir) + " --precision fp8");
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_NE(p.output.find("--precision"), std::string::npos) << p.output;
  // A launcher environment pointing at a closed port: a clear error within the timeout.
  const int port = blip::test::unused_loopback_port();
  const auto r = run_command("RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                             std::to_string(port) + " timeout 60 " + base_args() +
                             " --dist-timeout 2 --output-dir " + quote(dir));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << r.output;
}

TEST(BlipEvalCli, TwoProcessesLikeTorchrun) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string dir = blip::test::temp_dir();
  const int port = blip::test::unused_loopback_port();
  auto env = [&](int rank) {
    return "RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) +
           " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " timeout 120 ";
  };
  const std::string args = " --split test --dist-timeout 30 --output-dir " + quote(dir + "/out");
  const auto r = run_command("( " + env(1) + base_args() + args + " > " + quote(dir + "/rank1.log") +
                             " 2>&1; echo $? > " + quote(dir + "/rank1.rc") + " ) & " + env(0) +
                             base_args() + args + "; rc=$?; wait; exit $rc");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Rank 0 writes; rank 1 only computes.
  EXPECT_EQ(read_file(dir + "/rank1.rc"), "0\n") << read_file(dir + "/rank1.log");
  EXPECT_NE(r.output.find("distributed: 2 ranks (torchrun, gloo)"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(dir + "/out/evaluate.txt"),
            blip::eval::evaluate_log_line({{"test", blip_metrics()}}) + "\n");
  std::printf("%s", r.output.c_str());
}

}  // namespace

namespace {

TEST(BlipEvalCli, CheckpointThatDoesNotMatchTheConfigIsAnError) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string out = blip::test::temp_dir() + "/out";
  // The config asks for 3 ViT blocks; the checkpoint has 2: strict loading names what is missing.
  expect_failure("--set vit_depth=3 --split test --output_dir " + quote(out),
                 {"tiny_checkpoint.pth", "visual_encoder.blocks.2"});
  // --non-strict loads what matches (BLIP's load_checkpoint) and reports the rest.
  const auto r = run_command(base_args() + " --set vit_depth=3 --split test --non-strict --output_dir " + quote(out));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("missing"), std::string::npos) << r.output;
}

TEST(BlipEvalCli, KTestLargerThanTheSplitIsClampedAndSaidSo) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string out = blip::test::temp_dir() + "/out";
  const auto r = run_command(base_args() + " --k_test 100 --split test --output_dir " + quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("k_test 100 is larger than the split (12 images, 60 captions): clamped to 60 "
                          "texts per image and 12 images per text"),
            std::string::npos)
      << r.output;
}

}  // namespace

namespace {

std::size_t line_count(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

struct CliCase {
  std::string args;    // @DIR@ is the test's temp dir
  std::string needle;  // the one error line must contain it
};

std::string expand(std::string s, const std::string& dir) {
  for (std::size_t at; (at = s.find("@DIR@")) != std::string::npos;) s.replace(at, 5, dir);
  return s;
}

// Exit 1, one line naming the flag or file, no backtrace, and nothing evaluated: the split line
// ("test: 12 images, ...") and the timing line come only after the model is loaded.
void expect_fast_one_line_failure(const std::string& command, const std::string& dir, const CliCase& c) {
  const auto r = run_command("timeout 60 " + command + " " + expand(c.args, dir));
  EXPECT_EQ(r.exit_code, 1) << c.args << ":\n" << r.output;
  EXPECT_NE(r.output.find(expand(c.needle, dir)), std::string::npos) << c.args << ":\n" << r.output;
  EXPECT_EQ(line_count(r.output), 1u) << c.args << ":\n" << r.output;
  EXPECT_EQ(r.output.find("Exception raised from"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(" images, "), std::string::npos) << c.args << ": evaluated first:\n" << r.output;
  EXPECT_EQ(r.output.find("evaluation"), std::string::npos) << c.args << ": evaluated first:\n" << r.output;
}

// Issue 9, items 4-7: every usage error exits 1 with one line naming the flag and the range.
TEST(BlipEvalCli, UsageErrorTable) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string dir = blip::test::temp_dir();
  std::filesystem::create_directory(dir + "/a_dir");
  std::ofstream(dir + "/huge_med.json") << R"({"hidden_size": 100000, "num_attention_heads": 4})";
  const std::string out = " --output_dir @DIR@/out";
  const std::vector<CliCase> cases = {
      {"--seed -1" + out, "blip_eval: --seed: expected an integer in [0, 4611686018427387904], got '-1'"},
      {"--seed 18446744073709551616" + out, "--seed: expected an integer in [0, 4611686018427387904]"},
      {"--dist-timeout nan" + out, "--dist-timeout: expected a number in (0, 604800], got 'nan'"},
      {"--dist-timeout inf" + out, "--dist-timeout: expected a number in (0, 604800], got 'inf'"},
      {"--dist-timeout 1e300" + out, "--dist-timeout: expected a number in (0, 604800], got '1e300'"},
      {"--dist-timeout 0" + out, "--dist-timeout: expected a number in (0, 604800], got '0'"},
      {"--output_dir ''", "blip_eval: --output_dir: empty path"},
      {"--k_test 0" + out, "--k_test: expected an integer in [1, 2147483648], got '0'"},
      {"--batch_size -2" + out, "--batch_size: expected an integer in [1, 1048576], got '-2'"},
      {"--workers -1" + out, "--workers: expected an integer in [0, 256], got '-1'"},
      {"--threads 0" + out, "--threads: expected an integer in [1, 4096], got '0'"},
      {"--max-token-memory -1" + out, "--max-token-memory: expected a number in (0, 1048576], got '-1'"},
      {"--itm-batch 1.5" + out, "--itm-batch: expected an integer in [1, 1048576], got '1.5'"},
      {"--split train" + out, "--split"},
      {"--no-such-flag" + out, "--no-such-flag"},
      {"--set no_such_key=1" + out,
       "unknown key 'no_such_key' (override) (allowed: image_root, ann_root, dataset, pretrained, vit, "},
      {"--set image_size=16000" + out,
       "key 'image_size' must be a multiple of the patch size (16) in [16, 4096], got 16000"},
      {"--set vit_width=100000" + out, "key 'vit_width' must lie in [1, 16384], got 100000"},
      {"--vocab /dev/zero" + out, "/dev/zero: is not a regular file (a character device); expected a vocabulary file"},
      {"--vocab @DIR@/a_dir/x.txt" + out, "@DIR@/a_dir/x.txt: vocabulary file not found"},
      {"--set med_config=@DIR@/huge_med.json" + out, "key 'hidden_size' must lie in [1, 16384], got 100000"},
      {"--set med_config=@DIR@/a_dir" + out, "med_config: @DIR@/a_dir: is a directory, not a med config file"},
  };
  for (const auto& c : cases) expect_fast_one_line_failure(base_args(), dir, c);
  for (const auto& c : std::vector<CliCase>{
           {"--config @DIR@/a_dir" + out, "@DIR@/a_dir: is a directory, not a config file"},
           {"--config /dev/zero" + out, "/dev/zero: is not a regular file (a character device); expected a config file"},
       })
    expect_fast_one_line_failure(tool() + " --threads 1 --quiet", dir, c);
  // The hint lists the keys, not a C++ type.
  const auto r = run_command(base_args() + " --set no_such_key=1 --output_dir " + quote(dir + "/out"));
  EXPECT_EQ(r.output.find("blip::"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("vit_patch_size)"), std::string::npos) << r.output;
  const auto help = run_command(tool() + " --help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_NE(help.output.find("--save-scores"), std::string::npos) << help.output;
}

// Issue 9, item 3: an output directory that cannot be written is found before any compute.
TEST(BlipEvalCli, UnwritableOutputDirFailsBeforeComputing) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string dir = blip::test::temp_dir();
  std::ofstream(dir + "/a_file") << "x";
  // Below a regular file: no one can create it, root included (permission bits do not stop root).
  expect_fast_one_line_failure(base_args() + " --save-scores", dir,
                               {"--output_dir @DIR@/a_file/sub",
                                "blip_eval: error: @DIR@/a_file/sub: cannot create the directory: Not a directory"});
  expect_fast_one_line_failure(base_args(), dir,
                               {"--output_dir @DIR@/a_file", "@DIR@/a_file: exists and is not a directory"});
  EXPECT_EQ(read_file(dir + "/a_file"), "x");
}

// Issue 9, item 3: when a write fails after the evaluation, the metrics are printed first.
TEST(BlipEvalCli, FailedWritesComeAfterTheMetricsTable) {
  BLIP_REQUIRE_FIXTURES();
  skip_without_tool();
  const std::string out = blip::test::temp_dir() + "/out";
  // Directories where the score file and the log go: the directory itself is writable.
  std::filesystem::create_directories(out + "/scores_test.safetensors");
  std::filesystem::create_directories(out + "/evaluate.txt");
  const auto r = run_command(base_args() + " --split test --save-scores --output_dir " + quote(out));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const auto table = r.output.find("txt_r_mean");
  const auto score_error = r.output.find("blip_eval: error: " + out +
                                         "/scores_test.safetensors: is not a regular file (a directory)");
  const auto log_error = r.output.find("blip_eval: error: " + out + "/evaluate.txt");
  ASSERT_NE(table, std::string::npos) << r.output;
  ASSERT_NE(score_error, std::string::npos) << r.output;
  ASSERT_NE(log_error, std::string::npos) << r.output;
  EXPECT_LT(table, score_error) << r.output;
  EXPECT_LT(table, log_error) << r.output;
  // BLIP's metrics are in the table (r_mean 33.33 on this fixture's test split).
  EXPECT_NE(r.output.find("33.33"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Exception raised from"), std::string::npos) << r.output;
}

}  // namespace
