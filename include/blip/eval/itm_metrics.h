// BLIP's retrieval metrics (train_retrieval.py itm_eval): recall@1/5/10 in percent for
// image->text and text->image, their means, and the overall mean.
//
// Ranks are computed as BLIP does: a row's order is `np.argsort(score)[::-1]` (numpy's unstable
// quicksort, reproduced by numpy_argsort, then reversed), the rank is the position of the ground
// truth in that order, and for image->text the best (smallest) rank over the image's captions.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace blip::eval {

// The nine values itm_eval returns, in BLIP's key order.
struct RetrievalMetrics {
  double txt_r1 = 0, txt_r5 = 0, txt_r10 = 0, txt_r_mean = 0;
  double img_r1 = 0, img_r5 = 0, img_r10 = 0, img_r_mean = 0;
  double r_mean = 0;

  // {"txt_r1", txt_r1}, ... {"r_mean", r_mean}: BLIP's dict order.
  std::vector<std::pair<std::string, double>> items() const;
};

// Rank of an image whose caption list is empty: BLIP starts from 1e20 and never lowers it, so
// such an image counts as a miss at every k.
inline constexpr std::int64_t kNoGroundTruthRank = INT64_MAX;

// Per-query ranks (0 = best) as itm_eval computes them.
// scores_i2t: [images, texts]; img2txt[i]: the texts of image i.
std::vector<std::int64_t> i2t_ranks(const at::Tensor& scores_i2t,
                                    const std::vector<std::vector<std::int64_t>>& img2txt);
// scores_t2i: [texts, images]; txt2img[t]: the image of text t.
std::vector<std::int64_t> t2i_ranks(const at::Tensor& scores_t2i,
                                    const std::vector<std::int64_t>& txt2img);

// Recall@{1,5,10} as BLIP computes it: 100.0 * count(rank < k) / len(ranks).
double recall_at(const std::vector<std::int64_t>& ranks, std::int64_t k);

// itm_eval. Score matrices must be 2-D float32 or float64 CPU tensors (other float dtypes are
// converted to float32; CUDA tensors are copied to the CPU); shapes and ground-truth indices are
// checked and a mismatch throws blip::Error.
RetrievalMetrics itm_eval(const at::Tensor& scores_i2t, const at::Tensor& scores_t2i,
                          const std::vector<std::int64_t>& txt2img,
                          const std::vector<std::vector<std::int64_t>>& img2txt);

}  // namespace blip::eval
