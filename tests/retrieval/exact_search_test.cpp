// exact_top_k against a float64 brute force, and its tie rule across chunk boundaries.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>

#include "blip/retrieval/exact_search.h"
#include "common/expect_error.h"

using blip::retrieval::exact_top_k;

TEST(ExactSearch, MatchesFloat64BruteForceForAnyChunk) {
  at::manual_seed(3);
  const at::Tensor base = at::randn({1000, 32});
  const at::Tensor queries = at::randn({7, 32});
  const at::Tensor sims = at::matmul(queries.to(at::kDouble), base.to(at::kDouble).t());
  for (const std::int64_t chunk : {1000, 333, 64, 1}) {
    const auto got = exact_top_k(queries, base, 10, chunk);
    ASSERT_EQ(got.size(), 7u);
    for (std::int64_t q = 0; q < 7; ++q) {
      std::vector<std::int64_t> order(1000);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](std::int64_t a, std::int64_t b) { return sims[q][a].item<double>() > sims[q][b].item<double>(); });
      ASSERT_EQ(got[q].size(), 10u);
      for (std::size_t k = 0; k < 10; ++k) {
        EXPECT_EQ(got[q][k].index, order[k]) << "chunk " << chunk << " query " << q << " rank " << k;
        EXPECT_NEAR(got[q][k].similarity, sims[q][order[k]].item<double>(), 1e-5);
      }
    }
  }
}

TEST(ExactSearch, TiesGoToTheLowerIndexWhateverTheChunking) {
  // Rows 2, 5, 9 and 13 are the same vector: equal similarities, ranked by index.
  at::Tensor base = at::randn({16, 8}) * 0.01;
  const at::Tensor v = at::ones({8});
  for (const std::int64_t r : {13, 9, 5, 2}) base[r] = v;
  for (const std::int64_t chunk : {16, 7, 4, 3}) {
    const auto got = exact_top_k(v.unsqueeze(0), base, 3, chunk)[0];
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].index, 2) << chunk;
    EXPECT_EQ(got[1].index, 5) << chunk;
    EXPECT_EQ(got[2].index, 9) << chunk;
  }
  // k beyond the rows: all of them.
  EXPECT_EQ(exact_top_k(v.unsqueeze(0), base, 100)[0].size(), 16u);
}

TEST(ExactSearch, BadInputsNameTheProblem) {
  const at::Tensor base = at::randn({4, 8});
  blip::test::expect_error([&] { exact_top_k(at::randn({1, 7}), base, 1); }, {"dimensions"});
  blip::test::expect_error([&] { exact_top_k(at::randn({1, 8}), base, 0); }, {"top-k"});
  blip::test::expect_error([&] { exact_top_k(at::randn({1, 8}).to(at::kDouble), base, 1); }, {"float32"});
}

// (The index file's reader, next to the search it feeds.)
#include "blip/io/safetensors.h"
#include "blip/retrieval/image_index.h"
#include "common/fixtures.h"

TEST(ImageIndexFile, RoundTripsAndRefusesBadOffsetsNamingTheFile) {
  const std::string dir = blip::test::temp_dir();
  blip::retrieval::ImageIndex index;
  index.fingerprint = "weights=1;image_size=64;precision=fp32;preprocessing=x";
  index.files = {{"/a.jpg", 10, 20}, {"/b/c.png", 30, 40}};
  index.embeddings = at::randn({2, 4});
  blip::retrieval::save_image_index(dir + "/i.safetensors", index);
  const auto back = blip::retrieval::load_image_index(dir + "/i.safetensors");
  ASSERT_EQ(back.size(), 2);
  EXPECT_EQ(back.files[1].path, "/b/c.png");
  EXPECT_EQ(back.files[1].mtime_ns, 40);
  EXPECT_TRUE(at::equal(back.embeddings, index.embeddings));

  // Offsets that jump past the bytes and come back: refused before any path is read.
  std::map<std::string, std::string> meta;
  auto tensors = blip::io::load_safetensors(dir + "/i.safetensors", &meta);
  for (auto& [name, t] : tensors)
    if (name == "path_offsets") t = at::tensor(std::vector<std::int64_t>{0, 1000000, 14}, at::kLong);
  blip::io::save_safetensors(dir + "/bad.safetensors", tensors, meta);
  blip::test::expect_error([&] { blip::retrieval::load_image_index(dir + "/bad.safetensors"); },
                           {"bad.safetensors", "path_offsets", "decreases"});
  // A tensor missing.
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(), [](const auto& p) { return p.first == "file_size"; }),
                tensors.end());
  blip::io::save_safetensors(dir + "/missing.safetensors", tensors, meta);
  blip::test::expect_error([&] { blip::retrieval::load_image_index(dir + "/missing.safetensors"); },
                           {"missing.safetensors", "file_size", "missing"});
}
