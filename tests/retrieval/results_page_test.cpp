// The HTML results page: references, escaping, the atomic write, and a render in headless
// Chromium that checks every thumbnail resolves (and that a missing one is counted as missing).
#include "blip/retrieval/results_page.h"

#include "blip/image/decode.h"
#include "common/expect_error.h"
#include "common/fixtures.h"
#include "common/run_command.h"

#include <gtest/gtest.h>

#ifdef BLIP_WITH_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace blip::retrieval;

namespace {

std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

SearchHit hit(std::int64_t rank, std::string label, float itc, std::optional<float> itm) {
  SearchHit h;
  h.rank = rank;
  h.label = std::move(label);
  h.itc = itc;
  h.itm = itm;
  h.score = itm ? *itm + itc : itc;
  return h;
}

// The escaping case: text that would run a script or add an image if it reached the page as HTML.
const char* kHostileCaption =
    "<script>document.body.dataset.pwned='1'</script><img src=x onerror=\"document.title='pwned'\"> & co";

TEST(ResultsPage, ImageReferences) {
  EXPECT_EQ(image_reference("/data/photos/a.jpg", "/data/page"), "../photos/a.jpg");
  EXPECT_EQ(image_reference("/data/page/x/a.jpg", "/data/page/"), "x/a.jpg");
  EXPECT_EQ(image_reference("/data/page/./x/../b c#1?.png", "/data/page"), "b%20c%231%3F.png");
  // Non-ASCII names are percent-encoded UTF-8 bytes; ':' cannot be read as a scheme.
  EXPECT_EQ(image_reference("/p/\xC3\xBC:100%.jpg", "/p"), "%C3%BC%3A100%25.jpg");
  // Relative image paths are relative to the current directory, as the page folder is.
  const std::string cwd = fs::current_path().string();
  EXPECT_EQ(image_reference("img/a.png", "out"), "../img/a.png");
  EXPECT_EQ(image_reference(cwd + "/img/a.png", "."), "img/a.png");
  EXPECT_EQ(image_reference("", "."), "");
}

TEST(ResultsPage, EscapesTextAndShowsScores) {
  QueryResults text_query;
  text_query.query = "a <b>bold</b> \"dog\" & 'cat'";
  text_query.hits = {hit(1, "/img/dog.jpg", 0.4567f, 2.5f), hit(2, "/img/cat.jpg", 0.25f, std::nullopt)};
  QueryResults image_query;
  image_query.query = "/img/query.png";
  image_query.image_query = true;
  image_query.kind = ResultKind::kCaption;
  image_query.hits = {hit(1, kHostileCaption, 0.5f, 1.0f)};
  ResultsPageOptions options;
  options.title = "Search <results>";
  options.info = {{"index", "a&b.idx"}};
  options.thumbnail_px = 123;

  const std::string html = render_results_page({text_query, image_query}, "/img", options);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(count_of(html, "<script"), 1u) << "only the page's own script";
  EXPECT_EQ(count_of(html, "<img "), 3u) << "2 result thumbnails and the query image";
  EXPECT_EQ(count_of(html, "onerror"), 1u);  // the caption's, as text
  EXPECT_NE(html.find("&lt;script&gt;document.body.dataset.pwned=&#39;1&#39;&lt;/script&gt;"
                      "&lt;img src=x onerror=&quot;document.title=&#39;pwned&#39;&quot;&gt; &amp; co"),
            std::string::npos);
  EXPECT_NE(html.find("a &lt;b&gt;bold&lt;/b&gt; &quot;dog&quot; &amp; &#39;cat&#39;"), std::string::npos);
  EXPECT_NE(html.find("<title>Search &lt;results&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("a&amp;b.idx"), std::string::npos);
  EXPECT_NE(html.find("--thumb:123px"), std::string::npos);
  EXPECT_NE(html.find("src=\"dog.jpg\""), std::string::npos);
  EXPECT_NE(html.find("src=\"query.png\""), std::string::npos);
  for (const char* s : {"#1", "#2", "0.4567", "2.5000", "2.9567", "0.2500", ">-<", "1.5000"})
    EXPECT_NE(html.find(s), std::string::npos) << s;
  EXPECT_EQ(html.find("data-images-loaded="), std::string::npos) << "set only by the script";
  EXPECT_EQ(html.find("http"), std::string::npos) << "self-contained";

  blip::test::expect_error([] { render_results_page({}, ".", ResultsPageOptions{"t", {}, 0}); },
                           {"thumbnail", "0"});
}

TEST(ResultsPage, WriteIsAtomicAndNamesTheFile) {
  const std::string dir = blip::test::temp_dir();
  QueryResults q;
  q.query = "x";
  q.hits = {hit(1, dir + "/a.png", 0.5f, std::nullopt)};
  write_results_page(dir + "/page.html", {q});
  q.query = "y";
  write_results_page(dir + "/page.html", {q});
  EXPECT_EQ(read_all(dir + "/page.html"), render_results_page({q}, dir));
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.path().filename() == "page.html" ? 1 : 100;
  EXPECT_EQ(files, 1u) << "no temporary file left";
  blip::test::expect_error([&] { write_results_page(dir + "/missing/page.html", {q}); },
                           {"missing/page.html"});
}

// ---- headless Chromium ----

std::string find_browser() {
  for (const char* c : {"chromium", "chromium-browser", "google-chrome"})
    if (blip::test::run_command(std::string("command -v ") + c + " >/dev/null").exit_code == 0) return c;
  return "";
}

std::string chromium_command(const std::string& browser, const std::string& profile_dir) {
  // --virtual-time-budget lets the page finish loading (and the script run) before the dump.
  return "timeout 120 " + browser + " --headless --no-sandbox --disable-gpu --hide-scrollbars " +
         "--allow-file-access-from-files --virtual-time-budget=10000 --user-data-dir=" +
         blip::test::quote(profile_dir) + " ";
}

// The <body> tag's data-images-loaded value in a dumped DOM, or "(absent)".
std::string images_loaded(const std::string& dom) {
  std::smatch m;
  if (std::regex_search(dom, m, std::regex("<body[^>]*data-images-loaded=\"([^\"]*)\""))) return m[1];
  return "(absent)";
}

struct Colour {
  int r, g, b;
};
constexpr Colour kColours[] = {{230, 20, 20}, {20, 180, 40}, {30, 60, 220}, {240, 200, 0}};

#ifdef BLIP_WITH_OPENCV
// A 96x64 image of one colour with a dark stripe, as PNG or JPEG (by the extension).
void write_test_image(const std::string& path, Colour c) {
  cv::Mat img(64, 96, CV_8UC3, cv::Scalar(c.b, c.g, c.r));
  img.rowRange(28, 36).setTo(cv::Scalar(20, 20, 20));
  ASSERT_TRUE(cv::imwrite(path, img)) << path;
}
#endif

class ResultsPageChromium : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef BLIP_WITH_OPENCV
    GTEST_SKIP() << "this build has no OpenCV to write the test images";
#else
    browser_ = find_browser();
    if (browser_.empty()) GTEST_SKIP() << "no chromium installed; skipping the browser rendering check";
    dir_ = blip::test::temp_dir();
    // Names that need percent-encoding, in a folder beside the page's (references go up a level).
    fs::create_directories(dir_ + "/images/sub dir");
    fs::create_directories(dir_ + "/page");
    images_ = {dir_ + "/images/red #1.png", dir_ + "/images/sub dir/gr\xC3\xBCn 100%.jpg",
               dir_ + "/images/blue?.png", dir_ + "/images/yellow.jpeg"};
    for (std::size_t i = 0; i < images_.size(); ++i) write_test_image(images_[i], kColours[i]);
#endif
  }

  // Two queries: a text query over three of the images and an image query (the fourth image)
  // returning captions, one of them hostile.
  std::vector<QueryResults> queries(const std::string& third_image) const {
    QueryResults text_query;
    text_query.query = "something <red> & bright";
    text_query.hits = {hit(1, images_[0], 0.61f, 4.5f), hit(2, images_[1], 0.42f, 1.25f),
                       hit(3, third_image, 0.30f, -2.0f)};
    QueryResults image_query;
    image_query.query = images_[3];
    image_query.image_query = true;
    image_query.kind = ResultKind::kCaption;
    image_query.hits = {hit(1, "a yellow square", 0.7f, std::nullopt), hit(2, kHostileCaption, 0.1f, std::nullopt)};
    return {text_query, image_query};
  }

  std::string dump_dom(const std::string& html, const std::string& name) const {
    const auto r = blip::test::run_command(chromium_command(browser_, dir_ + "/profile-" + name) +
                                           "--dump-dom " + blip::test::quote("file://" + html) +
                                           " 2>" + blip::test::quote(dir_ + "/" + name + ".log"));
    EXPECT_EQ(r.exit_code, 0) << read_all(dir_ + "/" + name + ".log");
    return r.output;
  }

  std::string browser_, dir_;
  std::vector<std::string> images_;
};

TEST_F(ResultsPageChromium, AllThumbnailsLoadAndScreenshotShowsThem) {
  const std::string html = dir_ + "/page/results.html";
  write_results_page(html, queries(images_[2]));
  EXPECT_NE(read_all(html).find("../images/sub%20dir/gr%C3%BCn%20100%25.jpg"), std::string::npos);

  const std::string dom = dump_dom(html, "ok");
  ASSERT_NE(dom.find("</html>"), std::string::npos) << "no DOM dumped:\n" << dom;
  EXPECT_EQ(images_loaded(dom), "4/4") << dom;  // three results and the query image
  // The hostile caption stayed text: its script did not run and its <img> does not exist.
  EXPECT_EQ(dom.find("data-pwned"), std::string::npos);
  EXPECT_EQ(dom.find("<title>pwned"), std::string::npos);
  EXPECT_NE(dom.find("&lt;script&gt;document.body.dataset.pwned"), std::string::npos);
  EXPECT_EQ(count_of(dom, "class=\"thumb missing\""), 0u);

  const std::string png = dir_ + "/page.png";
  const auto r = blip::test::run_command(chromium_command(browser_, dir_ + "/profile-shot") +
                                         "--screenshot=" + blip::test::quote(png) +
                                         " --window-size=1000,900 " + blip::test::quote("file://" + html));
  ASSERT_TRUE(fs::exists(png)) << "chromium exited " << r.exit_code << ":\n" << r.output;
  EXPECT_GT(fs::file_size(png), 10000u);
  if (!blip::image::have_image_decoder()) return;
  const blip::image::ImageU8 shot = blip::image::decode_image_file(png);
  EXPECT_EQ(shot.width, 1000);
  EXPECT_EQ(shot.height, 900);
  // Each test image's colour fills a good part of its thumbnail (160 px wide, 2:3 aspect).
  for (const Colour& c : kColours) {
    std::size_t n = 0;
    for (std::size_t i = 0; i + 2 < shot.pixels.size(); i += 3) {
      const std::uint8_t* p = &shot.pixels[i];
      n += std::abs(p[0] - c.r) + std::abs(p[1] - c.g) + std::abs(p[2] - c.b) < 40;
    }
    EXPECT_GT(n, 3000u) << "colour " << c.r << "," << c.g << "," << c.b << " not visible";
  }
}

TEST_F(ResultsPageChromium, MissingImageIsCounted) {
  const std::string html = dir_ + "/page/results.html";
  write_results_page(html, queries(dir_ + "/images/deleted.png"));
  const std::string dom = dump_dom(html, "missing");
  ASSERT_NE(dom.find("</html>"), std::string::npos) << "no DOM dumped:\n" << dom;
  EXPECT_EQ(images_loaded(dom), "3/4") << dom;
  EXPECT_EQ(count_of(dom, "missing\""), 1u) << "the broken thumbnail is marked";
}

}  // namespace
