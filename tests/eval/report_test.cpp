// evaluate.txt lines byte-identical to Python's json.dumps, the metrics table, the score-matrix
// files, and the progress bar's text.
#include <gtest/gtest.h>

#include "blip/error.h"
#include "blip/eval/progress.h"
#include "blip/eval/report.h"
#include "blip/io/safetensors.h"
#include "common/fixtures.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

namespace {

using namespace blip::eval;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

RetrievalMetrics fixture_like_metrics() {
  RetrievalMetrics m;
  m.txt_r1 = 0.0;
  m.txt_r5 = 25.0;
  m.txt_r10 = 75.0;
  m.txt_r_mean = (m.txt_r1 + m.txt_r5 + m.txt_r10) / 3;
  m.img_r1 = 100.0 * 7 / 60;
  m.img_r5 = 100.0 * 24 / 60;
  m.img_r10 = 100.0 * 50 / 60;
  m.img_r_mean = (m.img_r1 + m.img_r5 + m.img_r10) / 3;
  m.r_mean = (m.txt_r_mean + m.img_r_mean) / 2;
  return m;
}

TEST(Report, PythonFloatReprKnownValues) {
  EXPECT_EQ(python_float_repr(0.0), "0.0");
  EXPECT_EQ(python_float_repr(-0.0), "-0.0");
  EXPECT_EQ(python_float_repr(25.0), "25.0");
  EXPECT_EQ(python_float_repr(100.0), "100.0");
  EXPECT_EQ(python_float_repr(100.0 / 3), "33.333333333333336");
  EXPECT_EQ(python_float_repr(100.0 * 7 / 60), "11.666666666666666");
  EXPECT_EQ(python_float_repr(0.1), "0.1");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
  EXPECT_EQ(python_float_repr(0.00001), "1e-05");
  EXPECT_EQ(python_float_repr(1.5e-7), "1.5e-07");
  EXPECT_EQ(python_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(python_float_repr(1e16), "1e+16");
  EXPECT_EQ(python_float_repr(1.2345e22), "1.2345e+22");
  EXPECT_EQ(python_float_repr(5e-324), "5e-324");
  EXPECT_EQ(python_float_repr(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(python_float_repr(-std::numeric_limits<double>::infinity()), "-Infinity");
}

TEST(Report, PythonFloatReprMatchesPythonOnRandomValues) {
  if (std::system("/usr/bin/python3 -c pass >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 not available";
  std::mt19937_64 rng(7);
  std::vector<double> values;
  for (int i = 0; i < 300; ++i) {
    double v;
    std::uint64_t bits = rng();
    std::memcpy(&v, &bits, sizeof v);
    if (std::isfinite(v)) values.push_back(v);
    values.push_back(100.0 * static_cast<double>(rng() % 5000) / static_cast<double>(1 + rng() % 5000));
    values.push_back(std::ldexp(static_cast<double>(rng() % 1000), static_cast<int>(rng() % 80) - 40));
  }
  const std::string dir = blip::test::temp_dir();
  {
    std::ofstream f(dir + "/v.bin", std::ios::binary);
    f.write(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double));
  }
  const std::string cmd = "/usr/bin/python3 -c \"import struct,sys,json; b=open('" + dir +
                          "/v.bin','rb').read(); print('\\n'.join(json.dumps(x) for x in "
                          "struct.unpack('<%dd' % (len(b)//8), b)))\" > " + dir + "/out.txt";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::istringstream lines(read_file(dir + "/out.txt"));
  std::string line;
  std::size_t i = 0, diffs = 0;
  for (; std::getline(lines, line) && i < values.size(); ++i)
    if (line != python_float_repr(values[i])) {
      ++diffs;
      ADD_FAILURE() << "python " << line << " vs ours " << python_float_repr(values[i]);
    }
  EXPECT_EQ(i, values.size());
  std::printf("python_float_repr: %zu values compared with json.dumps, %zu differ\n", i, diffs);
}

TEST(Report, EvaluateLogLineIsBlipsJson) {
  const RetrievalMetrics m = fixture_like_metrics();
  const std::string line = evaluate_log_line({{"val", m}, {"test", m}});
  const std::string one =
      "\"_txt_r1\": 0.0, \"_txt_r5\": 25.0, \"_txt_r10\": 75.0, \"_txt_r_mean\": "
      "33.333333333333336, \"_img_r1\": 11.666666666666666, \"_img_r5\": 40.0, \"_img_r10\": "
      "83.33333333333333, \"_img_r_mean\": 45.0, \"_r_mean\": 39.16666666666667";
  auto with_prefix = [&](const std::string& p) {
    std::string s = one;
    for (std::size_t pos = 0; (pos = s.find("\"_", pos)) != std::string::npos; pos += p.size() + 2)
      s.replace(pos, 2, "\"" + p + "_");
    return s;
  };
  EXPECT_EQ(line, "{" + with_prefix("val") + ", " + with_prefix("test") + "}");

  // Appending, as BLIP opens evaluate.txt with mode "a".
  const std::string dir = blip::test::temp_dir() + "/out/nested";
  const std::string path = append_evaluate_log(dir, {{"val", m}, {"test", m}});
  append_evaluate_log(dir, {{"val", m}, {"test", m}});
  EXPECT_EQ(read_file(path), line + "\n" + line + "\n");
}

TEST(Report, EvaluateLogLineMatchesPythonJsonDumps) {
  if (std::system("/usr/bin/python3 -c pass >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 not available";
  const RetrievalMetrics m = fixture_like_metrics();
  std::string script = "import json\nv = {}\n";
  for (const auto& [k, x] : m.items()) script += "v['" + k + "'] = float.fromhex('" + [&] {
      char b[64];
      std::snprintf(b, sizeof b, "%a", x);
      return std::string(b);
    }() + "')\n";
  script +=
      "print(json.dumps({**{f'val_{k}': x for k, x in v.items()}, **{f'test_{k}': x for k, x in "
      "v.items()}}))\n";
  const std::string dir = blip::test::temp_dir();
  std::ofstream(dir + "/s.py") << script;
  ASSERT_EQ(std::system(("/usr/bin/python3 " + dir + "/s.py > " + dir + "/o.txt").c_str()), 0);
  EXPECT_EQ(read_file(dir + "/o.txt"), evaluate_log_line({{"val", m}, {"test", m}}) + "\n");
}

TEST(Report, MetricsTable) {
  const std::string table = format_metrics_table({{"val", fixture_like_metrics()}});
  std::printf("%s", table.c_str());
  EXPECT_NE(table.find("txt_r1"), std::string::npos);
  EXPECT_NE(table.find("r_mean"), std::string::npos);
  EXPECT_NE(table.find("33.33"), std::string::npos);
  EXPECT_NE(table.find("83.33"), std::string::npos);
  EXPECT_EQ(table.find("val"), table.find('\n') + 1);
}

TEST(Report, ScoreMatricesRoundTrip) {
  const std::string dir = blip::test::temp_dir() + "/scores";
  const at::Tensor i2t = at::randn({3, 7}, at::kDouble);
  const at::Tensor t2i = at::randn({7, 3});
  const std::string path = save_score_matrices(dir, "test", i2t, t2i);
  EXPECT_EQ(path, dir + "/scores_test.safetensors");
  const auto loaded = blip::io::load_safetensors(path);
  ASSERT_EQ(loaded.size(), 2u);
  for (const auto& [name, t] : loaded) {
    EXPECT_EQ(t.scalar_type(), at::kFloat);
    const at::Tensor& ref = name == "score_matrix_i2t" ? i2t : t2i;
    EXPECT_TRUE(at::equal(t, ref.to(at::kFloat))) << name;
  }
  try {
    save_score_matrices(dir, "val", i2t, i2t);
    ADD_FAILURE() << "no error for mismatched shapes";
  } catch (const blip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("scores_val.safetensors"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("[3, 7] and [3, 7]"), std::string::npos) << e.what();
  }
}

TEST(Progress, LineFormat) {
  EXPECT_EQ(format_progress_line("images", 25, 100, 5.0),
            "images  [#####...............]  25/100  5.0 it/s  ETA 00:15");
  EXPECT_EQ(format_progress_line("i2t", 100, 100, 3730.0),
            "i2t  [####################] 100/100  37.3 s/it  in 1:02:10");
  EXPECT_EQ(format_progress_line("t2i", 1, 10, 4.0),
            "t2i  [##..................]  1/10  4.0 s/it  ETA 00:36");
  EXPECT_EQ(format_progress_line("texts", 3, 0, 1.0), "texts  3 items  3.0 it/s  00:01");
}

TEST(Progress, DisabledPrintsNothingEnabledDrawsAndEndsLine) {
  std::ostringstream off, on;
  {
    ProgressBar bar("quiet stage", 5, false, off);
    for (int i = 0; i < 5; ++i) bar.advance();
    EXPECT_EQ(bar.done(), 5);
  }
  EXPECT_TRUE(off.str().empty());
  {
    ProgressBar bar("stage", 5, true, on);
    bar.advance(5);
  }
  const std::string s = on.str();
  EXPECT_EQ(s.front(), '\r');
  EXPECT_EQ(s.back(), '\n');
  EXPECT_NE(s.find("5/5"), std::string::npos) << s;
  // Under ctest stderr is not a terminal, so a default bar is off; --quiet always turns it off.
  EXPECT_FALSE(progress_enabled(true));
}

}  // namespace
