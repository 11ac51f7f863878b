// The whole evaluation protocol on the tiny fixture model and dataset, against what BLIP's own
// evaluation() / itm_eval() produced (eval/scores.safetensors, eval/eval_result.json): feature
// rows and score matrices within 1e-4, the -100 positions exactly, the nine metrics exactly;
// reference vs optimized mode; skipped images; and 2-rank runs equal to the single-process run.
#include <gtest/gtest.h>

#include "blip/config.h"
#include "blip/error.h"
#include "blip/eval/itm_metrics.h"
#include "blip/eval/retrieval_eval.h"
#include "blip/io/safetensors.h"
#include "blip/models/factory.h"
#include "blip/text/tokenizer.h"
#include "common/fixtures.h"
#include "common/worker_process.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>

namespace {

using namespace blip::eval;
using namespace blip::data;
using namespace blip::dist;
namespace fs = std::filesystem;

struct Fixture {
  blip::RetrievalConfig config;
  blip::models::BlipRetrieval model{nullptr};
  std::unique_ptr<blip::text::Tokenizer> tokenizer;
  RetrievalSplit split;
  blip::io::NamedTensors blip_scores;
  nlohmann::json blip_result;
};

// Loaded once per process (the tiny model takes well under a second).
const Fixture& fixture() {
  static const std::unique_ptr<Fixture> f = [] {
    auto x = std::make_unique<Fixture>();
    const std::string ref = blip::test::blip_ref_dir();
    x->config = blip::load_retrieval_config(ref + "/tiny_config.yaml");
    x->model = blip::models::load_blip_retrieval(x->config, "", {}, /*with_momentum=*/false);
    x->tokenizer = blip::text::load_tokenizer(x->config.tokenizer);
    RetrievalSplitSpec spec;
    spec.dataset = x->config.dataset;
    spec.split = "test";
    spec.ann_root = x->config.ann_root;
    spec.image_root = x->config.image_root;
    x->split = load_retrieval_split(spec);
    x->blip_scores = blip::io::load_safetensors(ref + "/eval/scores.safetensors");
    std::ifstream in(ref + "/eval/eval_result.json");
    x->blip_result = nlohmann::json::parse(in);
    return x;
  }();
  return *f;
}

at::Tensor blip_tensor(const std::string& name) {
  for (const auto& [n, t] : fixture().blip_scores)
    if (n == name) return t;
  ADD_FAILURE() << name << " missing from scores.safetensors";
  return {};
}

RetrievalEvalOptions fixture_options(EvalMode mode) {
  const auto& c = fixture().config;
  RetrievalEvalOptions o;
  o.mode = mode;
  o.k_test = c.k_test;
  o.batch_size_test = c.batch_size_test;
  o.image_size = c.image_size;
  o.num_workers = 2;
  return o;
}

RetrievalEvalResult run(const RetrievalEvalOptions& o, const RetrievalSplit& split,
                        const DistContext& dist = DistContext()) {
  const Fixture& f = fixture();
  blip::models::BlipRetrieval model = f.model;  // a holder copy shares the module
  return evaluate_retrieval(*model, *f.tokenizer, split, o, dist);
}

// bf16 keeps 8 bits of mantissa. On the tiny fixture model, rounding only the weights to bf16
// (activations fp32) already moves the scores (span -3.3..1.1) by 0.068 and the normalized
// text features by 0.010; bf16 activations about double that (measured 0.139 and 0.039).
constexpr double kBf16ScoreTolerance = 0.2;
constexpr double kBf16FeatureTolerance = 0.06;

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// Score matrices: same -100 positions, other entries within tol. Returns the max abs diff.
double compare_scores(const at::Tensor& got, const at::Tensor& want, double tol, const std::string& what) {
  EXPECT_EQ(got.sizes(), want.sizes()) << what;
  const at::Tensor got_unscored = got == -100.0f, want_unscored = want == -100.0f;
  EXPECT_TRUE(at::equal(got_unscored, want_unscored)) << what << ": -100 positions differ";
  const at::Tensor scored = want_unscored.logical_not();
  const double diff = max_abs_diff(got.masked_select(scored), want.masked_select(scored));
  EXPECT_LE(diff, tol) << what;
  return diff;
}

void expect_blip_metrics(const RetrievalEvalResult& r, const std::string& label) {
  const RetrievalMetrics m =
      itm_eval(r.score_matrix_i2t, r.score_matrix_t2i, r.split.txt2img, r.split.img2txt);
  std::printf("  %s metrics:", label.c_str());
  for (const auto& [key, value] : m.items()) {
    std::printf(" %s=%.4f", key.c_str(), value);
    EXPECT_EQ(value, fixture().blip_result["itm_eval"][key].get<double>()) << label << " " << key;
  }
  std::printf("\n");
}

void check_against_blip(const RetrievalEvalResult& r, const std::string& label) {
  const double tol = 1e-4;
  const double d_text = max_abs_diff(r.text_embeds, blip_tensor("text_embeds"));
  const double d_image = max_abs_diff(r.image_embeds, blip_tensor("image_embeds"));
  EXPECT_LE(d_text, tol);
  EXPECT_LE(d_image, tol);
  const double d_i2t = compare_scores(r.score_matrix_i2t, blip_tensor("score_matrix_i2t"), tol, "i2t");
  const double d_t2i = compare_scores(r.score_matrix_t2i, blip_tensor("score_matrix_t2i"), tol, "t2i");
  std::printf("  %s vs BLIP: max|diff| text_embeds %.3g, image_embeds %.3g, i2t %.3g, t2i %.3g; "
              "ITM rows %lld; %.3f s\n",
              label.c_str(), d_text, d_image, d_i2t, d_t2i, static_cast<long long>(r.itm_rows),
              r.timing.total_s);
  expect_blip_metrics(r, label);
}

TEST(RetrievalEval, ReferenceModeMatchesBlip) {
  BLIP_REQUIRE_FIXTURES();
  const RetrievalEvalResult r = run(fixture_options(EvalMode::Reference), fixture().split);
  EXPECT_EQ(r.k_i2t, 10);
  EXPECT_EQ(r.k_t2i, 10);
  EXPECT_EQ(r.itm_rows, 12 * 10 + 60 * 10);
  check_against_blip(r, "reference");
}

TEST(RetrievalEval, OptimizedModeMatchesBlipAndReference) {
  BLIP_REQUIRE_FIXTURES();
  const RetrievalEvalResult ref = run(fixture_options(EvalMode::Reference), fixture().split);
  for (std::int64_t itm_batch : {256, 7}) {
    RetrievalEvalOptions o = fixture_options(EvalMode::Optimized);
    o.itm_batch = itm_batch;
    o.num_workers = itm_batch == 7 ? 0 : 3;
    const RetrievalEvalResult r = run(o, fixture().split);
    check_against_blip(r, "optimized (itm_batch " + std::to_string(itm_batch) + ")");
    EXPECT_LT(r.itm_rows, ref.itm_rows);  // pairs wanted by both directions are scored once
    const double d_i2t = compare_scores(r.score_matrix_i2t, ref.score_matrix_i2t, 1e-5, "i2t vs ref");
    const double d_t2i = compare_scores(r.score_matrix_t2i, ref.score_matrix_t2i, 1e-5, "t2i vs ref");
    std::printf("  optimized vs reference: max|diff| i2t %.3g, t2i %.3g\n", d_i2t, d_t2i);
  }
}

TEST(RetrievalEval, KTestLargerThanSplitScoresEverything) {
  BLIP_REQUIRE_FIXTURES();
  RetrievalEvalOptions o = fixture_options(EvalMode::Optimized);
  o.k_test = 1000;
  const RetrievalEvalResult r = run(o, fixture().split);
  EXPECT_EQ(r.k_i2t, 60);
  EXPECT_EQ(r.k_t2i, 12);
  EXPECT_EQ((r.score_matrix_i2t == -100.0f).sum().item<std::int64_t>(), 0);
  EXPECT_EQ((r.score_matrix_t2i == -100.0f).sum().item<std::int64_t>(), 0);
  // Every pair is scored once; the two matrices hold the same values.
  EXPECT_TRUE(at::equal(r.score_matrix_i2t, r.score_matrix_t2i.t()));
  EXPECT_EQ(r.itm_rows, 12 * 60);
}

// bf16 on CPU: weights, images and activations in bf16; ITC features, similarities and score
// matrices in fp32. The matrices stay close to fp32's, the top-k sets nearly equal, and the
// caller's fp32 model is left bitwise unchanged (the fp32 run after it is identical).
TEST(RetrievalEval, Bfloat16CloseToFloat32) {
  BLIP_REQUIRE_FIXTURES();
  const RetrievalEvalOptions o32 = fixture_options(EvalMode::Optimized);
  const RetrievalEvalResult f32 = run(o32, fixture().split);
  for (EvalMode mode : {EvalMode::Optimized, EvalMode::Reference}) {
    RetrievalEvalOptions o = fixture_options(mode);
    o.precision = at::kBFloat16;
    const RetrievalEvalResult bf = run(o, fixture().split);
    ASSERT_EQ(bf.score_matrix_i2t.scalar_type(), at::kFloat);
    ASSERT_EQ(bf.text_embeds.scalar_type(), at::kFloat);
    EXPECT_EQ(bf.token_memory.bytes_per_image, f32.token_memory.bytes_per_image / 2);
    const double d_text = max_abs_diff(bf.text_embeds, f32.text_embeds);
    const double d_image = max_abs_diff(bf.image_embeds, f32.image_embeds);
    double d_scores = 0;
    double overlap_sum = 0;
    std::int64_t rows = 0;
    for (const auto& [b, f] : {std::pair{bf.score_matrix_i2t, f32.score_matrix_i2t},
                               std::pair{bf.score_matrix_t2i, f32.score_matrix_t2i}}) {
      const at::Tensor b_scored = b != -100.0f, f_scored = f != -100.0f;
      const at::Tensor both = b_scored.logical_and(f_scored);
      d_scores = std::max(d_scores, max_abs_diff(b.masked_select(both), f.masked_select(both)));
      overlap_sum += both.sum().item<double>();
      rows += f_scored.sum().item<std::int64_t>();
    }
    const double overlap = overlap_sum / static_cast<double>(rows);
    std::printf("  bf16 %s vs fp32: max|diff| text_embeds %.3g, image_embeds %.3g, scores %.3g "
                "(entries both score; scores span %.2f..%.2f); top-k overlap %.1f%%\n",
                eval_mode_name(mode), d_text, d_image, d_scores,
                f32.score_matrix_t2i.masked_select(f32.score_matrix_t2i != -100.0f).min().item<float>(),
                f32.score_matrix_t2i.max().item<float>(), 100 * overlap);
    EXPECT_LE(d_text, kBf16FeatureTolerance);
    EXPECT_LE(d_image, kBf16FeatureTolerance);
    EXPECT_LE(d_scores, kBf16ScoreTolerance);
    EXPECT_GE(overlap, 0.9);
    const RetrievalMetrics m = itm_eval(bf.score_matrix_i2t, bf.score_matrix_t2i, bf.split.txt2img, bf.split.img2txt);
    std::printf("  bf16 %s metrics:", eval_mode_name(mode));
    for (const auto& [key, value] : m.items()) std::printf(" %s=%.4f", key.c_str(), value);
    std::printf("\n");
  }
  // The fp32 model was cast for those runs and restored: the fp32 path gives the same bits.
  const RetrievalEvalResult again = run(o32, fixture().split);
  EXPECT_TRUE(at::equal(again.score_matrix_i2t, f32.score_matrix_i2t));
  EXPECT_TRUE(at::equal(again.score_matrix_t2i, f32.score_matrix_t2i));
  check_against_blip(again, "fp32 after bf16 runs");
}

std::string write_annotation(const std::string& dir, int bad_at);  // below

// Bounded token memory: the first pass keeps only the ITC features and the rerank recomputes the
// ViT tokens block by block; the matrices are those of the all-in-memory run.
TEST(RetrievalEval, ImageBlocksGiveTheSameMatrices) {
  BLIP_REQUIRE_FIXTURES();
  const RetrievalEvalOptions all = fixture_options(EvalMode::Optimized);
  const RetrievalEvalResult kept = run(all, fixture().split);
  EXPECT_EQ(kept.token_memory.block, 0);
  EXPECT_EQ(kept.token_memory.images, 12);
  EXPECT_EQ(kept.timing.recompute_s, 0.0);
  // Tiny model: 24x24 images, patch 8 -> 1 + 9 tokens of width 64 (vit: custom in tiny_config).
  const auto& vit = fixture().model->spec().vit;
  EXPECT_EQ(kept.token_memory.bytes_per_image, (1 + vit.num_patches()) * vit.width * 4);
  EXPECT_EQ(kept.token_memory.bytes(), 12 * kept.token_memory.bytes_per_image);

  RetrievalEvalOptions o = all;
  o.image_block = 5;  // blocks of 5, 5, 2
  o.batch_size_test = 2;
  const RetrievalEvalResult blocks = run(o, fixture().split);
  EXPECT_EQ(blocks.token_memory.block, 5);
  EXPECT_EQ(blocks.token_memory.bytes(), 5 * kept.token_memory.bytes_per_image);
  EXPECT_GT(blocks.timing.recompute_s, 0.0);
  EXPECT_EQ(blocks.itm_rows, kept.itm_rows);
  const double d_i2t = compare_scores(blocks.score_matrix_i2t, kept.score_matrix_i2t, 1e-5, "i2t blocks");
  const double d_t2i = compare_scores(blocks.score_matrix_t2i, kept.score_matrix_t2i, 1e-5, "t2i blocks");
  std::printf("  image_block 5 vs all tokens kept: max|diff| i2t %.3g t2i %.3g; tokens held %lld of %lld bytes\n",
              d_i2t, d_t2i, static_cast<long long>(blocks.token_memory.bytes()),
              static_cast<long long>(kept.token_memory.bytes()));
  check_against_blip(blocks, "image_block 5");

  // Automatic: a budget below the split's tokens picks the largest block that fits.
  o = all;
  o.max_token_memory_gib = 4.5 * static_cast<double>(kept.token_memory.bytes_per_image) / (1024.0 * 1024.0 * 1024.0);
  const RetrievalEvalResult budget = run(o, fixture().split);
  EXPECT_EQ(budget.token_memory.block, 4);
  EXPECT_NE(budget.token_memory.describe().find("blocks of 4 images"), std::string::npos)
      << budget.token_memory.describe();
  compare_scores(budget.score_matrix_i2t, kept.score_matrix_i2t, 1e-5, "i2t budget");
  compare_scores(budget.score_matrix_t2i, kept.score_matrix_t2i, 1e-5, "t2i budget");

  // With a skipped image and bf16 the blocks still line up with the renumbered images.
  const std::string dir = write_annotation(blip::test::temp_dir(), 3);
  RetrievalSplitSpec spec;
  spec.dataset = "custom";
  spec.ann_root = dir;
  const RetrievalSplit with_bad = load_retrieval_split(spec);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    o = all;
    o.skip_bad_images = true;
    o.precision = dtype;
    const RetrievalEvalResult ref = run(o, with_bad);
    o.image_block = 5;
    const RetrievalEvalResult blk = run(o, with_bad);
    ASSERT_EQ(blk.skipped.size(), 1u);
    // Same compute type and pairs: only batch shapes differ between the two ViT passes.
    compare_scores(blk.score_matrix_i2t, ref.score_matrix_i2t, dtype == at::kFloat ? 1e-5 : 1e-2, "i2t skip");
    compare_scores(blk.score_matrix_t2i, ref.score_matrix_t2i, dtype == at::kFloat ? 1e-5 : 1e-2, "t2i skip");
  }
}

