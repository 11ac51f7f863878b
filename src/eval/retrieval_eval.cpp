#include "blip/eval/retrieval_eval.h"

#include "blip/error.h"
#include "blip/eval/progress.h"
#include "blip/models/blip_retrieval.h"
#include "blip/models/fused_attention.h"
#include "blip/retrieval/itc_features.h"
#include "blip/retrieval/itm_scorer.h"
#include "blip/retrieval/model_guards.h"
#include "blip/retrieval/text_tensors.h"
#include "blip/text/tokenizer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

namespace blip::eval {
using data::ImageBatch;
using data::ImageBatchLoader;
using data::ImageLoaderOptions;
using data::ImageLoadFailure;
using data::RetrievalSplit;
using dist::DistContext;
namespace {

using Clock = std::chrono::steady_clock;
using models::BlipRetrievalImpl;
using retrieval::ItmScorer;
using retrieval::ItmTexts;

// evaluation() fills every entry outside a row's top-k with this.
constexpr float kUnscored = -100.0f;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Range {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
  bool contains(std::int64_t i) const { return i >= begin && i < end; }
};

// Contiguous block `rank` of `n` items split over `world` ranks.
Range shard(std::int64_t n, int world, int rank) {
  const std::int64_t chunk = (n + world - 1) / world;
  const std::int64_t begin = std::min(n, chunk * rank);
  return {begin, std::min(n, begin + chunk)};
}

std::string stage(const RetrievalEvalOptions& o, const std::string& name) {
  return o.label.empty() ? name : o.label + " " + name;
}

// normalize(text_proj(CLS)) of texts [range) in chunks of text_batch, as CPU float rows.
at::Tensor text_features(BlipRetrievalImpl& model, const retrieval::TextTensors& tokens, Range range,
                         const RetrievalEvalOptions& o, bool progress) {
  ProgressBar bar(stage(o, "text features"), range.size(), progress);
  retrieval::ItcTextOptions to;
  to.chunk = o.text_batch;
  to.device = o.device;
  to.trim_padding = o.mode != EvalMode::Reference;  // reference: BLIP's padded calls
  to.first_token_only = o.mode != EvalMode::Reference;  // and every position of the last layer
  return retrieval::itc_text_features(model, tokens.input_ids, tokens.attention_mask, range.begin, range.end, to,
                                      [&](std::int64_t n) { bar.advance(n); });
}

// Image tokens (visual_encoder output) and normalized embeddings of images [range).
struct ImageFeatures {
  Range range;
  // [range.size(), N, D] CPU in the compute type; rows of skipped images are zero. Undefined
  // when the tokens are recomputed in blocks for the rerank.
  at::Tensor feats;
  at::Tensor embeds;  // [range.size(), E] CPU; rows of skipped images are zero
  std::vector<ImageLoadFailure> skipped;  // global indices
};

ImageBatchLoader make_loader(const std::vector<std::string>& paths, const RetrievalEvalOptions& o,
                             bool skip_bad_images) {
  ImageLoaderOptions lo;
  lo.batch_size = o.batch_size_test;
  lo.num_workers = o.num_workers;
  lo.skip_bad_images = skip_bad_images;
  return ImageBatchLoader(paths,
                          o.image_loader ? o.image_loader : data::transform_test_loader(static_cast<int>(o.image_size)),
                          lo);
}

// visual_encoder(images) in the compute type.
at::Tensor vit_tokens(BlipRetrievalImpl& model, const at::Tensor& images, const RetrievalEvalOptions& o) {
  return retrieval::image_tokens(model, images, o.device, o.precision);
}

ImageFeatures image_features(BlipRetrievalImpl& model, const RetrievalSplit& split, Range range,
                             const RetrievalEvalOptions& o, bool keep_tokens, bool progress) {
  std::vector<std::string> paths;
  for (std::int64_t i = range.begin; i < range.end; ++i) paths.push_back(split.image_path(i));
  ImageBatchLoader loader = make_loader(paths, o, o.skip_bad_images);
  ProgressBar bar(stage(o, "image features"), range.size(), progress);
  ImageFeatures out;
  out.range = range;
  ImageBatch batch;
  while (loader.next(batch)) {
    const at::Tensor tokens = vit_tokens(model, batch.images, o);
    const at::Tensor embeds = retrieval::itc_image_feat(model, tokens);
    if (!out.embeds.defined()) {
      if (keep_tokens) {
        std::vector<int64_t> fs = tokens.sizes().vec();
        fs[0] = range.size();
        out.feats = at::zeros(fs, tokens.options().device(at::kCPU));
      }
      out.embeds = at::zeros({range.size(), embeds.size(1)}, embeds.options().device(at::kCPU));
    }
    const at::Tensor rows = at::tensor(batch.indices, at::kLong);
    if (keep_tokens) out.feats.index_copy_(0, rows, tokens.to(at::kCPU));
    out.embeds.index_copy_(0, rows, embeds.to(at::kCPU));
    const std::size_t newly_skipped = loader.skipped().size() - out.skipped.size();
    bar.advance(static_cast<std::int64_t>(batch.indices.size() + newly_skipped));
    out.skipped = loader.skipped();
  }
  out.skipped = loader.skipped();  // also those of trailing batches that were skipped entirely
  for (auto& f : out.skipped) f.index += range.begin;
  return out;
}

void check_options(const RetrievalEvalOptions& o) {
  if (o.k_test <= 0) fail("k_test", "must be positive, got " + std::to_string(o.k_test));
  if (o.batch_size_test <= 0)
    fail("batch_size_test", "must be positive, got " + std::to_string(o.batch_size_test));
  if (o.text_batch <= 0) fail("text_batch", "must be positive, got " + std::to_string(o.text_batch));
  if (o.itm_batch <= 0) fail("itm_batch", "must be positive, got " + std::to_string(o.itm_batch));
  if (o.max_length < 2) fail("max_length", "must be at least 2, got " + std::to_string(o.max_length));
  if (o.image_block < 0) fail("image_block", "must be 0 (automatic) or positive, got " + std::to_string(o.image_block));
  if (!(o.max_token_memory_gib > 0))
    fail("max_token_memory", "must be positive, got " + std::to_string(o.max_token_memory_gib));
  retrieval::check_precision(o.precision, o.device);
}

ItmScorer make_scorer(BlipRetrievalImpl& model, const RetrievalEvalOptions& o) {
  retrieval::ItmScorerOptions so;
  so.itm_batch = o.itm_batch;
  so.device = o.device;
  so.precision = o.precision;
  return ItmScorer(model, so);
}

// A tensor made under InferenceMode, as an ordinary tensor (callers may modify it in place).
at::Tensor ordinary(const at::Tensor& t) {
  if (!t.defined() || !t.is_inference()) return t;
  c10::InferenceMode off(false);
  return t.clone();
}

// c10d runs collectives on its own threads, outside InferenceMode, where writing into an
// inference tensor is refused: collectives get (and make) ordinary tensors.
at::Tensor all_gather(const DistContext& dist, const at::Tensor& t) {
  c10::InferenceMode off(false);
  return dist.all_gather(ordinary(t).contiguous());
}
void all_reduce_sum(const DistContext& dist, at::Tensor& t) {
  c10::InferenceMode off(false);
  t = ordinary(t);
  dist.all_reduce_sum(t);
}

// ---------------------------------------------------------------------------------------------
// Reference: evaluation()'s loops, call for call.
// ---------------------------------------------------------------------------------------------
void rerank_reference(const ItmScorer& scorer, const at::Tensor& sims, const ItmTexts& texts,
                      const ImageFeatures& images,
                      const std::vector<std::int64_t>& local_row_of_image,
                      RetrievalEvalResult& r, const RetrievalEvalOptions& o, const DistContext& dist,
                      bool progress) {
  const std::int64_t num_images = sims.size(0), num_texts = sims.size(1);
  const int world = dist.world_size(), rank = dist.rank();
  const at::Tensor& text_ids = texts.ids();
  const at::Tensor& text_atts = texts.attention_mask();
  // Reference mode: every rank holds every image, so each image has a local row.
  const at::Tensor local_rows = at::tensor(local_row_of_image, at::kLong);
  auto image_tokens = [&](std::int64_t i) {
    return images.feats[local_row_of_image[static_cast<std::size_t>(i)]];
  };
  // Rows this rank does not own stay 0, so that the all_reduce sum reproduces each row exactly.
  const float fill = 0.0f;
  at::Tensor i2t, t2i;
  {
    c10::InferenceMode off(false);  // the returned matrices are ordinary tensors
    i2t = at::full({num_images, num_texts}, world > 1 ? fill : kUnscored);
    t2i = at::full({num_texts, num_images}, world > 1 ? fill : kUnscored);
  }

  {
    const std::int64_t step = num_images / world + 1;
    const std::int64_t start = rank * step, end = std::min(num_images, start + step);
    ProgressBar bar(stage(o, "i2t rerank"), std::max<std::int64_t>(0, end - start), progress);
    for (std::int64_t i = start; i < end; ++i) {
      const auto [topk_sim, topk_idx] = sims[i].topk(r.k_i2t, 0);
      const at::Tensor encoder_output = image_tokens(i).repeat({r.k_i2t, 1, 1});
      const at::Tensor score = scorer.pair_scores(text_ids.index_select(0, topk_idx),
                                                  text_atts.index_select(0, topk_idx), encoder_output);
      i2t[i].fill_(kUnscored);
      i2t[i].index_put_({topk_idx}, retrieval::combined_scores(score, topk_sim));
      r.itm_rows += r.k_i2t;
      bar.advance();
    }
  }
  {
    const at::Tensor sims_t = sims.t();
    const std::int64_t step = num_texts / world + 1;
    const std::int64_t start = rank * step, end = std::min(num_texts, start + step);
    ProgressBar bar(stage(o, "t2i rerank"), std::max<std::int64_t>(0, end - start), progress);
    for (std::int64_t t = start; t < end; ++t) {
      const auto [topk_sim, topk_idx] = sims_t[t].topk(r.k_t2i, 0);
      const at::Tensor encoder_output = images.feats.index_select(0, local_rows.index_select(0, topk_idx));
      const at::Tensor score =
          scorer.pair_scores(text_ids[t].repeat({r.k_t2i, 1}), text_atts[t].repeat({r.k_t2i, 1}), encoder_output);
      t2i[t].fill_(kUnscored);
      t2i[t].index_put_({topk_idx}, retrieval::combined_scores(score, topk_sim));
      r.itm_rows += r.k_t2i;
      bar.advance();
    }
  }
  if (world > 1) {
    all_reduce_sum(dist, i2t);
    all_reduce_sum(dist, t2i);
  }
  r.score_matrix_i2t = i2t;
  r.score_matrix_t2i = t2i;
}

// ---------------------------------------------------------------------------------------------
// Optimized: the same pairs, image by image with cached cross-attention keys/values.
// ---------------------------------------------------------------------------------------------
// ViT tokens [paths, N, D] (CPU, compute type) of images that were read once already.
at::Tensor recompute_tokens(BlipRetrievalImpl& model, const std::vector<std::string>& paths,
                            const RetrievalEvalOptions& o) {
  // Not skipping here: every image of the block was readable in the first pass.
  ImageBatchLoader loader = make_loader(paths, o, /*skip_bad_images=*/false);
  at::Tensor out;
  ImageBatch batch;
  while (loader.next(batch)) {
    const at::Tensor tokens = vit_tokens(model, batch.images, o).to(at::kCPU);
    if (!out.defined()) {
      std::vector<int64_t> fs = tokens.sizes().vec();
      fs[0] = static_cast<int64_t>(paths.size());
      out = at::empty(fs, tokens.options());
    }
    out.index_copy_(0, at::tensor(batch.indices, at::kLong), tokens);
  }
  return out;
}

void rerank_optimized(BlipRetrievalImpl& model, const ItmScorer& scorer, const at::Tensor& sims,
                      const ItmTexts& texts, const RetrievalSplit& split, const ImageFeatures& images,
                      const std::vector<std::int64_t>& local_row_of_image,
                      RetrievalEvalResult& r, const RetrievalEvalOptions& o, const DistContext& dist,
                      bool progress) {
  const std::int64_t num_images = sims.size(0), num_texts = sims.size(1);
  // The same top-k sets (and similarity values) as evaluation()'s per-row topk calls.
  const at::Tensor i2t_idx = std::get<1>(sims.topk(r.k_i2t, 1)).contiguous();
  const at::Tensor t2i_idx = std::get<1>(sims.t().topk(r.k_t2i, 1)).contiguous();
  const std::int64_t* i2t_ptr = i2t_idx.data_ptr<std::int64_t>();
  const std::int64_t* t2i_ptr = t2i_idx.data_ptr<std::int64_t>();

  // The texts each local image is scored against, and for which direction: its own top-k
  // (i2t), and every text that has this image in its top-k (t2i). A pair in both is scored once.
  constexpr std::uint8_t kForI2t = 1, kForT2i = 2;
  struct Wanted {
    std::int64_t text;
    std::uint8_t directions;
  };
  std::vector<std::vector<Wanted>> wanted(static_cast<std::size_t>(num_images));
  for (std::int64_t i = 0; i < num_images; ++i)
    if (local_row_of_image[i] >= 0)
      for (std::int64_t k = 0; k < r.k_i2t; ++k) wanted[i].push_back({i2t_ptr[i * r.k_i2t + k], kForI2t});
  for (std::int64_t t = 0; t < num_texts; ++t)
    for (std::int64_t k = 0; k < r.k_t2i; ++k) {
      const std::int64_t i = t2i_ptr[t * r.k_t2i + k];
      if (local_row_of_image[i] >= 0) wanted[i].push_back({t, kForT2i});
    }

  // With several ranks, entries this rank does not score stay 0 for the all_reduce sum and the
  // unscored -100 is applied afterwards from the (identical) top-k sets.
  const bool combine = dist.world_size() > 1;
  at::Tensor i2t, t2i;
  {
    c10::InferenceMode off(false);  // the returned matrices are ordinary tensors
    i2t = at::full({num_images, num_texts}, combine ? 0.0f : kUnscored);
    t2i = at::full({num_texts, num_images}, combine ? 0.0f : kUnscored);
  }
  float* i2t_data = i2t.data_ptr<float>();
  float* t2i_data = t2i.data_ptr<float>();
  const at::Tensor sims_cpu = sims.to(at::kCPU).contiguous();
  const float* sims_data = sims_cpu.data_ptr<float>();

  // Scores every wanted pair of image i, whose ViT tokens are `tokens` [N, D]: duplicates
  // merged, the image's cross-attention K/V computed once (the scorer orders the texts by length
  // and drops each chunk's padding).
  auto score_image = [&](std::int64_t i, const at::Tensor& tokens) {
    auto& w = wanted[i];
    std::sort(w.begin(), w.end(), [](const Wanted& a, const Wanted& b) { return a.text < b.text; });
    std::vector<Wanted> pairs;
    for (const Wanted& x : w) {
      if (!pairs.empty() && pairs.back().text == x.text)
        pairs.back().directions |= x.directions;
      else
        pairs.push_back(x);
    }
    std::vector<std::int64_t> rows(pairs.size());
    for (std::size_t k = 0; k < pairs.size(); ++k) rows[k] = pairs[k].text;
    const at::Tensor score = scorer.image_scores(tokens, texts, rows);
    const float* sc = score.data_ptr<float>();
    for (std::size_t k = 0; k < pairs.size(); ++k) {
      const std::int64_t t = rows[k];
      // evaluation(): score + topk_sim, both float32.
      const float value = retrieval::combined_score(sc[k], sims_data[i * num_texts + t]);
      if (pairs[k].directions & kForI2t) i2t_data[i * num_texts + t] = value;
      if (pairs[k].directions & kForT2i) t2i_data[t * num_images + i] = value;
    }
    r.itm_rows += static_cast<std::int64_t>(pairs.size());
  };

  // The images this rank scores, in blocks whose ViT tokens are recomputed right before their
  // ITM pairs when the first pass did not keep them.
  std::vector<std::int64_t> local;
  for (std::int64_t i = 0; i < num_images; ++i)
    if (local_row_of_image[i] >= 0) local.push_back(i);
  const bool recompute = !images.feats.defined();
  const std::size_t block =
      recompute ? static_cast<std::size_t>(std::max<std::int64_t>(1, r.token_memory.block)) : local.size();
  ProgressBar bar(stage(o, "ITM rerank"), static_cast<std::int64_t>(local.size()), progress);
  for (std::size_t b0 = 0; b0 < local.size(); b0 += block) {
    const std::size_t block_size = std::min(block, local.size() - b0);
    at::Tensor block_tokens;
    if (recompute) {
      const auto t0 = Clock::now();
      std::vector<std::string> paths;
      for (std::size_t j = 0; j < block_size; ++j)
        paths.push_back(split.image_path(images.range.begin + local_row_of_image[local[b0 + j]]));
      block_tokens = recompute_tokens(model, paths, o);
      r.timing.recompute_s += seconds_since(t0);
    }
    for (std::size_t j = 0; j < block_size; ++j) {
      const std::int64_t i = local[b0 + j];
      score_image(i, recompute ? block_tokens[static_cast<std::int64_t>(j)] : images.feats[local_row_of_image[i]]);
      bar.advance();
    }
  }
  bar.finish();

  if (combine) {
    all_reduce_sum(dist, i2t);
    all_reduce_sum(dist, t2i);
    at::Tensor scored_i2t = at::zeros({num_images, num_texts}, at::kBool);
    scored_i2t.scatter_(1, i2t_idx, true);
    i2t.masked_fill_(scored_i2t.logical_not(), kUnscored);
    at::Tensor scored_t2i = at::zeros({num_texts, num_images}, at::kBool);
    scored_t2i.scatter_(1, t2i_idx, true);
    t2i.masked_fill_(scored_t2i.logical_not(), kUnscored);
  }
  r.score_matrix_i2t = i2t;
  r.score_matrix_t2i = t2i;
}

void evaluate_in_inference_mode(models::BlipRetrievalImpl& model, const text::Tokenizer& tokenizer,
                                const RetrievalSplit& split, const RetrievalEvalOptions& o,
                                const DistContext& dist, RetrievalEvalResult& r);

}  // namespace

RetrievalEvalOptions eval_options_from_config(const RetrievalConfig& config) {
  RetrievalEvalOptions o;
  o.k_test = config.k_test;
  o.batch_size_test = config.batch_size_test;
  o.image_size = config.image_size;
  return o;
}

EvalMode parse_eval_mode(const std::string& name) {
  if (name == "reference") return EvalMode::Reference;
  if (name == "optimized") return EvalMode::Optimized;
  fail("eval mode '" + name + "'", "expected reference or optimized");
}

const char* eval_mode_name(EvalMode mode) {
  return mode == EvalMode::Reference ? "reference" : "optimized";
}

namespace {
std::string gib(std::int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}
}  // namespace

std::string TokenMemoryPlan::describe() const {
  const std::string all = gib(images * bytes_per_image);
  if (block == 0) return "all " + std::to_string(images) + " images' ViT tokens kept (" + all + ")";
  return "ViT tokens recomputed for the rerank in blocks of " + std::to_string(std::min(block, images)) +
         " images (" + gib(bytes()) + " at a time instead of " + all + "; a second ViT pass)";
}

TokenMemoryPlan plan_token_memory(const models::BlipRetrievalSpec& spec, std::int64_t num_images,
                                  const RetrievalEvalOptions& o, const DistContext& dist) {
  TokenMemoryPlan plan;
  const bool sharded = o.mode == EvalMode::Optimized && dist.world_size() > 1;
  plan.images = sharded ? shard(num_images, dist.world_size(), dist.rank()).size() : num_images;
  plan.bytes_per_image = (1 + spec.vit.num_patches()) * spec.vit.width *
                         static_cast<std::int64_t>(c10::elementSize(o.precision));
  if (o.mode == EvalMode::Reference) return plan;  // evaluation() holds every image's tokens
  if (o.image_block > 0) {
    plan.block = o.image_block;
    return plan;
  }
  const double budget = o.max_token_memory_gib * 1024.0 * 1024.0 * 1024.0;
  if (static_cast<double>(plan.images * plan.bytes_per_image) > budget)
    plan.block = std::max<std::int64_t>(1, static_cast<std::int64_t>(budget / static_cast<double>(plan.bytes_per_image)));
  return plan;
}

RetrievalEvalResult evaluate_retrieval(models::BlipRetrievalImpl& model,
                                       const text::Tokenizer& tokenizer,
                                       const RetrievalSplit& split,
                                       const RetrievalEvalOptions& o, const DistContext& dist) {
  check_options(o);
  retrieval::check_vocabulary_fits(tokenizer, model.text_encoder->embeddings->word_embeddings->weight.size(0),
                                   "retrieval evaluation");
  // Outside InferenceMode: the cast replaces the parameters' data (restored on return).
  const retrieval::ScopedModelDtype model_dtype(model, o.precision);
  RetrievalEvalResult r;
  {
    c10::InferenceMode inference;
    evaluate_in_inference_mode(model, tokenizer, split, o, dist, r);
  }
  r.text_embeds = ordinary(r.text_embeds);
  r.image_embeds = ordinary(r.image_embeds);
  r.score_matrix_i2t = ordinary(r.score_matrix_i2t);  // already ordinary: no copy
  r.score_matrix_t2i = ordinary(r.score_matrix_t2i);
  return r;
}

namespace {
void evaluate_in_inference_mode(models::BlipRetrievalImpl& model, const text::Tokenizer& tokenizer,
                                const RetrievalSplit& split, const RetrievalEvalOptions& o,
                                const DistContext& dist, RetrievalEvalResult& r) {
  const std::string what = split.annotation_file.empty() ? "split " + split.name : split.annotation_file;
  if (split.num_images() == 0 || split.num_texts() == 0)
    fail(what, "nothing to evaluate (" + std::to_string(split.num_images()) + " images, " +
                   std::to_string(split.num_texts()) + " captions)");
  const auto t_start = Clock::now();
  model.eval();
  // Reference mode stands in for BLIP's Python: ATen's attention operators, not the fused kernel.
  std::optional<models::UnfusedAttention> blips_operators;
  if (o.mode == EvalMode::Reference) blips_operators.emplace();
  const int world = dist.world_size(), rank = dist.rank();
  const bool sharded = o.mode == EvalMode::Optimized && world > 1;
  const bool progress = o.show_progress && dist.is_main();
  r.token_memory = plan_token_memory(model.spec(), split.num_images(), o, dist);

  // 1. Texts (every rank tokenizes all of them; features are sharded in optimized mode).
  auto t0 = Clock::now();
  const retrieval::TextTensors tokens = retrieval::tokenize_to_tensors(tokenizer, split.text, o.max_length);
  ItmTexts texts(tokens, tokenizer.enc_id());
  const Range text_range = sharded ? shard(split.num_texts(), world, rank) : Range{0, split.num_texts()};
  at::Tensor text_embeds = text_features(model, tokens, text_range, o, progress);
  if (sharded) text_embeds = all_gather(dist, text_embeds);
  r.timing.text_s = seconds_since(t0);

  // 2. Images.
  t0 = Clock::now();
  const Range image_range = sharded ? shard(split.num_images(), world, rank) : Range{0, split.num_images()};
  ImageFeatures images = image_features(model, split, image_range, o, r.token_memory.block == 0, progress);
  at::Tensor image_embeds = images.embeds;
  if (!image_embeds.defined())  // every local image was skipped (or the shard is empty)
    image_embeds = at::zeros({image_range.size(), text_embeds.size(1)});
  if (sharded) image_embeds = all_gather(dist, image_embeds);
  r.timing.image_s = seconds_since(t0);

  // Skipped images: all ranks agree on the list, then drop them with their captions.
  at::Tensor failed = at::zeros({split.num_images()});
  for (const auto& f : images.skipped) failed[f.index] = 1.0f;
  if (world > 1) all_reduce_sum(dist, failed);
  std::vector<std::int64_t> dropped;
  std::map<std::int64_t, ImageLoadFailure> known;
  for (const auto& f : images.skipped) known[f.index] = f;
  for (std::int64_t i = 0; i < split.num_images(); ++i)
    if (failed[i].item<float>() > 0) {
      dropped.push_back(i);
      auto it = known.find(i);
      r.skipped.push_back(it != known.end() ? it->second
                                            : ImageLoadFailure{i, split.image_path(i),
                                                               "unreadable (reported by another rank)"});
    }
  std::vector<std::int64_t> kept_texts, kept_images;
  r.split = data::without_images(split, dropped, &kept_texts, &kept_images);
  if (r.split.num_images() == 0 || r.split.num_texts() == 0)
    fail(what, "no image could be read (" + std::to_string(dropped.size()) + " skipped)");
  if (!dropped.empty()) {
    const at::Tensor kt = at::tensor(kept_texts, at::kLong), ki = at::tensor(kept_images, at::kLong);
    texts = texts.select(kt);
    text_embeds = text_embeds.index_select(0, kt);
    image_embeds = image_embeds.index_select(0, ki);
  }
  // Row of images.feats for each (renumbered) image; -1 when another rank holds it.
  std::vector<std::int64_t> local_row(static_cast<std::size_t>(r.split.num_images()), -1);
  for (std::int64_t m = 0; m < r.split.num_images(); ++m) {
    const std::int64_t original = dropped.empty() ? m : kept_images[m];
    if (image_range.contains(original)) local_row[m] = original - image_range.begin;
  }

  // 3. Similarities, top-k, ITM rerank.
  t0 = Clock::now();
  r.text_embeds = text_embeds;
  r.image_embeds = image_embeds;
  r.k_i2t = std::min(o.k_test, r.split.num_texts());
  r.k_t2i = std::min(o.k_test, r.split.num_images());
  const at::Tensor sims = at::matmul(image_embeds.to(o.device), text_embeds.to(o.device).t()).to(at::kCPU);
  const ItmScorer scorer = make_scorer(model, o);
  if (o.mode == EvalMode::Reference)
    rerank_reference(scorer, sims, texts, images, local_row, r, o, dist, progress);
  else
    rerank_optimized(model, scorer, sims, texts, split, images, local_row, r, o, dist, progress);
  r.timing.rerank_s = seconds_since(t0);
  r.timing.total_s = seconds_since(t_start);
}
}  // namespace

}  // namespace blip::eval
