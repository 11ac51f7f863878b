// BLIP's retrieval evaluation protocol (train_retrieval.py evaluation()):
//   1. text features: tokenizer(max_length=35) in chunks of 256, F.normalize(text_proj(CLS));
//      text_ids[:, 0] = [ENC] for the ITM passes;
//   2. image features: visual_encoder on batches of batch_size_test (transform_test images),
//      F.normalize(vision_proj(CLS));
//   3. sims = image_embeds @ text_embeds.T; for each image the k_test most similar texts, and for
//      each text the k_test most similar images (torch.topk), are rescored with the ITM head:
//      score = itm_logit[:, 1] + sim; every other entry of the score matrices is -100.
//
// Two modes compute the same matrices:
//   * Reference: evaluation() transcribed call for call (the image's tokens repeated k_test times,
//     one ITM forward per query row, i2t then t2i), for checking.
//   * Optimized: the same pairs, scored image by image: each image's cross-attention keys/values
//     are computed once and shared by all its texts, a (image, text) pair needed by both
//     directions is scored once, and text padding beyond a batch's longest caption is dropped
//     (in the ITM batches and in the text encoder's ITC pass, which encodes shortest first).
//     Differences from Reference are float rounding only (different batch shapes).
//
// Distributed (DistContext with world_size > 1): Reference splits the query rows as BLIP does
// (step = N // world + 1) with every rank computing all features; Optimized shards texts and
// images for the feature passes and the ITM pairs by image. Both combine the ranks' rows
// exactly (entries a rank does not own are 0 in its all_reduce), so every world size gives the
// single-process matrices. (BLIP itself all_reduces -100-filled matrices, which shifts every
// rescored entry by -100 * (world - 1); that shift is not reproduced.)
//
// k_test larger than the number of texts or images (BLIP's topk would raise) is clamped, which
// scores every entry of that direction.
//
// The ITC features and the ITM scoring are those of blip/retrieval (itc_features.h,
// itm_scorer.h); this file adds BLIP's protocol around them (top-k, both directions, ranks).
//
// Everything runs under c10::InferenceMode (no autograd bookkeeping); the returned tensors are
// ordinary tensors.
//
// Precision (options.precision): fp32 (default), bf16, or fp16 (CUDA only). The model's floating
// weights and the images are in that type; the ITC features are normalize(proj(CLS).float()),
// so similarities, top-k and the score matrices (itm_logit[:, 1].float() + sim) are fp32.
//
// Host memory (optimized mode): the ViT tokens of the (local) images, images x (1 + patches) x
// vision_width in the compute type (COCO's 5,000 test images at 384 px, ViT-B: 8.25 GiB fp32,
// 4.13 GiB bf16), are kept for the rerank when they fit in options.max_token_memory_gib;
// otherwise (or with options.image_block > 0) the first pass keeps only each image's ITC feature
// and the rerank recomputes the tokens of a block of images right before that block's ITM pairs
// (a second ViT pass; same matrices). Reference mode always keeps every image's tokens.
#pragma once

#include "blip/blip_defaults.h"
#include "blip/config.h"
#include "blip/dist/distributed.h"
#include "blip/data/image_loader.h"
#include "blip/data/retrieval_dataset.h"
#include "blip/retrieval/itm_scorer.h"
#include "blip/retrieval/precision.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace blip::models {
class BlipRetrievalImpl;
struct BlipRetrievalSpec;
}
namespace blip::text {
class Tokenizer;
}

