// blip_index + blip_search as a user runs them, against blip_extract's features of the same images
// and captions: the ranking must be the ITC similarity's (and with --rerank, itm_logit[:, 1] + itc,
// BLIP's evaluation score), the index incremental, bad images skipped and reported.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "blip/io/safetensors.h"
#include "blip/retrieval/image_index.h"
#include "common/fixtures.h"
#include "common/run_command.h"
#include "common/worker_process.h"

namespace fs = std::filesystem;
using blip::test::blip_ref_dir;
using blip::test::quote;
using blip::test::run_command;

namespace {

// Float32 sums in another order (trimmed padding in the ITM) move scores by ~1e-6.
constexpr float kScoreTolerance = 1e-5f;

const std::vector<std::string> kCaptions = {"a man riding a wave on a surfboard", "two dogs play in the snow",
                                            "a red car parked on the street", "a plate of food on a table",
                                            "a black and white photo of a building"};

std::string tool(const std::string& name) { return std::string(BLIP_BINARY_DIR) + "/tools/" + name; }
std::string config() { return quote(blip_ref_dir() + "/tiny_config.yaml"); }

// The fixture images (not decoded/), copied to a fresh folder; returns their sorted absolute paths.
std::vector<std::string> copy_images(const std::string& dir, std::size_t count = 100) {
  fs::create_directories(dir);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(blip_ref_dir() + "/images"))
    if (e.is_regular_file()) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < names.size() && i < count; ++i) {
    fs::copy_file(blip_ref_dir() + "/images/" + names[i], dir + "/" + names[i]);
    out.push_back(fs::absolute(dir + "/" + names[i]).lexically_normal().string());
  }
  return out;
}

std::string write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const auto& l : lines) out << l << "\n";
  return path;
}

blip::test::CommandResult index_images(const std::string& images, const std::string& out, const std::string& extra = "") {
  return run_command(tool("blip_index") + " --threads 1 --quiet --config " + config() + " --images " + quote(images) +
                     " --out " + quote(out) + " " + extra);
}

std::vector<nlohmann::json> json_lines(const std::string& output) {
  std::vector<nlohmann::json> out;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line[0] == '{') out.push_back(nlohmann::json::parse(line));
  return out;
}

// blip_extract's features of `images` x kCaptions.
std::map<std::string, at::Tensor> extract(const std::string& dir, const std::vector<std::string>& images) {
  std::string cmd = tool("blip_extract") + " --threads 1 --config " + config() + " --out " + quote(dir + "/f.safetensors") +
                    " --captions-file " + quote(write_lines(dir + "/captions.txt", kCaptions));
  for (const auto& i : images) cmd += " --image " + quote(i);
  const auto r = run_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::map<std::string, at::Tensor> out;
  for (auto& [name, t] : blip::io::load_safetensors(dir + "/f.safetensors")) out[name] = t;
  return out;
}

// Indices of `scores` by decreasing value.
std::vector<std::int64_t> ranking(const at::Tensor& scores) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(scores.size(0)));
  std::iota(order.begin(), order.end(), 0);
  const auto s = scores.contiguous();
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return s[a].item<float>() > s[b].item<float>(); });
  return order;
}

}  // namespace

