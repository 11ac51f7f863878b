// The ITM scorer and ITC features against what BLIP's own code computed: the forward fixture's
// ITM logits for every (image, caption) pair given BLIP's ViT tokens, and the entries of
// evaluation()'s score matrices (itm_logit[:, 1] + sim) for every top-k pair of the eval fixture.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "blip/config.h"
#include "blip/error.h"
#include "blip/image/transform.h"
#include "blip/io/safetensors.h"
#include "blip/models/blip_retrieval.h"
#include "blip/models/factory.h"
#include "blip/retrieval/itc_features.h"
#include "blip/retrieval/itm_scorer.h"
#include "blip/retrieval/model_guards.h"
#include "blip/text/tokenizer.h"
#include "common/fixtures.h"

namespace {

using namespace blip::retrieval;

// fp32: the scorer runs BLIP's computation in the same type; what is left is summation order
// (the fixture README measured score drift of 3.3e-6 between BLAS kernels).
constexpr double kFp32Tolerance = 1e-5;
// bf16 weights and activations (8-bit mantissa) on fp32 tokens: measured max |diff| of the ITM
// logits 0.031 on this model (logits span -3.3..1.1); about twice that as the bound.
constexpr double kBf16Tolerance = 0.07;

struct Fixture {
  blip::RetrievalConfig config;
  blip::models::BlipRetrieval model{nullptr};
  std::unique_ptr<blip::text::Tokenizer> tokenizer;
  std::map<std::string, at::Tensor> forward;  // forward.safetensors
  std::map<std::string, at::Tensor> scores;   // eval/scores.safetensors
  nlohmann::json eval_result;
};

std::map<std::string, at::Tensor> by_name(const blip::io::NamedTensors& list) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [n, t] : list) out[n] = t;
  return out;
}

const Fixture& fixture() {
  static const std::unique_ptr<Fixture> f = [] {
    auto x = std::make_unique<Fixture>();
    const std::string ref = blip::test::blip_ref_dir();
    x->config = blip::load_retrieval_config(ref + "/tiny_config.yaml");
    x->model = blip::models::load_blip_retrieval(x->config, "", {}, /*with_momentum=*/false);
    x->model->eval();
    x->tokenizer = blip::text::load_tokenizer(x->config.tokenizer);
    x->forward = by_name(blip::io::load_safetensors(ref + "/forward.safetensors"));
    x->scores = by_name(blip::io::load_safetensors(ref + "/eval/scores.safetensors"));
    std::ifstream in(ref + "/eval/eval_result.json");
    x->eval_result = nlohmann::json::parse(in);
    return x;
  }();
  return *f;
}

// A holder copy shares the module (the fixture is const, the model is not).
blip::models::BlipRetrievalImpl& model() {
  blip::models::BlipRetrieval m = fixture().model;
  return *m;
}

at::Tensor forward_tensor(const std::string& name) { return fixture().forward.at(name); }
at::Tensor scores_tensor(const std::string& name) { return fixture().scores.at(name); }

// The forward fixture's 6 captions, as the ITM head takes them.
ItmTexts forward_texts() {
  return ItmTexts(TextTensors{forward_tensor("text.input_ids"), forward_tensor("text.attention_mask")},
                  fixture().tokenizer->enc_id());
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

ItmScorerOptions scorer_options(std::int64_t itm_batch, bool trim_padding, at::ScalarType precision = at::kFloat) {
  ItmScorerOptions o;
  o.itm_batch = itm_batch;
  o.trim_padding = trim_padding;
  o.precision = precision;
  return o;
}

}  // namespace

TEST(ItmTexts, EncTokenFirstAndLengths) {
  BLIP_REQUIRE_FIXTURES();
  const ItmTexts texts = forward_texts();
  ASSERT_EQ(texts.size(), 6);
  EXPECT_TRUE(at::equal(texts.ids(), forward_tensor("itm.input_ids")));  // BLIP's [ENC] ids
  const at::Tensor mask = forward_tensor("text.attention_mask");
  for (std::int64_t t = 0; t < texts.size(); ++t) EXPECT_EQ(texts.length(t), mask[t].sum().item<std::int64_t>());
  const ItmTexts picked = texts.select(at::tensor(std::vector<std::int64_t>{4, 1, 4}, at::kLong));
  ASSERT_EQ(picked.size(), 3);
  EXPECT_TRUE(at::equal(picked.ids()[0], texts.ids()[4]));
  EXPECT_TRUE(at::equal(picked.ids()[1], texts.ids()[1]));
  EXPECT_EQ(picked.length(2), texts.length(4));
}

