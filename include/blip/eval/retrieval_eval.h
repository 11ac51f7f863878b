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
//     directions is scored once, and text padding beyond a batch's longest caption is dropped.
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
#pragma once

#include "blip/eval/distributed.h"
#include "blip/eval/image_loader.h"
#include "blip/eval/retrieval_dataset.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

namespace blip::models {
class BlipRetrievalImpl;
}
namespace blip::text {
class Tokenizer;
}

namespace blip::eval {

enum class EvalMode { Reference, Optimized };

// "reference" / "optimized"; anything else throws blip::Error.
EvalMode parse_eval_mode(const std::string& name);
const char* eval_mode_name(EvalMode mode);

// evaluation()'s text chunk (text_bs) and BLIP's tokenizer max_length.
inline constexpr std::int64_t kEvalTextBatch = 256;
inline constexpr int kEvalMaxTextLength = 35;

struct RetrievalEvalOptions {
  EvalMode mode = EvalMode::Optimized;
  std::int64_t k_test = 256;
  std::int64_t batch_size_test = 64;  // images per ViT forward
  std::int64_t text_batch = kEvalTextBatch;
  int max_length = kEvalMaxTextLength;
  std::int64_t image_size = 384;  // for the default image loader (transform_test)
  // Optimized mode: texts per ITM forward of one image.
  std::int64_t itm_batch = 256;
  c10::Device device = c10::Device(c10::kCPU);

  // Image loading (see image_loader.h). An empty loader means transform_test_loader(image_size).
  ImageLoadFn image_loader;
  int num_workers = 4;
  bool skip_bad_images = false;

  bool show_progress = false;  // progress bars on stderr (see progress_enabled())
  std::string label;           // prefix of progress stage names, e.g. the split name
};

struct RetrievalEvalTiming {
  double text_s = 0, image_s = 0, rerank_s = 0, total_s = 0;
};

struct RetrievalEvalResult {
  // The split that was scored: the input split, minus skipped images and their captions.
  RetrievalSplit split;
  std::vector<ImageLoadFailure> skipped;

  at::Tensor score_matrix_i2t;  // [images, texts] float32, CPU
  at::Tensor score_matrix_t2i;  // [texts, images] float32, CPU
  at::Tensor text_embeds;       // [texts, embed_dim]  normalized text_proj(CLS)
  at::Tensor image_embeds;      // [images, embed_dim] normalized vision_proj(CLS)
  std::int64_t k_i2t = 0, k_t2i = 0;  // k_test after clamping
  std::int64_t itm_rows = 0;          // ITM forward rows this rank ran
  RetrievalEvalTiming timing;         // this rank's wall-clock seconds per stage
};

// Runs the protocol on `split` (model in eval mode afterwards, as BLIP's evaluation() leaves it).
// Every rank of `dist` must call it with the same split and options; all ranks return the same
// matrices. Bad images follow options.skip_bad_images (image_loader.h); an evaluation left with
// no image or no caption throws blip::Error.
RetrievalEvalResult evaluate_retrieval(models::BlipRetrievalImpl& model,
                                       const text::Tokenizer& tokenizer,
                                       const RetrievalSplit& split,
                                       const RetrievalEvalOptions& options,
                                       const DistContext& dist = DistContext());

}  // namespace blip::eval
