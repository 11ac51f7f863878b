// blip::Retriever, the public facade, on the fixtures' tiny model: its embeddings and scores are
// extract_features' (the scoring path checked against BLIP's outputs), its index is incremental,
// and it can be shared between threads.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <thread>

#include "blip/config.h"
#include "blip/error.h"
#include "blip/image/transform.h"
#include "blip/models/factory.h"
#include "blip/retrieval/exact_search.h"
#include "blip/retrieval/text_tensors.h"
#include "blip/retriever.h"
#include "blip/text/pre_caption.h"
#include "blip/text/tokenizer.h"
#include "common/expect_error.h"
#include "common/fixtures.h"

namespace fs = std::filesystem;
using blip::test::blip_ref_dir;

namespace {

constexpr float kTolerance = 1e-5f;  // float32, other batch shapes and padding widths

std::string config_path() { return blip_ref_dir() + "/tiny_config.yaml"; }

std::vector<std::string> fixture_images() {
  return {blip_ref_dir() + "/images/v0_rgb_640x480.jpg", blip_ref_dir() + "/images/v1_rgb_500x333.png",
          blip_ref_dir() + "/images/v3_rgba_97x211.png", blip_ref_dir() + "/images/v7_rgb_64x64.jpg"};
}

const std::vector<std::string> kTexts = {"a man riding a wave", "Two DOGS in the snow!", "a red car"};

// The model's own forward methods (checked against BLIP's outputs in test_models), called as
// BLIP's evaluation() calls them, independently of the retrieval helpers the Retriever uses.
std::map<std::string, at::Tensor> reference_features() {
  const auto config = blip::load_retrieval_config(config_path());
  auto model = blip::models::load_blip_retrieval(config, "", {}, /*with_momentum=*/false);
  model->eval();
  const auto tokenizer = blip::text::load_tokenizer(config.tokenizer);
  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> out;
  out["pixel_values"] = blip::image::load_image_batch(fixture_images(), static_cast<int>(config.image_size));
  const at::Tensor embeds = model->image_embeds(out["pixel_values"]);
  out["image_feat"] = model->image_feat(embeds);
  std::vector<std::string> cleaned;
  for (const auto& t : kTexts) cleaned.push_back(blip::text::pre_caption(t, 30));
  const auto tokens = blip::retrieval::tokenize_to_tensors(*tokenizer, cleaned, 35);
  out["text_feat"] = model->text_feat(tokens.input_ids, tokens.attention_mask);
  at::Tensor ids_enc = tokens.input_ids.clone();
  ids_enc.select(1, 0).fill_(tokenizer->enc_id());
  std::vector<at::Tensor> rows;
  for (std::int64_t i = 0; i < embeds.size(0); ++i)
    rows.push_back(model->itm_logits(ids_enc, tokens.attention_mask, embeds.slice(0, i, i + 1)));
  out["itm_logits"] = at::stack(rows);  // [I, T, 2]
  return out;
}

at::Tensor as_tensor(const blip::Embeddings& e) {
  return at::from_blob(const_cast<float*>(e.values.data()), {e.rows, e.dim}, at::kFloat).clone();
}

}  // namespace

TEST(Retriever, EmbeddingsAndMatchesAreExtractFeatures) {
  BLIP_REQUIRE_FIXTURES();
  const auto ref = reference_features();
  const blip::Retriever r = blip::Retriever::load(config_path());
  EXPECT_EQ(r.embed_dim(), 16);
  EXPECT_EQ(r.image_size(), 64);
  const blip::Embeddings images = r.encode_images(fixture_images());
  ASSERT_EQ(images.rows, 4);
  ASSERT_EQ(images.dim, 16);
  EXPECT_LE((as_tensor(images) - ref.at("image_feat")).abs().max().item<float>(), kTolerance);
  const blip::Embeddings texts = r.encode_texts(kTexts);
  ASSERT_EQ(texts.rows, 3);
  EXPECT_LE((as_tensor(texts) - ref.at("text_feat")).abs().max().item<float>(), kTolerance);

  const at::Tensor sims = at::matmul(ref.at("image_feat"), ref.at("text_feat").t());
  const auto matches = r.match(fixture_images()[1], kTexts);
  ASSERT_EQ(matches.size(), kTexts.size());
  const at::Tensor logits = ref.at("itm_logits")[1];
  const at::Tensor probs = at::softmax(logits, 1);
  for (std::int64_t t = 0; t < 3; ++t) {
    EXPECT_NEAR(matches[t].itc, sims[1][t].item<float>(), kTolerance);
    EXPECT_NEAR(matches[t].itm_logit, logits[t][1].item<float>(), kTolerance);
    EXPECT_NEAR(matches[t].itm_probability, probs[t][1].item<float>(), kTolerance);
    EXPECT_FLOAT_EQ(matches[t].score, matches[t].itm_logit + matches[t].itc);
  }
  // The tensor path gives the same embeddings.
  EXPECT_LE((r.encode_pixels(ref.at("pixel_values")) - ref.at("image_feat")).abs().max().item<float>(), kTolerance);
}