TEST(SearchCli, TextQueriesRankImagesAsExtractFeaturesDo) {
  BLIP_REQUIRE_FIXTURES();
  const std::string dir = blip::test::temp_dir();
  const auto images = copy_images(dir + "/images");
  ASSERT_GE(images.size(), 8u);
  const auto r = index_images(dir + "/images", dir + "/index.safetensors");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto f = extract(dir, images);
  const at::Tensor sims = at::matmul(f.at("image_feat"), f.at("text_feat").t());  // [I, T]
  const at::Tensor itm = f.at("itm_logits").select(2, 1);                          // [I, T]

  for (const bool rerank : {false, true}) {
    std::string cmd = tool("blip_search") + " --threads 1 --json --config " + config() + " --index " +
                      quote(dir + "/index.safetensors") + " --top-k 100";
    if (rerank) cmd += " --rerank 100";
    for (const auto& c : kCaptions) cmd += " --query " + quote(c);
    const auto s = run_command(cmd);
    ASSERT_EQ(s.exit_code, 0) << s.output;
    const auto results = json_lines(s.output);
    ASSERT_EQ(results.size(), kCaptions.size()) << s.output;
    for (std::size_t t = 0; t < kCaptions.size(); ++t) {
      SCOPED_TRACE((rerank ? "rerank, query " : "itc, query ") + kCaptions[t]);
      EXPECT_EQ(results[t]["query"], kCaptions[t]);
      const at::Tensor itc_t = sims.select(1, static_cast<std::int64_t>(t));
      const at::Tensor score_t = rerank ? itm.select(1, static_cast<std::int64_t>(t)) + itc_t : itc_t;
      const auto expected = ranking(score_t);
      const auto& hits = results[t]["results"];
      ASSERT_EQ(hits.size(), images.size());
      for (std::size_t k = 0; k < hits.size(); ++k) {
        const std::int64_t i = expected[k];
        EXPECT_EQ(hits[k]["rank"], static_cast<int>(k) + 1);
        EXPECT_EQ(hits[k]["path"], images[static_cast<std::size_t>(i)]) << "rank " << k + 1;
        EXPECT_NEAR(hits[k]["itc"].get<float>(), itc_t[i].item<float>(), kScoreTolerance);
        EXPECT_NEAR(hits[k]["score"].get<float>(), score_t[i].item<float>(), kScoreTolerance);
        if (rerank)
          EXPECT_NEAR(hits[k]["itm"].get<float>(), itm[i][static_cast<std::int64_t>(t)].item<float>(), kScoreTolerance);
        else
          EXPECT_TRUE(hits[k]["itm"].is_null());
      }
    }
  }
}

TEST(SearchCli, ImageQueriesRankCaptionsAndSimilarImages) {
  BLIP_REQUIRE_FIXTURES();
  const std::string dir = blip::test::temp_dir();
  const auto images = copy_images(dir + "/images");
  ASSERT_EQ(index_images(dir + "/images", dir + "/index.safetensors").exit_code, 0);
  const auto f = extract(dir, images);
  const at::Tensor sims = at::matmul(f.at("image_feat"), f.at("text_feat").t());
  const at::Tensor itm = f.at("itm_logits").select(2, 1);
  const std::int64_t q = 2;

  const auto s = run_command(tool("blip_search") + " --threads 1 --json --config " + config() + " --image " +
                             quote(images[q]) + " --captions " + quote(dir + "/captions.txt") + " --top-k 3 --rerank 4");
  ASSERT_EQ(s.exit_code, 0) << s.output;
  const auto results = json_lines(s.output);
  ASSERT_EQ(results.size(), 1u);
  // The top 4 by ITC are reranked by itm + itc; 3 of them are shown.
  const auto by_itc = ranking(sims[q]);
  std::vector<std::int64_t> top4(by_itc.begin(), by_itc.begin() + 4);
  std::stable_sort(top4.begin(), top4.end(), [&](std::int64_t a, std::int64_t b) {
    return (itm[q][a] + sims[q][a]).item<float>() > (itm[q][b] + sims[q][b]).item<float>();
  });
  const auto& hits = results[0]["results"];
  ASSERT_EQ(hits.size(), 3u);
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(hits[k]["caption"], kCaptions[static_cast<std::size_t>(top4[k])]) << "rank " << k + 1;
    EXPECT_NEAR(hits[k]["score"].get<float>(), (itm[q][top4[k]] + sims[q][top4[k]]).item<float>(), kScoreTolerance);
  }

  // --html: a page (rendered in Chromium by ResultsPageChromium.*) that shows every hit.
  const auto page = run_command(tool("blip_search") + " --threads 1 --quiet --config " + config() + " --index " +
                                quote(dir + "/index.safetensors") + " --query " + quote(kCaptions[0]) +
                                " --top-k 3 --html " + quote(dir + "/page/results.html"));
  ASSERT_EQ(page.exit_code, 0) << page.output;
  std::ifstream html_in(dir + "/page/results.html");
  const std::string html((std::istreambuf_iterator<char>(html_in)), std::istreambuf_iterator<char>());
  for (std::size_t k = 0; k < images.size(); ++k) {
    const bool shown = html.find(fs::path(images[k]).filename().string()) != std::string::npos;
    const bool in_table = page.output.find(images[k]) != std::string::npos;
    EXPECT_EQ(shown, in_table) << images[k];
  }

  // Without captions: the index's images by ITC image-image similarity; the image itself first.
  const auto same = run_command(tool("blip_search") + " --threads 1 --json --config " + config() + " --index " +
                                quote(dir + "/index.safetensors") + " --image " + quote(images[q]) + " --top-k 3");
  ASSERT_EQ(same.exit_code, 0) << same.output;
  const auto similar = json_lines(same.output);
  ASSERT_EQ(similar.size(), 1u);
  const at::Tensor image_sims = at::matmul(f.at("image_feat"), f.at("image_feat")[q]);
  const auto expected = ranking(image_sims);
  EXPECT_EQ(expected[0], q);
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(similar[0]["results"][k]["path"], images[static_cast<std::size_t>(expected[k])]);
    EXPECT_NEAR(similar[0]["results"][k]["itc"].get<float>(), image_sims[expected[k]].item<float>(), kScoreTolerance);
  }
}