TEST(RetrievalEval, TokenMemoryPlanForCoco) {
  // The figures the README quotes: COCO test (5,000 images), ViT-B/16 at 384 px.
  blip::models::BlipRetrievalSpec spec;
  spec.vit = blip::VitConfig::base(384);
  RetrievalEvalOptions o;
  const TokenMemoryPlan f32 = plan_token_memory(spec, 5000, o);
  EXPECT_EQ(f32.bytes_per_image, 577 * 768 * 4);
  EXPECT_EQ(f32.images * f32.bytes_per_image, 8862720000);  // 8.25 GiB
  EXPECT_EQ(f32.block, 3028);  // floor(5 GiB / 1,772,544 B)
  o.precision = at::kBFloat16;
  const TokenMemoryPlan bf = plan_token_memory(spec, 5000, o);
  EXPECT_EQ(bf.block, 0);  // 4.13 GiB fits
  o.precision = at::kFloat;
  o.mode = EvalMode::Reference;
  EXPECT_EQ(plan_token_memory(spec, 5000, o).block, 0);  // evaluation() keeps every image
  std::printf("  COCO test: fp32: %s\n  COCO test: bf16: %s\n", f32.describe().c_str(), bf.describe().c_str());
}

// An annotation file in a temp dir whose images point (absolutely) at the fixture images, with
// one missing image inserted at `bad_at`.
std::string write_annotation(const std::string& dir, int bad_at) {
  const std::string src = blip::test::blip_ref_dir() + "/eval/coco_karpathy_test.json";
  std::ifstream in(src);
  nlohmann::json ann = nlohmann::json::parse(in), out = nlohmann::json::array();
  for (std::size_t i = 0; i < ann.size(); ++i) {
    if (static_cast<int>(i) == bad_at)
      out.push_back({{"image", dir + "/missing.jpg"}, {"caption", {"a ghost", "nothing here"}}});
    ann[i]["image"] = blip::test::blip_ref_dir() + "/" + ann[i]["image"].get<std::string>();
    out.push_back(ann[i]);
  }
  std::ofstream(dir + "/retrieval_test.json") << out.dump();
  return dir;
}