TEST(Retriever, SearchRanksByItcThenRerankScore) {
  BLIP_REQUIRE_FIXTURES();
  const auto ref = reference_features();
  const blip::Retriever r = blip::Retriever::load(config_path());
  std::vector<blip::SkippedImage> skipped;
  auto paths = fixture_images();
  paths.push_back(blip_ref_dir() + "/README.md.jpg");  // missing: skipped, not fatal
  const auto index = r.build_index(paths, {}, &skipped);
  ASSERT_EQ(index.size(), 4);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].path, paths.back());
  EXPECT_EQ(index.fingerprint, r.fingerprint());

  const at::Tensor sims = at::matmul(ref.at("image_feat"), ref.at("text_feat").t());
  const at::Tensor itm = ref.at("itm_logits").select(2, 1);
  for (std::int64_t t = 0; t < 3; ++t) {
    const auto plain = r.search(kTexts[t], index, /*k=*/2);
    ASSERT_EQ(plain.hits.size(), 2u);
    const auto exact = blip::retrieval::exact_top_k(ref.at("text_feat").slice(0, t, t + 1), ref.at("image_feat"), 2)[0];
    for (std::size_t k = 0; k < 2; ++k) {
      EXPECT_EQ(plain.hits[k].item, exact[k].index);
      EXPECT_EQ(plain.hits[k].label, paths[static_cast<std::size_t>(exact[k].index)]);
      EXPECT_FALSE(plain.hits[k].itm.has_value());
    }
    // Rerank all four: the order of itm + itc.
    const auto reranked = r.search(kTexts[t], index, 4, 4);
    ASSERT_EQ(reranked.hits.size(), 4u);
    for (std::size_t k = 0; k < 4; ++k) {
      const std::int64_t i = reranked.hits[k].item;
      ASSERT_TRUE(reranked.hits[k].itm.has_value());
      EXPECT_NEAR(*reranked.hits[k].itm, itm[i][t].item<float>(), kTolerance);
      EXPECT_NEAR(reranked.hits[k].score, (itm[i][t] + sims[i][t]).item<float>(), kTolerance);
      if (k > 0) {
        EXPECT_GE(reranked.hits[k - 1].score, reranked.hits[k].score);
      }
    }
  }
}

TEST(Retriever, FingerprintNamesModelAndPrecision) {
  BLIP_REQUIRE_FIXTURES();
  const blip::Retriever a = blip::Retriever::load(config_path());
  const blip::Retriever b = blip::Retriever::load(config_path());
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  blip::RetrieverOptions bf16;
  bf16.precision = "bf16";
  const blip::Retriever c = blip::Retriever::load(config_path(), bf16);
  EXPECT_NE(a.fingerprint(), c.fingerprint());
  // An index of another model is refused, not silently mixed.
  auto index = a.build_index({fixture_images()[0]});
  index.fingerprint = "weights=0000000000000000;image_size=64;precision=fp32;preprocessing=x";
  blip::test::expect_error([&] { (void)a.search("a dog", index, 1); }, {"another model"});
  blip::test::expect_error([&] { (void)a.update_index(index, fixture_images()); }, {"another model"});
}

TEST(Retriever, SharedBetweenThreadsGivesTheSameEmbeddings) {
  BLIP_REQUIRE_FIXTURES();
  const blip::Retriever r = blip::Retriever::load(config_path());
  const blip::Embeddings alone = r.encode_texts(kTexts);
  std::vector<blip::Embeddings> out(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < out.size(); ++i) threads.emplace_back([&, i] { out[i] = r.encode_texts(kTexts); });
  for (auto& t : threads) t.join();
  for (const auto& e : out) EXPECT_EQ(e.values, alone.values);
}

TEST(Retriever, BadOptionsAndInputsNameTheProblem) {
  BLIP_REQUIRE_FIXTURES();
  blip::RetrieverOptions o;
  o.precision = "fp8";
  blip::test::expect_error([&] { (void)blip::Retriever::load(config_path(), o); }, {"fp8"});
  o = {};
  o.image_batch = 0;
  blip::test::expect_error([&] { (void)blip::Retriever::load(config_path(), o); }, {"image_batch"});
  blip::test::expect_error([&] { (void)blip::Retriever::load(blip_ref_dir() + "/nope.yaml"); }, {"nope.yaml"});
  const blip::Retriever r = blip::Retriever::load(config_path());
  blip::test::expect_error([&] { (void)r.encode_images({blip_ref_dir() + "/missing.png"}); }, {"missing.png"});
  blip::test::expect_error([&] { (void)r.encode_texts({"bad \xC3\x28 byte"}); }, {"text 1"});
  const auto index = r.build_index({fixture_images()[0]});
  blip::test::expect_error([&] { (void)r.search("a dog", index, 0); }, {"k"});
}

#ifdef BLIP_WITH_OPENCV
#include <opencv2/imgcodecs.hpp>

#include "blip/retriever_opencv.h"

TEST(Retriever, CvMatImagesEmbedAsTheirFiles) {
  BLIP_REQUIRE_FIXTURES();
  const blip::Retriever r = blip::Retriever::load(config_path());
  // Files whose decode OpenCV and PIL agree on (RGB JPEG/PNG without alpha).
  const std::vector<std::string> paths{fixture_images()[0], fixture_images()[1]};
  std::vector<cv::Mat> mats;
  for (const auto& p : paths) mats.push_back(cv::imread(p, cv::IMREAD_COLOR));
  const auto from_files = as_tensor(r.encode_images(paths));
  const auto from_mats = as_tensor(blip::encode_mats(r, mats));
  EXPECT_LE((from_files - from_mats).abs().max().item<float>(), kTolerance);
  blip::test::expect_error([&] { (void)blip::encode_mats(r, {cv::Mat()}); }, {"image 1", "empty"});
}
#endif
