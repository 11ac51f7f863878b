// What an evaluation run leaves behind, in BLIP's formats:
//   * a printed table of the nine itm_eval metrics per split;
//   * the line train_retrieval.py --evaluate appends to <output_dir>/evaluate.txt:
//       json.dumps({**{f'val_{k}': v ...}, **{f'test_{k}': v ...}})
//     i.e. {"val_txt_r1": 0.0, ..., "val_r_mean": ..., "test_txt_r1": ..., ...} with Python's
//     separators (", ", ": ") and Python's float repr (shortest round-trip: 25.0, 33.333333333333336);
//   * the score matrices, <output_dir>/scores_<split>.safetensors with score_matrix_i2t
//     [images, texts] and score_matrix_t2i [texts, images], float32.
#pragma once

#include "blip/eval/itm_metrics.h"

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace blip::eval {

// Python's repr(float) / json.dumps for a double: "0.0", "25.0", "33.333333333333336", "1e-05",
// "1e+16", "-0.0", "NaN", "Infinity", "-Infinity".
std::string python_float_repr(double value);

// json.dumps of the prefixed metrics of each split, in order (BLIP: {"val", ...}, {"test", ...}).
std::string evaluate_log_line(const std::vector<std::pair<std::string, RetrievalMetrics>>& splits);

// Appends evaluate_log_line(splits) + "\n" to <output_dir>/evaluate.txt (creating output_dir as
// BLIP's Path(...).mkdir(parents=True) does). Returns the file path; I/O errors throw blip::Error
// naming it.
std::string append_evaluate_log(const std::string& output_dir,
                                const std::vector<std::pair<std::string, RetrievalMetrics>>& splits);

// A fixed-width table: one row per split, one column per metric (2 decimals), for the console.
std::string format_metrics_table(const std::vector<std::pair<std::string, RetrievalMetrics>>& splits);

// Writes <output_dir>/scores_<split>.safetensors (float32 CPU copies). Shapes are checked
// (i2t [I, T], t2i [T, I]); returns the file path.
std::string save_score_matrices(const std::string& output_dir, const std::string& split,
                                const at::Tensor& score_matrix_i2t,
                                const at::Tensor& score_matrix_t2i);

}  // namespace blip::eval