// One image against all six captions, for each of BLIP's four images: chunking, padding trim
// and the caller's row order must not change the logits beyond float rounding.
TEST(ItmScorer, ImageAgainstTextsMatchesBlipLogits) {
  BLIP_REQUIRE_FIXTURES();
  const ItmTexts texts = forward_texts();
  const at::Tensor tokens = forward_tensor("vit.out");   // [4, N, D], BLIP's ViT output
  const at::Tensor want = forward_tensor("itm.logits");  // [4, 6, 2]
  ASSERT_EQ(tokens.size(0), 4);
  ASSERT_EQ(want.size(1), texts.size());
  int compared = 0;
  // (itm_batch, trim_padding, min_batch_tokens): min 0 puts each caption length in its own batch.
  for (const auto& [batch, trim, min_tokens] : std::vector<std::tuple<std::int64_t, bool, std::int64_t>>{
           {256, true, kDefaultItmMinBatchTokens}, {256, true, 0}, {4, true, kDefaultItmMinBatchTokens}, {4, false, 0}}) {
    ItmScorerOptions options = scorer_options(batch, trim);
    options.min_batch_tokens = min_tokens;
    const ItmScorer scorer(model(), options);
    double worst = 0;
    for (std::int64_t i = 0; i < tokens.size(0); ++i) {
      const at::Tensor logits = scorer.image_logits(tokens[i], texts);
      ASSERT_EQ(logits.scalar_type(), at::kFloat);
      ASSERT_EQ(logits.device(), at::Device(at::kCPU));
      worst = std::max(worst, max_abs_diff(logits, want[i]));
      // Any order, with a repeat: row k is text rows[k].
      const std::vector<std::int64_t> rows{5, 0, 3, 3, 1};
      const at::Tensor picked = scorer.image_logits(tokens[i], texts, rows);
      worst = std::max(worst, max_abs_diff(picked, want[i].index_select(0, at::tensor(rows, at::kLong))));
      const at::Tensor scores = scorer.image_scores(tokens[i], texts, rows);
      const at::Tensor want_scores = forward_tensor("itm.score")[i].index_select(0, at::tensor(rows, at::kLong));
      worst = std::max(worst, max_abs_diff(scores, want_scores));
      ++compared;
    }
    std::printf("  itm_batch %lld, trim %d, min tokens %lld: max |logit diff| vs BLIP %.3g\n",
                static_cast<long long>(batch), trim ? 1 : 0, static_cast<long long>(min_tokens), worst);
    EXPECT_LE(worst, kFp32Tolerance);
  }
  EXPECT_EQ(compared, 4 * 4);
}

// Batches of texts sorted by length: at most itm_batch texts, and closed before a longer text
// once they hold min_batch_tokens token rows (so that little padding is computed).
TEST(ItmBatchSpans, CapsTextsAndAvoidsPadding) {
  using Spans = std::vector<std::pair<std::int64_t, std::int64_t>>;
  ItmScorerOptions o;
  o.itm_batch = 4;
  o.min_batch_tokens = 20;
  const std::vector<std::int64_t> lengths{10, 10, 11, 12, 12, 12, 12, 12, 30};
  // [10,10] has 20 rows when 11 arrives: closed. [11] has 11 < 20 rows: 12 joins. [11,12,12,12]
  // is full. [12,12] has 24 rows when 30 arrives: closed.
  EXPECT_EQ(itm_batch_spans(lengths, o), (Spans{{0, 2}, {2, 6}, {6, 8}, {8, 9}}));
  o.min_batch_tokens = 0;  // every length on its own (up to itm_batch)
  EXPECT_EQ(itm_batch_spans(lengths, o), (Spans{{0, 2}, {2, 3}, {3, 7}, {7, 8}, {8, 9}}));
  o.min_batch_tokens = 1000;  // never early: fixed chunks of itm_batch
  EXPECT_EQ(itm_batch_spans(lengths, o), (Spans{{0, 4}, {4, 8}, {8, 9}}));
  o.min_batch_tokens = 0;
  o.trim_padding = false;  // full width anyway: only itm_batch counts
  EXPECT_EQ(itm_batch_spans(lengths, o), (Spans{{0, 4}, {4, 8}, {8, 9}}));
  EXPECT_TRUE(itm_batch_spans({}, o).empty());
}

