#include "blip/train/report_html.h"

#include "blip/image/decode.h"
#include "common/expect_error.h"
#include "common/fixtures.h"
#include "common/run_command.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace blip::train {
namespace {

std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

eval::RetrievalMetrics metrics(double base) {
  eval::RetrievalMetrics m;
  m.txt_r1 = base, m.txt_r5 = base + 8, m.txt_r10 = base + 10;
  m.img_r1 = base - 10, m.img_r5 = base + 2, m.img_r10 = base + 6;
  m.txt_r_mean = (m.txt_r1 + m.txt_r5 + m.txt_r10) / 3;
  m.img_r_mean = (m.img_r1 + m.img_r5 + m.img_r10) / 3;
  m.r_mean = (m.txt_r_mean + m.img_r_mean) / 2;
  return m;
}

// A plausible run: `epochs` epochs of `per_epoch` steps, decaying losses, cosine-like lr, an
// evaluation per epoch and test metrics only when val improved (as BLIP does).
TrainHistory sample_history(int epochs, int per_epoch) {
  TrainHistory h;
  std::int64_t step = 0;
  double best = -1;
  for (int e = 0; e < epochs; ++e) {
    for (int i = 0; i < per_epoch; ++i) {
      ++step;
      const double t = static_cast<double>(step) / (epochs * per_epoch);
      StepPoint p;
      p.step = step;
      p.epoch = e + (i + 1.0) / per_epoch;
      p.loss_ita = 2.0 + 4.0 * std::exp(-5 * t) + 0.2 * std::sin(step * 0.7);
      p.loss_itm = 0.2 + 0.4 * std::exp(-3 * t) + 0.05 * std::cos(step * 0.3);
      p.lr = 1e-5 * 0.5 * (1 + std::cos(3.14159265358979 * e / epochs));
      p.images_per_s = 400 + 20 * std::sin(step * 0.1);
      h.steps.push_back(p);
    }
    EpochPoint ep;
    ep.epoch = e;
    ep.step = step;
    ep.val = metrics(80 + 3 * e - (e == 2 ? 5 : 0));
    if (ep.val.r_mean > best) {
      best = ep.val.r_mean;
      ep.has_test = true;
      ep.test = metrics(81 + 3 * e);
    }
    h.epochs.push_back(ep);
  }
  return h;
}

ReportInfo sample_info() {
  ReportInfo info;
  info.title = "Retrieval <flickr> & \"co\"";
  info.config_path = "configs/retrieval_flickr.yaml";
  info.dataset = "flickr30k";
  info.precision = "bf16";
  info.device = "cuda (NVIDIA H200)";
  info.world_size = 8;
  info.elapsed_s = 3723.4;
  info.extra = {{"batch size", "32 x 8"}, {"note", "<script>alert(1)</script>"}};
  return info;
}

void expect_same(const TrainHistory& a, const TrainHistory& b) {
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (std::size_t i = 0; i < a.steps.size(); ++i) {
    EXPECT_EQ(a.steps[i].step, b.steps[i].step);
    const double av[] = {a.steps[i].epoch, a.steps[i].loss_ita, a.steps[i].loss_itm, a.steps[i].lr,
                         a.steps[i].images_per_s};
    const double bv[] = {b.steps[i].epoch, b.steps[i].loss_ita, b.steps[i].loss_itm, b.steps[i].lr,
                         b.steps[i].images_per_s};
    for (int k = 0; k < 5; ++k) {
      if (std::isnan(av[k])) {
        EXPECT_TRUE(std::isnan(bv[k])) << i << "/" << k;
      } else {
        EXPECT_EQ(av[k], bv[k]) << i << "/" << k;  // bit-exact through JSON
      }
    }
  }
  ASSERT_EQ(a.epochs.size(), b.epochs.size());
  for (std::size_t i = 0; i < a.epochs.size(); ++i) {
    EXPECT_EQ(a.epochs[i].epoch, b.epochs[i].epoch);
    EXPECT_EQ(a.epochs[i].step, b.epochs[i].step);
    EXPECT_EQ(a.epochs[i].has_test, b.epochs[i].has_test);
    EXPECT_EQ(a.epochs[i].val.items(), b.epochs[i].val.items());
    if (a.epochs[i].has_test) {
      EXPECT_EQ(a.epochs[i].test.items(), b.epochs[i].test.items());
    }
  }
}

TEST(TrainHistory, JsonRoundTripIsExactThroughText) {
  TrainHistory h = sample_history(3, 7);
  h.steps[4].loss_itm = std::numeric_limits<double>::quiet_NaN();  // a diverged step
  const nlohmann::json j = h.to_json();
  EXPECT_TRUE(j["steps"]["loss_itm"][4].is_null());
  const TrainHistory back = TrainHistory::from_json(nlohmann::json::parse(j.dump()));
  ASSERT_EQ(back.steps.size(), 21u);
  ASSERT_EQ(back.epochs.size(), 3u);
  expect_same(h, back);
  EXPECT_TRUE(back.epochs[0].has_test);
  EXPECT_FALSE(back.epochs[2].has_test);  // val dropped in epoch 2: no fresh test numbers
}

TEST(TrainHistory, MalformedJsonNamesTheKey) {
  const nlohmann::json good = sample_history(2, 3).to_json();
  nlohmann::json j = good;
  j["steps"]["lr"].erase(0);
  test::expect_error([&] { TrainHistory::from_json(j); }, {"train history", "steps.lr", "(6)"});
  j = good;
  j["epochs"][1]["val"].erase("r_mean");
  test::expect_error([&] { TrainHistory::from_json(j); }, {"epochs[1].val.r_mean"});
  j = good;
  j["version"] = 99;
  test::expect_error([&] { TrainHistory::from_json(j); }, {"version 99"});
  j = good;
  j["steps"]["step"][0] = "one";
  test::expect_error([&] { TrainHistory::from_json(j); }, {"steps.step[0]", "integer"});
  test::expect_error([&] { TrainHistory::from_json(nlohmann::json::array()); }, {"object"});
}

TEST(TrainHistory, TruncateAfterDropsLaterPoints) {
  TrainHistory h = sample_history(3, 10);  // epochs evaluated after steps 10, 20, 30
  h.truncate_after(20);
  ASSERT_EQ(h.steps.size(), 20u);
  EXPECT_EQ(h.steps.back().step, 20);
  ASSERT_EQ(h.epochs.size(), 2u);
  EXPECT_EQ(h.epochs.back().step, 20);
  h.truncate_after(15);
  EXPECT_EQ(h.steps.size(), 15u);
  EXPECT_EQ(h.epochs.size(), 1u);
  h.truncate_after(-1);
  EXPECT_TRUE(h.steps.empty());
  EXPECT_TRUE(h.epochs.empty());
}

TEST(ReportHtml, SelfContainedEscapedAndComplete) {
  const std::string html = render_report_html(sample_history(4, 25), sample_info());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  // loss, lr, val recall, test recall, throughput
  EXPECT_EQ(count_of(html, "<svg "), 5u);
  EXPECT_EQ(count_of(html, "</svg>"), 5u);
  EXPECT_EQ(count_of(html, "http"), 0u);
  EXPECT_EQ(count_of(html, "src="), 0u);
  EXPECT_EQ(count_of(html, "href="), 0u);
  EXPECT_EQ(count_of(html, "url("), 0u);
  EXPECT_EQ(count_of(html, "<script"), 0u);  // the note's <script> was escaped
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("Retrieval &lt;flickr&gt; &amp; &quot;co&quot;"), std::string::npos);
  EXPECT_EQ(html.find("<flickr>"), std::string::npos);
  for (const char* s : {"configs/retrieval_flickr.yaml", "flickr30k", "bf16", "NVIDIA H200",
                        "1:02:03", "loss_ita", "loss_itm", "txt_r1", "img_r1", "r_mean",
                        "Learning rate", "images / s", "32 x 8"})
    EXPECT_NE(html.find(s), std::string::npos) << s;
  // Every epoch is a table row; the best one (epoch 3: highest val r_mean) is highlighted.
  EXPECT_EQ(count_of(html, "<tr class=\"best\"><td>3</td>"), 1u);
  // Learning-rate ticks are readable numbers, not 0.000000.
  EXPECT_NE(html.find(">1e-5<"), std::string::npos);
}