TEST(SearchCli, StoredTokensRerankAsRecomputedOnes) {
  BLIP_REQUIRE_FIXTURES();
  const std::string dir = blip::test::temp_dir();
  copy_images(dir + "/images");
  ASSERT_EQ(index_images(dir + "/images", dir + "/plain.safetensors").exit_code, 0);
  const auto r = index_images(dir + "/images", dir + "/tokens.safetensors", "--store-tokens");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("with ViT tokens"), std::string::npos) << r.output;
  EXPECT_TRUE(blip::retrieval::load_image_index(dir + "/tokens.safetensors").has_tokens());
  std::map<std::string, float> score[2];
  for (int stored = 0; stored < 2; ++stored) {
    const auto s = run_command(tool("blip_search") + " --threads 1 --json --config " + config() + " --index " +
                               quote(dir + (stored ? "/tokens.safetensors" : "/plain.safetensors")) +
                               " --query " + quote(kCaptions[0]) + " --top-k 100 --rerank 100");
    ASSERT_EQ(s.exit_code, 0) << s.output;
    const auto results = json_lines(s.output);
    ASSERT_EQ(results.size(), 1u) << s.output;
    for (const auto& h : results[0]["results"]) {
      ASSERT_FALSE(h["itm"].is_null());
      score[stored][h["path"].get<std::string>()] = h["score"].get<float>();
    }
  }
  ASSERT_EQ(score[0].size(), 8u);
  // Tokens stored in float16 differ from the recomputed ones by its rounding (~1e-3 relative).
  for (const auto& [path, s] : score[0]) EXPECT_NEAR(score[1].at(path), s, 2e-2) << path;
}