TEST(RetrievalEval, SkipBadImagesDropsThemWithTheirCaptions) {
  BLIP_REQUIRE_FIXTURES();
  const std::string dir = write_annotation(blip::test::temp_dir(), 5);
  RetrievalSplitSpec spec;
  spec.dataset = "custom";
  spec.ann_root = dir;
  spec.image_root = "/nonexistent";  // every entry is absolute
  const RetrievalSplit with_bad = load_retrieval_split(spec);
  ASSERT_EQ(with_bad.num_images(), 13);
  ASSERT_EQ(with_bad.num_texts(), 62);

  for (EvalMode mode : {EvalMode::Optimized, EvalMode::Reference}) {
    RetrievalEvalOptions o = fixture_options(mode);
    try {
      run(o, with_bad);
      ADD_FAILURE() << "no error for the missing image";
    } catch (const blip::Error& e) {
      EXPECT_NE(std::string(e.what()).find(dir + "/missing.jpg"), std::string::npos) << e.what();
    }
    o.skip_bad_images = true;
    const RetrievalEvalResult r = run(o, with_bad);
    ASSERT_EQ(r.skipped.size(), 1u);
    EXPECT_EQ(r.skipped[0].index, 5);
    EXPECT_EQ(r.split.num_images(), 12);
    EXPECT_EQ(r.split.text, fixture().split.text);
    // Exactly the evaluation of the split without that entry, i.e. BLIP's on the fixture.
    check_against_blip(r, std::string("skip-bad-images, ") + eval_mode_name(mode));
  }
}