TEST(ReportHtml, WithoutTestOrStepsStillRenders) {
  TrainHistory h;
  std::string html = render_report_html(h, ReportInfo{});
  EXPECT_EQ(count_of(html, "<svg "), 4u);  // no test chart
  EXPECT_EQ(count_of(html, "no data yet"), 4u);
  h.epochs.push_back({0, 0, metrics(50), false, {}});  // a single evaluation point
  html = render_report_html(h, ReportInfo{});
  EXPECT_EQ(count_of(html, "<svg "), 4u);
  EXPECT_EQ(count_of(html, "no data yet"), 3u);
  EXPECT_GE(count_of(html, "<circle "), 5u);  // a lone point is drawn as a dot per curve
}

TEST(ReportHtml, LongRunsAreThinnedButKeepSpikes) {
  TrainHistory h = sample_history(10, 20000);  // 200k steps
  h.steps[123457].loss_ita = 50.0;             // one spike
  const std::string html = render_report_html(h, ReportInfo{});
  EXPECT_LT(html.size(), 400u * 1024) << "report should stay small";
  // Each curve's path has at most kMaxPointsPerCurve vertices.
  std::size_t paths = 0;
  for (std::size_t at = html.find("<path d=\""); at != std::string::npos;
       at = html.find("<path d=\"", at + 1)) {
    const std::string d = html.substr(at, html.find('"', at + 9) - at);
    EXPECT_LE(count_of(d, "L") + count_of(d, "M"), kMaxPointsPerCurve);
    ++paths;
  }
  EXPECT_EQ(paths, 2u + 1 + 5 + 5 + 1);
  // The spike still sets the loss axis: its top tick is 50.
  EXPECT_NE(html.find(">50</text>"), std::string::npos);
}