TEST(SearchCli, IndexIsIncrementalAndSkipsBrokenImages) {
  BLIP_REQUIRE_FIXTURES();
  const std::string dir = blip::test::temp_dir();
  const std::string images = dir + "/images";
  const auto all = copy_images(dir + "/all");
  fs::create_directories(images + "/sub");
  for (std::size_t i = 0; i < 3; ++i) fs::copy_file(all[i], images + "/" + fs::path(all[i]).filename().string());
  const std::string out = dir + "/index.safetensors";
  auto r = index_images(images, out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("indexed 3 images"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("3 embedded"), std::string::npos) << r.output;
  const auto first = blip::retrieval::load_image_index(out);

  // Two new files (one in a subfolder) and a corrupt one: only the two are embedded.
  fs::copy_file(all[3], images + "/sub/" + fs::path(all[3]).filename().string());
  fs::copy_file(all[4], images + "/" + fs::path(all[4]).filename().string());
  std::ofstream(images + "/broken.jpg") << "\xff\xd8\xff not really a JPEG";
  r = index_images(images, out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("2 embedded"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("3 unchanged"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 skipped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("skipped " + fs::absolute(images + "/broken.jpg").lexically_normal().string()),
            std::string::npos)
      << r.output;
  const auto second = blip::retrieval::load_image_index(out);
  ASSERT_EQ(second.size(), 5);
  // Kept rows are the first run's, bit for bit.
  int kept = 0;
  for (std::int64_t i = 0; i < first.size(); ++i)
    for (std::int64_t j = 0; j < second.size(); ++j)
      if (second.files[j].path == first.files[i].path) {
        EXPECT_TRUE(at::equal(second.embeddings[j], first.embeddings[i])) << first.files[i].path;
        ++kept;
      }
  EXPECT_EQ(kept, first.size());

  // A changed file is embedded again, a deleted one removed.
  fs::last_write_time(images + "/" + fs::path(all[0]).filename().string(),
                      fs::file_time_type::clock::now() + std::chrono::seconds(5));
  fs::remove(images + "/" + fs::path(all[1]).filename().string());
  r = index_images(images, out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 embedded"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("3 unchanged"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 removed"), std::string::npos) << r.output;
  EXPECT_EQ(blip::retrieval::load_image_index(out).size(), 4);
}

TEST(SearchCli, BadInputsGiveOneLineAndExit1) {
  BLIP_REQUIRE_FIXTURES();
  const std::string dir = blip::test::temp_dir();
  copy_images(dir + "/images", 2);
  const std::string out = dir + "/index.safetensors";
  ASSERT_EQ(index_images(dir + "/images", out).exit_code, 0);
  const auto expect_error = [](const blip::test::CommandResult& r, const std::string& needle) {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << "lacks '" << needle << "':\n" << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  };
  // Another precision is another fingerprint: the index is not mixed, and not destroyed.
  const auto before = fs::file_size(out);
  expect_error(index_images(dir + "/images", out, "--precision bf16"), "was built with another model");
  EXPECT_EQ(fs::file_size(out), before);
  // A safetensors file that is not an index is left alone.
  std::ofstream(dir + "/captions.txt") << "a dog\n";
  ASSERT_EQ(run_command(tool("blip_extract") + " --threads 1 --config " + config() + " --captions-file " +
                        quote(dir + "/captions.txt") + " --out " + quote(dir + "/features.safetensors"))
                .exit_code,
            0);
  expect_error(index_images(dir + "/images", dir + "/features.safetensors"), "not an image index");
  expect_error(index_images(dir + "/nowhere", dir + "/x.safetensors"), "no such directory");
  expect_error(index_images(dir + "/captions.txt", dir + "/x.safetensors"), "is not a directory");
  fs::create_directories(dir + "/empty");
  expect_error(index_images(dir + "/empty", dir + "/x.safetensors"), "no images found");
  const std::string search = tool("blip_search") + " --threads 1 --config " + config();
  expect_error(run_command(search + " --index " + quote(dir + "/missing.safetensors") + " --query dog"), "missing.safetensors");
  expect_error(run_command(search + " --index " + quote(out) + " --image " + quote(dir + "/images/x.jpg") + " --rerank 2"),
               "--rerank");
  expect_error(run_command(search + " --index " + quote(out) + " --query dog --top-k 0"), "--top-k");
  expect_error(run_command(search + " --index " + quote(out)), "give --query");
}

TEST(SearchCli, IndexShardedOverTwoRanksLikeTorchrun) {
  BLIP_REQUIRE_FIXTURES();
  const std::string dir = blip::test::temp_dir();
  copy_images(dir + "/images");
  std::ofstream(dir + "/images/v0z_broken.png") << "not a PNG";  // row 1 of the sorted list: rank 1 meets it
  ASSERT_EQ(index_images(dir + "/images", dir + "/alone.safetensors", "--store-tokens").exit_code, 0);
  const int port = blip::test::unused_loopback_port();
  const auto env = [&](int rank) {
    return "RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) +
           " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " timeout 120 ";
  };
  const std::string cmd = tool("blip_index") + " --threads 1 --quiet --dist-timeout 30 --store-tokens --config " +
                          config() + " --images " + quote(dir + "/images") + " --out " +
                          quote(dir + "/sharded.safetensors");
  // The whole line in a subshell, so that rank 0's stderr is captured too.
  const auto r = run_command("( ( " + env(1) + cmd + " > " + quote(dir + "/rank1.log") + " 2>&1; echo $? > " +
                             quote(dir + "/rank1.rc") + " ) & " + env(0) + cmd + "; rc=$?; wait; exit $rc )");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream rc_in(dir + "/rank1.rc");
  std::string rc;
  std::getline(rc_in, rc);
  EXPECT_EQ(rc, "0");
  // Rank 0 reports the bad image with its reason, whichever rank met it.
  EXPECT_NE(r.output.find("v0z_broken.png: not an image"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 skipped"), std::string::npos) << r.output;
  const auto alone = blip::retrieval::load_image_index(dir + "/alone.safetensors");
  const auto sharded = blip::retrieval::load_image_index(dir + "/sharded.safetensors");
  ASSERT_EQ(sharded.size(), alone.size());
  for (std::int64_t i = 0; i < alone.size(); ++i) EXPECT_EQ(sharded.files[i].path, alone.files[i].path);
  EXPECT_LE((sharded.embeddings - alone.embeddings).abs().max().item<float>(), 1e-6f);
  ASSERT_TRUE(sharded.has_tokens());
  EXPECT_LE((sharded.tokens.to(at::kFloat) - alone.tokens.to(at::kFloat)).abs().max().item<float>(), 1e-2f);
}