TEST(RetrievalEval, BadOptionsAndEmptySplit) {
  BLIP_REQUIRE_FIXTURES();
  RetrievalEvalOptions o = fixture_options(EvalMode::Optimized);
  o.k_test = 0;
  EXPECT_THROW(run(o, fixture().split), blip::Error);
  EXPECT_THROW(parse_eval_mode("fast"), blip::Error);
  EXPECT_THROW(parse_precision("fp8"), blip::Error);
  EXPECT_EQ(parse_precision("bf16"), at::kBFloat16);
  EXPECT_STREQ(precision_name(parse_precision("fp16")), "fp16");
  o.k_test = 10;
  o.precision = at::kHalf;  // CPU
  try {
    run(o, fixture().split);
    ADD_FAILURE() << "no error for fp16 on CPU";
  } catch (const blip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("precision fp16: needs a CUDA device (use bf16 on the CPU)"), std::string::npos) << e.what();
  }
  o.precision = at::kFloat;
  o.image_block = -1;
  EXPECT_THROW(run(o, fixture().split), blip::Error);
  o.image_block = 0;
  o.max_token_memory_gib = 0;
  EXPECT_THROW(run(o, fixture().split), blip::Error);
  EXPECT_EQ(parse_eval_mode("reference"), EvalMode::Reference);
  // Every image unreadable: an error, not an empty result.
  const std::string dir = blip::test::temp_dir();
  std::ofstream(dir + "/retrieval_test.json")
      << R"([{"image": "gone.jpg", "caption": ["x"]}, {"image": "gone2.jpg", "caption": ["y"]}])";
  RetrievalSplitSpec spec;
  spec.dataset = "custom";
  spec.ann_root = dir;
  spec.image_root = dir;
  o = fixture_options(EvalMode::Optimized);
  o.skip_bad_images = true;
  try {
    run(o, load_retrieval_split(spec));
    ADD_FAILURE() << "no error";
  } catch (const blip::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no image could be read"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("retrieval_test.json"), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------------------------------------
// Two ranks (spawned processes over Gloo on loopback) give the single-process matrices:
// reference mode bitwise (same features, rows split as BLIP splits them), optimized mode within
// float rounding (its feature passes are sharded), and both BLIP's metrics exactly. The split
// has a missing image that only one rank of the optimized shards sees.
// ------------------------------------------------------------------------------------------
TEST(RetrievalEvalWorker, TwoRanks) {
  if (!blip::test::is_worker()) GTEST_SKIP() << "runs only as a spawned rank";
  BLIP_REQUIRE_FIXTURES();
  DistOptions dopt;
  dopt.timeout = blip::test::worker_timeout();
  const DistContext ctx = init_distributed(dopt);
  ASSERT_EQ(ctx.world_size(), 2);
  const std::string dir = write_annotation(blip::test::temp_dir(), 9);  // rank 1's shard
  RetrievalSplitSpec spec;
  spec.dataset = "custom";
  spec.ann_root = dir;
  const RetrievalSplit split = load_retrieval_split(spec);
  // The last run recomputes each rank's ViT tokens in blocks of 2 (images 0-5 and 6-12 per rank).
  const std::vector<std::pair<EvalMode, std::int64_t>> runs = {
      {EvalMode::Reference, 0}, {EvalMode::Optimized, 0}, {EvalMode::Optimized, 2}};
  for (const auto& [mode, image_block] : runs) {
    RetrievalEvalOptions o = fixture_options(mode);
    o.skip_bad_images = true;
    const RetrievalEvalResult single = run(o, split);  // all tokens kept
    o.image_block = image_block;
    const RetrievalEvalResult multi = run(o, split, ctx);
    EXPECT_EQ(multi.token_memory.block, image_block);
    ASSERT_EQ(multi.skipped.size(), 1u);
    EXPECT_EQ(multi.skipped[0].index, 9);
    EXPECT_EQ(multi.split.text, single.split.text);
    double d_i2t = 0, d_t2i = 0;
    if (mode == EvalMode::Reference) {
      EXPECT_TRUE(at::equal(multi.score_matrix_i2t, single.score_matrix_i2t));
      EXPECT_TRUE(at::equal(multi.score_matrix_t2i, single.score_matrix_t2i));
    } else {
      d_i2t = compare_scores(multi.score_matrix_i2t, single.score_matrix_i2t, 1e-5, "i2t");
      d_t2i = compare_scores(multi.score_matrix_t2i, single.score_matrix_t2i, 1e-5, "t2i");
    }
    EXPECT_LT(multi.itm_rows, single.itm_rows);  // the work is split
    std::printf("  [rank %d] %s, image_block %lld: 2-rank vs 1-rank max|diff| i2t %.3g t2i %.3g; ITM rows %lld of %lld\n",
                ctx.rank(), eval_mode_name(mode), static_cast<long long>(image_block), d_i2t, d_t2i,
                static_cast<long long>(multi.itm_rows), static_cast<long long>(single.itm_rows));
    check_against_blip(multi, std::string("2 ranks ") + eval_mode_name(mode));
  }
}

TEST(RetrievalEvalDistributed, TwoRanksEqualOneRank) {
  if (blip::test::is_worker()) GTEST_SKIP() << "parent-only test";
  BLIP_REQUIRE_FIXTURES();
  if (!distributed_available()) GTEST_SKIP() << "built without c10d";
  const int port = blip::test::unused_loopback_port();
  std::vector<blip::test::Child> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.push_back(blip::test::spawn_worker("RetrievalEvalWorker.TwoRanks",
                                             blip::test::rank_env(r, 2, port, "", 30000)));
  EXPECT_TRUE(blip::test::wait_all(ranks, 120));
}

}  // namespace