TEST(ReportHtml, WriteIsAtomic) {
  const std::string dir = test::temp_dir();
  const std::string path = dir + "/report.html";
  write_report_html(path, sample_history(2, 5), sample_info());
  write_report_html(path, sample_history(3, 5), sample_info());  // replaces
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), render_report_html(sample_history(3, 5), sample_info()));
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.path().filename() == "report.html" ? 1 : 100;
  EXPECT_EQ(files, 1u);
  test::expect_error([&] { write_report_html(dir + "/missing/report.html", {}, {}); },
                     {"missing/report.html"});
}

// Renders the report in headless Chromium and checks the screenshot shows the charts.
TEST(ReportHtml, RendersInHeadlessChromium) {
  const char* candidates[] = {"chromium", "chromium-browser", "google-chrome"};
  std::string browser;
  for (const char* c : candidates)
    if (test::run_command(std::string("command -v ") + c + " >/dev/null").exit_code == 0) {
      browser = c;
      break;
    }
  if (browser.empty()) GTEST_SKIP() << "no chromium installed; skipping the browser rendering check";
  if (!image::have_image_decoder()) GTEST_SKIP() << "this build cannot decode PNG (no OpenCV)";

  const std::string dir = test::temp_dir();
  const std::string html = dir + "/report.html", png = dir + "/report.png";
  write_report_html(html, sample_history(6, 400), sample_info());
  const auto r = test::run_command(
      "timeout 120 " + browser + " --headless --no-sandbox --disable-gpu --hide-scrollbars " +
      "--user-data-dir=" + test::quote(dir + "/profile") + " --screenshot=" + test::quote(png) +
      " --window-size=1200,1600 " + test::quote("file://" + html));
  ASSERT_TRUE(fs::exists(png)) << "chromium exited " << r.exit_code << ":\n" << r.output;
  EXPECT_GT(fs::file_size(png), 20000u);

  const image::ImageU8 img = image::decode_image_file(png);
  EXPECT_EQ(img.width, 1200);
  EXPECT_EQ(img.height, 1600);
  std::set<std::uint32_t> colours;
  std::size_t ita = 0, itm = 0;  // pixels in the two loss colours (#1f77b4, #d62728)
  const auto near = [](const std::uint8_t* p, int r, int g, int b) {
    return std::abs(p[0] - r) + std::abs(p[1] - g) + std::abs(p[2] - b) < 40;
  };
  for (std::size_t i = 0; i + 2 < img.pixels.size(); i += 3) {
    const std::uint8_t* p = &img.pixels[i];
    colours.insert((std::uint32_t{p[0]} << 16) | (p[1] << 8) | p[2]);
    ita += near(p, 0x1f, 0x77, 0xb4);
    itm += near(p, 0xd6, 0x27, 0x28);
  }
  EXPECT_GT(colours.size(), 50u) << "screenshot looks blank";
  EXPECT_GT(ita, 500u) << "loss_ita curve not visible";
  EXPECT_GT(itm, 500u) << "loss_itm curve not visible";
}

}  // namespace
}  // namespace blip::train
