#include "blip/eval/retrieval_eval.h"

#include "blip/error.h"
#include "blip/eval/progress.h"
#include "blip/models/blip_retrieval.h"
#include "blip/text/tokenizer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>
#include <map>

namespace blip::eval {
namespace {

using Clock = std::chrono::steady_clock;
using models::BlipRetrievalImpl;

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

// The tokenizer's [rows, cols] matrices as int64 tensors.
std::pair<at::Tensor, at::Tensor> tokenize(const text::Tokenizer& tokenizer,
                                           const std::vector<std::string>& texts, int max_length) {
  text::Encoding enc = tokenizer.encode_batch(texts, max_length, text::Padding::MaxLength, true);
  const at::Tensor ids = at::from_blob(enc.input_ids.data(), {enc.rows, enc.cols}, at::kLong).clone();
  const at::Tensor att =
      at::from_blob(enc.attention_mask.data(), {enc.rows, enc.cols}, at::kLong).clone();
  return {ids, att};
}

// normalize(text_proj(CLS)) of texts [range) in chunks of text_batch, as CPU float rows.
at::Tensor text_features(BlipRetrievalImpl& model, const at::Tensor& ids, const at::Tensor& att,
                         Range range, const RetrievalEvalOptions& o, bool progress) {
  ProgressBar bar(stage(o, "text features"), range.size(), progress);
  std::vector<at::Tensor> parts;
  for (std::int64_t i = range.begin; i < range.end; i += o.text_batch) {
    const std::int64_t n = std::min(o.text_batch, range.end - i);
    parts.push_back(model.text_feat(ids.narrow(0, i, n).to(o.device), att.narrow(0, i, n).to(o.device))
                        .to(at::kCPU));
    bar.advance(n);
  }
  // An empty shard (more ranks than texts) still has the feature width, for all_gather.
  return parts.empty() ? at::empty({0, model.spec().embed_dim}) : at::cat(parts, 0);
}

// Image tokens (visual_encoder output) and normalized embeddings of images [range).
struct ImageFeatures {
  Range range;
  at::Tensor feats;   // [range.size(), N, D] CPU; rows of skipped images are zero
  at::Tensor embeds;  // [range.size(), E] CPU; rows of skipped images are zero
  std::vector<ImageLoadFailure> skipped;  // global indices
};

ImageFeatures image_features(BlipRetrievalImpl& model, const RetrievalSplit& split, Range range,
                             const RetrievalEvalOptions& o, bool progress) {
  std::vector<std::string> paths;
  for (std::int64_t i = range.begin; i < range.end; ++i) paths.push_back(split.image_path(i));
  ImageLoaderOptions lo;
  lo.batch_size = o.batch_size_test;
  lo.num_workers = o.num_workers;
  lo.skip_bad_images = o.skip_bad_images;
  ImageBatchLoader loader(paths, o.image_loader ? o.image_loader : transform_test_loader(
                                                                       static_cast<int>(o.image_size)),
                          lo);
  ProgressBar bar(stage(o, "image features"), range.size(), progress);
  ImageFeatures out;
  out.range = range;
  ImageBatch batch;
  while (loader.next(batch)) {
    const at::Tensor tokens = model.image_embeds(batch.images.to(o.device));
    const at::Tensor embeds = model.image_feat(tokens);
    if (!out.feats.defined()) {
      std::vector<int64_t> fs = tokens.sizes().vec();
      fs[0] = range.size();
      out.feats = at::zeros(fs, tokens.options().device(at::kCPU));
      out.embeds = at::zeros({range.size(), embeds.size(1)}, embeds.options().device(at::kCPU));
    }
    const at::Tensor rows = at::tensor(batch.indices, at::kLong);
    out.feats.index_copy_(0, rows, tokens.to(at::kCPU));
    out.embeds.index_copy_(0, rows, embeds.to(at::kCPU));
    const std::size_t newly_skipped = loader.skipped().size() - out.skipped.size();
    bar.advance(static_cast<std::int64_t>(batch.indices.size() + newly_skipped));
    out.skipped = loader.skipped();
  }
  out.skipped = loader.skipped();  // also those of trailing batches that were skipped entirely
  for (auto& f : out.skipped) f.index += range.begin;
  return out;
}

// ITM scores of image tokens `image` [N, D] (or a [k, N, D] batch) against texts.
at::Tensor itm_scores(BlipRetrievalImpl& model, const at::Tensor& ids, const at::Tensor& att,
                      const at::Tensor& image_tokens, const c10::Device& device) {
  const at::Tensor image_att =
      at::ones({image_tokens.size(0), image_tokens.size(1)}, at::TensorOptions(at::kLong).device(device));
  return BlipRetrievalImpl::itm_score(
      model.itm_logits(ids.to(device), att.to(device), image_tokens.to(device), image_att));
}

void check_options(const RetrievalEvalOptions& o) {
  if (o.k_test <= 0) fail("k_test", "must be positive, got " + std::to_string(o.k_test));
  if (o.batch_size_test <= 0)
    fail("batch_size_test", "must be positive, got " + std::to_string(o.batch_size_test));
  if (o.text_batch <= 0) fail("text_batch", "must be positive, got " + std::to_string(o.text_batch));
  if (o.itm_batch <= 0) fail("itm_batch", "must be positive, got " + std::to_string(o.itm_batch));
  if (o.max_length < 2) fail("max_length", "must be at least 2, got " + std::to_string(o.max_length));
}

// ---------------------------------------------------------------------------------------------
// Reference: evaluation()'s loops, call for call.
// ---------------------------------------------------------------------------------------------
void rerank_reference(BlipRetrievalImpl& model, const at::Tensor& sims, const at::Tensor& text_ids,
                      const at::Tensor& text_atts, const ImageFeatures& images,
                      const std::vector<std::int64_t>& local_row_of_image,
                      RetrievalEvalResult& r, const RetrievalEvalOptions& o, const DistContext& dist,
                      bool progress) {
  const std::int64_t num_images = sims.size(0), num_texts = sims.size(1);
  const int world = dist.world_size(), rank = dist.rank();
  // Reference mode: every rank holds every image, so each image has a local row.
  const at::Tensor local_rows = at::tensor(local_row_of_image, at::kLong);
  auto image_tokens = [&](std::int64_t i) {
    return images.feats[local_row_of_image[static_cast<std::size_t>(i)]];
  };
  // Rows this rank does not own stay 0, so that the all_reduce sum reproduces each row exactly.
  const float fill = 0.0f;
  at::Tensor i2t = at::full({num_images, num_texts}, world > 1 ? fill : kUnscored);
  at::Tensor t2i = at::full({num_texts, num_images}, world > 1 ? fill : kUnscored);

  {
    const std::int64_t step = num_images / world + 1;
    const std::int64_t start = rank * step, end = std::min(num_images, start + step);
    ProgressBar bar(stage(o, "i2t rerank"), std::max<std::int64_t>(0, end - start), progress);
    for (std::int64_t i = start; i < end; ++i) {
      const auto [topk_sim, topk_idx] = sims[i].topk(r.k_i2t, 0);
      const at::Tensor encoder_output = image_tokens(i).repeat({r.k_i2t, 1, 1});
      const at::Tensor score =
          itm_scores(model, text_ids.index_select(0, topk_idx), text_atts.index_select(0, topk_idx),
                     encoder_output, o.device).to(at::kCPU);
      i2t[i].fill_(kUnscored);
      i2t[i].index_put_({topk_idx}, score + topk_sim);
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
          itm_scores(model, text_ids[t].repeat({r.k_t2i, 1}), text_atts[t].repeat({r.k_t2i, 1}),
                     encoder_output, o.device).to(at::kCPU);
      t2i[t].fill_(kUnscored);
      t2i[t].index_put_({topk_idx}, score + topk_sim);
      r.itm_rows += r.k_t2i;
      bar.advance();
    }
  }
  if (world > 1) {
    dist.all_reduce_sum(i2t);
    dist.all_reduce_sum(t2i);
  }
  r.score_matrix_i2t = i2t;
  r.score_matrix_t2i = t2i;
}

// ---------------------------------------------------------------------------------------------
// Optimized: the same pairs, image by image with cached cross-attention keys/values.
// ---------------------------------------------------------------------------------------------
void rerank_optimized(BlipRetrievalImpl& model, const at::Tensor& sims, const at::Tensor& text_ids,
                      const at::Tensor& text_atts, const ImageFeatures& images,
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
  at::Tensor i2t = at::full({num_images, num_texts}, combine ? 0.0f : kUnscored);
  at::Tensor t2i = at::full({num_texts, num_images}, combine ? 0.0f : kUnscored);
  float* i2t_data = i2t.data_ptr<float>();
  float* t2i_data = t2i.data_ptr<float>();
  const at::Tensor sims_cpu = sims.to(at::kCPU).contiguous();
  const float* sims_data = sims_cpu.data_ptr<float>();
  const at::Tensor lengths_t = text_atts.sum(1).contiguous();
  const std::int64_t* lengths = lengths_t.data_ptr<std::int64_t>();

  std::int64_t local_images = 0;
  for (std::int64_t i = 0; i < num_images; ++i) local_images += local_row_of_image[i] >= 0;
  ProgressBar bar(stage(o, "ITM rerank"), local_images, progress);
  for (std::int64_t i = 0; i < num_images; ++i) {
    if (local_row_of_image[i] < 0) continue;
    // Merge duplicates; order by caption length so that each chunk's padding can be dropped.
    auto& w = wanted[i];
    std::sort(w.begin(), w.end(), [](const Wanted& a, const Wanted& b) { return a.text < b.text; });
    std::vector<Wanted> pairs;
    for (const Wanted& x : w) {
      if (!pairs.empty() && pairs.back().text == x.text)
        pairs.back().directions |= x.directions;
      else
        pairs.push_back(x);
    }
    std::stable_sort(pairs.begin(), pairs.end(), [&](const Wanted& a, const Wanted& b) {
      return lengths[a.text] < lengths[b.text];
    });

    const models::CrossAttentionCache kv =
        model.cross_attention_kv(images.feats[local_row_of_image[i]].unsqueeze(0).to(o.device));
    for (std::size_t c = 0; c < pairs.size(); c += static_cast<std::size_t>(o.itm_batch)) {
      const std::size_t n = std::min(pairs.size() - c, static_cast<std::size_t>(o.itm_batch));
      std::vector<std::int64_t> chunk(n);
      std::int64_t len = 0;
      for (std::size_t k = 0; k < n; ++k) {
        chunk[k] = pairs[c + k].text;
        len = std::max(len, lengths[chunk[k]]);
      }
      // Columns past the chunk's longest caption are padding in every row: drop them.
      const at::Tensor rows = at::tensor(chunk, at::kLong);
      const at::Tensor ids = text_ids.index_select(0, rows).narrow(1, 0, len);
      const at::Tensor att = text_atts.index_select(0, rows).narrow(1, 0, len);
      const at::Tensor score = BlipRetrievalImpl::itm_score(
          model.itm_logits(ids.to(o.device), att.to(o.device), kv)).to(at::kCPU, at::kFloat).contiguous();
      const float* sc = score.data_ptr<float>();
      for (std::size_t k = 0; k < n; ++k) {
        const std::int64_t t = chunk[k];
        // evaluation(): score + topk_sim, both float32.
        const float value = sc[k] + sims_data[i * num_texts + t];
        if (pairs[c + k].directions & kForI2t) i2t_data[i * num_texts + t] = value;
        if (pairs[c + k].directions & kForT2i) t2i_data[t * num_images + i] = value;
      }
      r.itm_rows += static_cast<std::int64_t>(n);
    }
    bar.advance();
  }
  bar.finish();

  if (combine) {
    dist.all_reduce_sum(i2t);
    dist.all_reduce_sum(t2i);
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

}  // namespace

EvalMode parse_eval_mode(const std::string& name) {
  if (name == "reference") return EvalMode::Reference;
  if (name == "optimized") return EvalMode::Optimized;
  fail("eval mode '" + name + "'", "expected reference or optimized");
}

const char* eval_mode_name(EvalMode mode) {
  return mode == EvalMode::Reference ? "reference" : "optimized";
}

RetrievalEvalResult evaluate_retrieval(models::BlipRetrievalImpl& model,
                                       const text::Tokenizer& tokenizer,
                                       const RetrievalSplit& split,
                                       const RetrievalEvalOptions& o, const DistContext& dist) {
  check_options(o);
  const std::string what = split.annotation_file.empty() ? "split " + split.name : split.annotation_file;
  if (split.num_images() == 0 || split.num_texts() == 0)
    fail(what, "nothing to evaluate (" + std::to_string(split.num_images()) + " images, " +
                   std::to_string(split.num_texts()) + " captions)");
  const auto t_start = Clock::now();
  c10::NoGradGuard no_grad;
  model.eval();
  const int world = dist.world_size(), rank = dist.rank();
  const bool sharded = o.mode == EvalMode::Optimized && world > 1;
  const bool progress = o.show_progress && dist.is_main();
  RetrievalEvalResult r;

  // 1. Texts (every rank tokenizes all of them; features are sharded in optimized mode).
  auto t0 = Clock::now();
  auto [ids, text_atts] = tokenize(tokenizer, split.text, o.max_length);
  at::Tensor text_ids = BlipRetrievalImpl::with_enc_token(ids, tokenizer.enc_id());
  const Range text_range = sharded ? shard(split.num_texts(), world, rank) : Range{0, split.num_texts()};
  at::Tensor text_embeds = text_features(model, ids, text_atts, text_range, o, progress);
  if (sharded) text_embeds = dist.all_gather(text_embeds.contiguous());
  r.timing.text_s = seconds_since(t0);

  // 2. Images.
  t0 = Clock::now();
  const Range image_range = sharded ? shard(split.num_images(), world, rank) : Range{0, split.num_images()};
  ImageFeatures images = image_features(model, split, image_range, o, progress);
  at::Tensor image_embeds = images.embeds;
  if (!image_embeds.defined())  // every local image was skipped (or the shard is empty)
    image_embeds = at::zeros({image_range.size(), text_embeds.size(1)});
  if (sharded) image_embeds = dist.all_gather(image_embeds.contiguous());
  r.timing.image_s = seconds_since(t0);

  // Skipped images: all ranks agree on the list, then drop them with their captions.
  at::Tensor failed = at::zeros({split.num_images()});
  for (const auto& f : images.skipped) failed[f.index] = 1.0f;
  if (world > 1) dist.all_reduce_sum(failed);
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
  r.split = without_images(split, dropped, &kept_texts, &kept_images);
  if (r.split.num_images() == 0 || r.split.num_texts() == 0)
    fail(what, "no image could be read (" + std::to_string(dropped.size()) + " skipped)");
  if (!dropped.empty()) {
    const at::Tensor kt = at::tensor(kept_texts, at::kLong), ki = at::tensor(kept_images, at::kLong);
    text_ids = text_ids.index_select(0, kt);
    text_atts = text_atts.index_select(0, kt);
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
  if (o.mode == EvalMode::Reference)
    rerank_reference(model, sims, text_ids, text_atts, images, local_row, r, o, dist, progress);
  else
    rerank_optimized(model, sims, text_ids, text_atts, images, local_row, r, o, dist, progress);
  r.timing.rerank_s = seconds_since(t0);
  r.timing.total_s = seconds_since(t_start);
  return r;
}

}  // namespace blip::eval