namespace blip::eval {

enum class EvalMode { Reference, Optimized };

// "reference" / "optimized"; anything else throws blip::Error.
EvalMode parse_eval_mode(const std::string& name);
const char* eval_mode_name(EvalMode mode);

// Precision helpers, now in blip/retrieval/precision.h; these names stay for existing callers.
using retrieval::cast_floating_weights;
using retrieval::parse_precision;
using retrieval::precision_name;

// Default budget for the ViT tokens kept in host memory (optimized mode): COCO's test split fits
// in bf16 (4.13 GiB) but not in fp32 (8.25 GiB, which is then recomputed in blocks of 3,028).
inline constexpr double kDefaultMaxTokenMemoryGiB = 5.0;

// evaluation()'s text chunk (text_bs) and BLIP's tokenizer max_length (blip_defaults.h).
inline constexpr std::int64_t kEvalTextBatch = kEvalTextChunk;
inline constexpr int kEvalMaxTextLength = kTextMaxLength;

struct RetrievalEvalOptions {
  EvalMode mode = EvalMode::Optimized;
  std::int64_t k_test = kTestK;
  std::int64_t batch_size_test = kBatchSizeTest;  // images per ViT forward
  std::int64_t text_batch = kEvalTextBatch;
  int max_length = kEvalMaxTextLength;
  std::int64_t image_size = kImageSize;  // for the default image loader (transform_test)
  // Optimized mode: texts per ITM forward of one image.
  std::int64_t itm_batch = retrieval::kDefaultItmBatch;
  c10::Device device = c10::Device(c10::kCPU);
  // Compute type: kFloat, kBFloat16 or kHalf (kHalf needs a CUDA device: LibTorch's CPU half
  // matmul is not usable). When the model's weights are in another type, evaluate_retrieval casts
  // them for the duration of the call and restores the original tensors on return (also on
  // error), so the caller's model is unchanged; casting the model beforehand
  // (model->to(precision)) avoids holding both copies.
  at::ScalarType precision = at::kFloat;
  // Optimized mode, ViT tokens for the rerank: 0 = keep all of them when they fit in
  // max_token_memory_gib, else recompute them in the largest blocks that fit; N > 0 = always
  // recompute them N images at a time.
  std::int64_t image_block = 0;
  double max_token_memory_gib = kDefaultMaxTokenMemoryGiB;

  // Image loading (see image_loader.h). An empty loader means transform_test_loader(image_size).
  data::ImageLoadFn image_loader;
  int num_workers = 4;
  bool skip_bad_images = false;

  bool show_progress = false;  // progress bars on stderr (see progress_enabled())
  std::string label;           // prefix of progress stage names, e.g. the split name
};

// The options a retrieval config sets (k_test, batch_size_test, image_size); the rest default.
// One mapping for blip_eval and the training loop's per-epoch evaluation.
RetrievalEvalOptions eval_options_from_config(const RetrievalConfig& config);

struct RetrievalEvalTiming {
  double text_s = 0, image_s = 0, rerank_s = 0, total_s = 0;
  double recompute_s = 0;  // part of rerank_s: ViT passes that recompute blocks of tokens
};

// How the ViT tokens of one rank's images are held for the rerank.
struct TokenMemoryPlan {
  std::int64_t images = 0;           // images this rank encodes
  std::int64_t bytes_per_image = 0;  // (1 + patches) * vision_width * sizeof(compute type)
  std::int64_t block = 0;            // 0: all tokens kept from the first pass; else block size
  std::int64_t bytes() const { return (block > 0 ? std::min(block, images) : images) * bytes_per_image; }
  std::string describe() const;      // e.g. "all 1000 images' ViT tokens kept (1.65 GiB)"
};

// The plan evaluate_retrieval follows for `num_images` images on this rank of `dist`.
TokenMemoryPlan plan_token_memory(const models::BlipRetrievalSpec& spec, std::int64_t num_images,
                                  const RetrievalEvalOptions& options,
                                  const dist::DistContext& dist = dist::DistContext());

struct RetrievalEvalResult {
  // The split that was scored: the input split, minus skipped images and their captions.
  data::RetrievalSplit split;
  std::vector<data::ImageLoadFailure> skipped;

  at::Tensor score_matrix_i2t;  // [images, texts] float32, CPU
  at::Tensor score_matrix_t2i;  // [texts, images] float32, CPU
  at::Tensor text_embeds;       // [texts, embed_dim]  normalized text_proj(CLS)
  at::Tensor image_embeds;      // [images, embed_dim] normalized vision_proj(CLS)
  std::int64_t k_i2t = 0, k_t2i = 0;  // k_test after clamping
  std::int64_t itm_rows = 0;          // ITM forward rows this rank ran
  TokenMemoryPlan token_memory;       // how this rank held the ViT tokens
  RetrievalEvalTiming timing;         // this rank's wall-clock seconds per stage
};

// Runs the protocol on `split` (model in eval mode afterwards, as BLIP's evaluation() leaves it).
// Every rank of `dist` must call it with the same split and options; all ranks return the same
// matrices. Bad images follow options.skip_bad_images (image_loader.h); an evaluation left with
// no image or no caption throws blip::Error.
RetrievalEvalResult evaluate_retrieval(models::BlipRetrievalImpl& model,
                                       const text::Tokenizer& tokenizer,
                                       const data::RetrievalSplit& split,
                                       const RetrievalEvalOptions& options,
                                       const dist::DistContext& dist = dist::DistContext());

}  // namespace blip::eval