// One caption against BLIP's four images (evaluation()'s text-to-image call), in chunks of 3.
TEST(ItmScorer, TextAgainstImagesMatchesBlipScores) {
  BLIP_REQUIRE_FIXTURES();
  const ItmTexts texts = forward_texts();
  const at::Tensor tokens = forward_tensor("vit.out");
  const at::Tensor want = forward_tensor("itm.score");  // [4 images, 6 texts]
  int compared = 0;
  for (bool trim : {true, false}) {
    const ItmScorer scorer(model(), scorer_options(3, trim));
    double worst = 0;
    for (std::int64_t t = 0; t < texts.size(); ++t) {
      const at::Tensor scores = scorer.text_scores(texts, t, tokens);
      ASSERT_EQ(scores.size(0), tokens.size(0));
      worst = std::max(worst, max_abs_diff(scores, want.select(1, t)));
      ++compared;
    }
    std::printf("  text_scores trim %d: max |diff| vs BLIP %.3g\n", trim ? 1 : 0, worst);
    EXPECT_LE(worst, kFp32Tolerance);
  }
  EXPECT_EQ(compared, 2 * 6);
  // pair_scores: aligned rows (text b with image b), BLIP's call unchunked.
  const ItmScorer scorer(model(), scorer_options(kDefaultItmBatch, true));
  const at::Tensor text_rows = at::tensor(std::vector<std::int64_t>{0, 5, 2, 2}, at::kLong);
  const at::Tensor pairs = scorer.pair_scores(texts.ids().index_select(0, text_rows),
                                              texts.attention_mask().index_select(0, text_rows), tokens);
  const at::Tensor expected = at::stack({want[0][0], want[1][5], want[2][2], want[3][2]});
  EXPECT_LE(max_abs_diff(pairs, expected), kFp32Tolerance);
}

// The whole rescoring step of evaluation() on the eval fixture (12 images x 60 captions,
// k_test 10): for every top-k pair of both directions, itm_logit[:, 1] + sim equals BLIP's score
// matrix entry. BLIP's similarities and top-k sets are used, so only the scorer is under test;
// the ViT tokens are ours (the ITC features are checked against BLIP's on the way).
TEST(ItmScorer, CombinedScoresReproduceBlipEvaluation) {
  BLIP_REQUIRE_FIXTURES();
  const Fixture& f = fixture();
  std::vector<std::string> paths;
  for (const auto& p : f.eval_result["images"]) paths.push_back(blip::test::blip_ref_dir() + "/" + p.get<std::string>());
  ASSERT_EQ(paths.size(), 12u);
  const at::Tensor pixels = blip::image::load_image_batch(paths, static_cast<int>(f.config.image_size));
  const at::Tensor tokens = image_tokens(model(), pixels, at::Device(at::kCPU), at::kFloat);

  // ITC features as evaluation() computes them (text chunks of 256, and of 7 to cross chunks),
  // padded as BLIP pads them and trimmed (encoded shortest first, rows back in order).
  EXPECT_LE(max_abs_diff(itc_image_feat(model(), tokens), scores_tensor("image_embeds")), kFp32Tolerance);
  const at::Tensor ids = scores_tensor("text_ids"), atts = scores_tensor("text_atts");
  const at::Tensor lengths = atts.sum(1);
  ASSERT_GT(lengths.max().item<std::int64_t>(), lengths.min().item<std::int64_t>()) << "trimming needs mixed lengths";
  ASSERT_FALSE(at::equal(lengths, std::get<0>(lengths.sort()))) << "texts already sorted: order not tested";
  for (bool trim : {false, true})
    for (std::int64_t chunk : {blip::kEvalTextChunk, std::int64_t{7}}) {
      ItcTextOptions to;
      to.chunk = chunk;
      to.trim_padding = trim;
      std::int64_t seen = 0;
      const at::Tensor feats = itc_text_features(model(), ids, atts, 0, ids.size(0), to, [&](std::int64_t n) { seen += n; });
      EXPECT_EQ(seen, ids.size(0));
      EXPECT_LE(max_abs_diff(feats, scores_tensor("text_embeds")), kFp32Tolerance) << "chunk " << chunk << " trim " << trim;
    }
  const at::Tensor some = itc_text_features(model(), ids, atts, 10, 13);
  EXPECT_EQ(some.sizes(), (std::vector<std::int64_t>{3, scores_tensor("text_embeds").size(1)}));
  EXPECT_LE(max_abs_diff(some, scores_tensor("text_embeds").narrow(0, 10, 3)), kFp32Tolerance);
  EXPECT_EQ(itc_text_features(model(), ids, atts, 5, 5).size(0), 0);

  const ItmTexts texts(TextTensors{ids, atts}, f.tokenizer->enc_id());
  const at::Tensor sims = scores_tensor("sims_matrix");
  const at::Tensor topk_i2t = scores_tensor("topk_i2t"), topk_t2i = scores_tensor("topk_t2i");
  const at::Tensor want_i2t = scores_tensor("score_matrix_i2t"), want_t2i = scores_tensor("score_matrix_t2i");
  const ItmScorer scorer(model(), scorer_options(4, true));
  double worst = 0;
  std::int64_t pairs = 0;
  for (std::int64_t i = 0; i < sims.size(0); ++i) {
    const at::Tensor idx = topk_i2t[i];
    const std::vector<std::int64_t> rows(idx.data_ptr<std::int64_t>(), idx.data_ptr<std::int64_t>() + idx.numel());
    const at::Tensor got = combined_scores(scorer.image_scores(tokens[i], texts, rows), sims[i].index_select(0, idx));
    worst = std::max(worst, max_abs_diff(got, want_i2t[i].index_select(0, idx)));
    pairs += idx.numel();
  }
  for (std::int64_t t = 0; t < sims.size(1); ++t) {
    const at::Tensor idx = topk_t2i[t];
    const at::Tensor got =
        combined_scores(scorer.text_scores(texts, t, tokens.index_select(0, idx)), sims.select(1, t).index_select(0, idx));
    worst = std::max(worst, max_abs_diff(got, want_t2i[t].index_select(0, idx)));
    pairs += idx.numel();
  }
  std::printf("  %lld top-k pairs: max |score diff| vs BLIP's evaluation() %.3g\n", static_cast<long long>(pairs), worst);
  EXPECT_EQ(pairs, 12 * 10 + 60 * 10);
  EXPECT_LE(worst, kFp32Tolerance);
  EXPECT_EQ(combined_score(1.5f, -0.25f), 1.25f);
}

