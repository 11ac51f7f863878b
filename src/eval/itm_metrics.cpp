#include "blip/eval/itm_metrics.h"

#include "blip/error.h"
#include "blip/eval/numpy_argsort.h"

#include <ATen/ATen.h>

#include <string>

namespace blip::eval {
namespace {

// A CPU float32/float64 contiguous copy of a 2-D score matrix, as numpy would receive it.
at::Tensor as_numpy_matrix(const at::Tensor& scores, const std::string& what) {
  if (!scores.defined()) fail(what, "score matrix is undefined");
  if (scores.dim() != 2)
    fail(what, "score matrix must be 2-D, got " + std::to_string(scores.dim()) + " dimensions");
  if (!at::isFloatingType(scores.scalar_type()))
    fail(what, std::string("score matrix must hold floating-point values, got ") +
                   c10::toString(scores.scalar_type()));
  at::Tensor cpu = scores.detach().to(at::kCPU);
  if (cpu.scalar_type() != at::kFloat && cpu.scalar_type() != at::kDouble)
    cpu = cpu.to(at::kFloat);
  return cpu.contiguous();
}

// Position of `target` in the descending order of `row` (np.argsort(row)[::-1]).
template <typename T>
struct RowOrder {
  explicit RowOrder(const T* row, std::int64_t n) : ascending(numpy_argsort(row, n)), n(n) {
    position.resize(static_cast<std::size_t>(n));
    for (std::int64_t p = 0; p < n; ++p) position[ascending[p]] = n - 1 - p;
  }
  std::vector<std::int64_t> ascending;
  std::vector<std::int64_t> position;  // position[item] = rank of item in descending order
  std::int64_t n;
};

template <typename T>
std::vector<std::int64_t> i2t_ranks_impl(const at::Tensor& m,
                                         const std::vector<std::vector<std::int64_t>>& img2txt) {
  const std::int64_t rows = m.size(0), cols = m.size(1);
  const T* data = m.data_ptr<T>();
  std::vector<std::int64_t> ranks(static_cast<std::size_t>(rows));
  for (std::int64_t i = 0; i < rows; ++i) {
    RowOrder<T> order(data + i * cols, cols);
    std::int64_t best = kNoGroundTruthRank;
    for (std::int64_t t : img2txt[i]) best = std::min(best, order.position[t]);
    ranks[i] = best;
  }
  return ranks;
}

template <typename T>
std::vector<std::int64_t> t2i_ranks_impl(const at::Tensor& m, const std::vector<std::int64_t>& txt2img) {
  const std::int64_t rows = m.size(0), cols = m.size(1);
  const T* data = m.data_ptr<T>();
  std::vector<std::int64_t> ranks(static_cast<std::size_t>(rows));
  for (std::int64_t t = 0; t < rows; ++t) ranks[t] = RowOrder<T>(data + t * cols, cols).position[txt2img[t]];
  return ranks;
}

}  // namespace

std::vector<std::pair<std::string, double>> RetrievalMetrics::items() const {
  return {{"txt_r1", txt_r1},         {"txt_r5", txt_r5}, {"txt_r10", txt_r10},
          {"txt_r_mean", txt_r_mean}, {"img_r1", img_r1}, {"img_r5", img_r5},
          {"img_r10", img_r10},       {"img_r_mean", img_r_mean}, {"r_mean", r_mean}};
}

std::vector<std::int64_t> i2t_ranks(const at::Tensor& scores_i2t,
                                    const std::vector<std::vector<std::int64_t>>& img2txt) {
  const at::Tensor m = as_numpy_matrix(scores_i2t, "itm_eval scores_i2t");
  if (static_cast<std::int64_t>(img2txt.size()) != m.size(0))
    fail("itm_eval scores_i2t", "has " + std::to_string(m.size(0)) + " rows but img2txt has " +
                                    std::to_string(img2txt.size()) + " images");
  for (std::size_t i = 0; i < img2txt.size(); ++i)
    for (std::int64_t t : img2txt[i])
      if (t < 0 || t >= m.size(1))
        fail("itm_eval img2txt", "image " + std::to_string(i) + " lists text " + std::to_string(t) +
                                     ", outside [0, " + std::to_string(m.size(1)) + ")");
  return m.scalar_type() == at::kDouble ? i2t_ranks_impl<double>(m, img2txt)
                                        : i2t_ranks_impl<float>(m, img2txt);
}

std::vector<std::int64_t> t2i_ranks(const at::Tensor& scores_t2i,
                                    const std::vector<std::int64_t>& txt2img) {
  const at::Tensor m = as_numpy_matrix(scores_t2i, "itm_eval scores_t2i");
  if (static_cast<std::int64_t>(txt2img.size()) != m.size(0))
    fail("itm_eval scores_t2i", "has " + std::to_string(m.size(0)) + " rows but txt2img has " +
                                    std::to_string(txt2img.size()) + " texts");
  for (std::size_t t = 0; t < txt2img.size(); ++t)
    if (txt2img[t] < 0 || txt2img[t] >= m.size(1))
      fail("itm_eval txt2img", "text " + std::to_string(t) + " maps to image " +
                                   std::to_string(txt2img[t]) + ", outside [0, " +
                                   std::to_string(m.size(1)) + ")");
  return m.scalar_type() == at::kDouble ? t2i_ranks_impl<double>(m, txt2img)
                                        : t2i_ranks_impl<float>(m, txt2img);
}

double recall_at(const std::vector<std::int64_t>& ranks, std::int64_t k) {
  std::int64_t hits = 0;
  for (std::int64_t r : ranks) hits += r < k ? 1 : 0;
  // Same operation order as BLIP: (100.0 * count) / len, in double.
  return 100.0 * static_cast<double>(hits) / static_cast<double>(ranks.size());
}

RetrievalMetrics itm_eval(const at::Tensor& scores_i2t, const at::Tensor& scores_t2i,
                          const std::vector<std::int64_t>& txt2img,
                          const std::vector<std::vector<std::int64_t>>& img2txt) {
  if (scores_i2t.defined() && scores_t2i.defined() && scores_i2t.dim() == 2 &&
      scores_t2i.dim() == 2 &&
      (scores_i2t.size(0) != scores_t2i.size(1) || scores_i2t.size(1) != scores_t2i.size(0)))
    fail("itm_eval", "scores_i2t is " + std::to_string(scores_i2t.size(0)) + "x" +
                         std::to_string(scores_i2t.size(1)) + " but scores_t2i is " +
                         std::to_string(scores_t2i.size(0)) + "x" +
                         std::to_string(scores_t2i.size(1)) + " (expected the transpose shape)");
  const auto ri = i2t_ranks(scores_i2t, img2txt);
  const auto rt = t2i_ranks(scores_t2i, txt2img);
  if (ri.empty() || rt.empty()) fail("itm_eval", "empty score matrix (no images or no texts)");

  RetrievalMetrics m;
  m.txt_r1 = recall_at(ri, 1);
  m.txt_r5 = recall_at(ri, 5);
  m.txt_r10 = recall_at(ri, 10);
  m.img_r1 = recall_at(rt, 1);
  m.img_r5 = recall_at(rt, 5);
  m.img_r10 = recall_at(rt, 10);
  m.txt_r_mean = (m.txt_r1 + m.txt_r5 + m.txt_r10) / 3;
  m.img_r_mean = (m.img_r1 + m.img_r5 + m.img_r10) / 3;
  m.r_mean = (m.txt_r_mean + m.img_r_mean) / 2;
  return m;
}

}  // namespace blip::eval
