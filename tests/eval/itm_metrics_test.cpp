// itm_eval against BLIP's own result on the fixture: the score matrices BLIP's evaluation()
// produced, the fixture dataset's txt2img / img2txt, and the nine metrics and per-query numpy
// ranks in eval_result.json.
#include <gtest/gtest.h>

#include "blip/error.h"
#include "blip/eval/itm_metrics.h"
#include "blip/data/retrieval_dataset.h"
#include "blip/io/safetensors.h"
#include "common/fixtures.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>

namespace {

using namespace blip::eval;
using namespace blip::data;

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

at::Tensor find_tensor(const blip::io::NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  ADD_FAILURE() << "tensor " << name << " missing";
  return {};
}

std::string eval_dir() { return blip::test::blip_ref_dir() + "/eval"; }

RetrievalSplit fixture_split() {
  RetrievalSplitSpec spec;
  spec.dataset = "coco";
  spec.split = "test";
  spec.ann_root = eval_dir();
  spec.image_root = blip::test::blip_ref_dir();
  return load_retrieval_split(spec);
}

TEST(ItmEval, MatchesBlipOnFixtureExactly) {
  BLIP_REQUIRE_FIXTURES();
  const auto scores = blip::io::load_safetensors(eval_dir() + "/scores.safetensors");
  const at::Tensor i2t = find_tensor(scores, "score_matrix_i2t");
  const at::Tensor t2i = find_tensor(scores, "score_matrix_t2i");
  ASSERT_EQ(i2t.scalar_type(), at::kFloat);
  const RetrievalSplit split = fixture_split();
  const nlohmann::json ref = read_json(eval_dir() + "/eval_result.json");

  const RetrievalMetrics m = itm_eval(i2t, t2i, split.txt2img, split.img2txt);
  for (const auto& [key, value] : m.items()) {
    const double expected = ref["itm_eval"][key].get<double>();
    std::printf("  %-11s = %.17g (BLIP %.17g)\n", key.c_str(), value, expected);
    EXPECT_EQ(value, expected) << key;  // bitwise: same integer counts, same double operations
  }

  // Per-query ranks equal numpy's, including the tie-dependent ones (ground truth among -100s).
  const auto ri = i2t_ranks(i2t, split.img2txt);
  const auto rt = t2i_ranks(t2i, split.txt2img);
  EXPECT_EQ(ri, ref["rank_analysis"]["i2t_rank_numpy"].get<std::vector<std::int64_t>>());
  EXPECT_EQ(rt, ref["rank_analysis"]["t2i_rank_numpy"].get<std::vector<std::int64_t>>());
  // The fixture really has tie-dependent ranks (best != worst), so the test above has teeth.
  EXPECT_NE(ref["rank_analysis"]["i2t_rank_best"], ref["rank_analysis"]["i2t_rank_worst"]);

  // float64 input gives the same ranks here (no new ties appear).
  const RetrievalMetrics md = itm_eval(i2t.to(at::kDouble), t2i.to(at::kDouble), split.txt2img,
                                       split.img2txt);
  EXPECT_EQ(md.r_mean, m.r_mean);
}

TEST(ItmEval, HandComputedExample) {
  // 2 images x 3 texts; image 0 owns texts {0, 1}, image 1 owns {2}.
  const at::Tensor i2t = at::tensor({0.9f, 0.1f, 0.5f, 0.2f, 0.3f, 0.8f}).view({2, 3});
  const at::Tensor t2i = at::tensor({0.9f, 0.2f, 0.1f, 0.3f, 0.7f, 0.8f}).view({3, 2});
  const std::vector<std::int64_t> txt2img{0, 0, 1};
  const std::vector<std::vector<std::int64_t>> img2txt{{0, 1}, {2}};
  EXPECT_EQ(i2t_ranks(i2t, img2txt), (std::vector<std::int64_t>{0, 0}));
  EXPECT_EQ(t2i_ranks(t2i, txt2img), (std::vector<std::int64_t>{0, 1, 0}));
  const RetrievalMetrics m = itm_eval(i2t, t2i, txt2img, img2txt);
  EXPECT_EQ(m.txt_r1, 100.0);
  EXPECT_EQ(m.img_r1, 100.0 * 2 / 3);
  EXPECT_EQ(m.img_r5, 100.0);
  EXPECT_EQ(m.r_mean, ((100.0 + 100.0 + 100.0) / 3 + (100.0 * 2 / 3 + 100.0 + 100.0) / 3) / 2);
  // An image without captions is a miss at every k (BLIP's rank stays 1e20).
  EXPECT_EQ(i2t_ranks(i2t, {{0, 1}, {}})[1], kNoGroundTruthRank);
}

TEST(ItmEval, RejectsInconsistentInputs) {
  const at::Tensor i2t = at::zeros({2, 3});
  const at::Tensor t2i = at::zeros({3, 2});
  const std::vector<std::int64_t> txt2img{0, 0, 1};
  const std::vector<std::vector<std::int64_t>> img2txt{{0, 1}, {2}};
  auto expect_error = [](auto&& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error, expected one containing '" << needle << "'";
    } catch (const blip::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { itm_eval(i2t, at::zeros({2, 3}), txt2img, img2txt); }, "transpose shape");
  expect_error([&] { itm_eval(at::zeros({2, 3, 1}), t2i, txt2img, img2txt); }, "must be 2-D");
  expect_error([&] { itm_eval(i2t.to(at::kLong), t2i, txt2img, img2txt); }, "floating-point");
  expect_error([&] { itm_eval(i2t, t2i, {0, 0}, img2txt); }, "txt2img has 2 texts");
  expect_error([&] { itm_eval(i2t, t2i, {0, 0, 2}, img2txt); }, "maps to image 2");
  expect_error([&] { itm_eval(i2t, t2i, txt2img, {{0, 7}, {2}}); }, "lists text 7");
  expect_error([&] { itm_eval(i2t, t2i, txt2img, {{0, 1}}); }, "img2txt has 1 images");
}

}  // namespace