// bf16 weights and activations: the scorer casts fp32 tokens to the weights' type; logits stay
// near fp32 BLIP's, and the caller's fp32 model is restored bitwise afterwards.
TEST(ItmScorer, Bfloat16CloseToBlip) {
  BLIP_REQUIRE_FIXTURES();
  const ItmTexts texts = forward_texts();
  const at::Tensor tokens = forward_tensor("vit.out");
  const at::Tensor want = forward_tensor("itm.logits");
  const at::Tensor weight_before = model().itm_head->weight.clone();
  double worst = 0, fp32_worst = 0;
  {
    const ScopedModelDtype bf16(model(), at::kBFloat16);
    ASSERT_EQ(model().itm_head->weight.scalar_type(), at::kBFloat16);
    ASSERT_EQ(model().text_encoder->named_buffers()["embeddings.position_ids"].scalar_type(), at::kLong);
    const ItmScorer scorer(model(), scorer_options(4, true, at::kBFloat16));
    for (std::int64_t i = 0; i < tokens.size(0); ++i) {
      const at::Tensor logits = scorer.image_logits(tokens[i], texts);
      ASSERT_EQ(logits.scalar_type(), at::kFloat);
      worst = std::max(worst, max_abs_diff(logits, want[i]));
    }
  }
  EXPECT_TRUE(at::equal(model().itm_head->weight, weight_before));
  const ItmScorer scorer(model(), scorer_options(4, true));
  for (std::int64_t i = 0; i < tokens.size(0); ++i)
    fp32_worst = std::max(fp32_worst, max_abs_diff(scorer.image_logits(tokens[i], texts), want[i]));
  std::printf("  bf16: max |logit diff| vs BLIP %.3g (fp32 after restore: %.3g)\n", worst, fp32_worst);
  EXPECT_LE(worst, kBf16Tolerance);
  EXPECT_GT(worst, kFp32Tolerance);  // the bf16 path really ran in bf16
  EXPECT_LE(fp32_worst, kFp32Tolerance);
}

TEST(ItmScorer, BadArgumentsThrow) {
  BLIP_REQUIRE_FIXTURES();
  EXPECT_THROW(ItmScorer(model(), scorer_options(0, true)), blip::Error);
  EXPECT_THROW(ItmScorer(model(), scorer_options(4, true, at::kHalf)), blip::Error);  // fp16 on CPU
  const ItmTexts texts = forward_texts();
  const ItmScorer scorer(model(), scorer_options(4, true));
  const at::Tensor tokens = forward_tensor("vit.out")[0];
  EXPECT_THROW(scorer.image_logits(tokens, texts, {0, 6}), blip::Error);
  EXPECT_THROW(scorer.text_scores(texts, -1, forward_tensor("vit.out")), blip::Error);
  const at::Tensor none = scorer.image_logits(tokens, texts, {});
  EXPECT_EQ(none.sizes(), (std::vector<std::int64_t>{0, 2}));
}
