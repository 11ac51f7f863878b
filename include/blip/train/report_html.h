// A self-contained HTML report of a training run: one file with inline CSS and inline SVG charts
// drawn here (no scripts, no network, no external files), readable in any browser or offline.
//
// Contents: a header with the run info (config, dataset, world size, precision, device, elapsed,
// throughput, best epoch); loss (ita, itm), learning-rate and throughput curves over steps; val
// and test recall curves (txt_r1, img_r1, txt_r5, img_r5, r_mean) over epochs; a table of every
// epoch's metrics. Long step series are thinned (min/max per bucket, so spikes stay visible) to
// at most kMaxPointsPerCurve points per curve, keeping the file small for long runs.
#pragma once

#include "blip/eval/itm_metrics.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace blip::train {

// Upper bound on the points drawn per curve.
inline constexpr std::size_t kMaxPointsPerCurve = 2000;

// One logged training step (values of that step, or of a short window ending at it).
struct StepPoint {
  std::int64_t step = 0;
  double epoch = 0;  // fractional: epoch + (i + 1) / steps_per_epoch
  double loss_ita = 0, loss_itm = 0, lr = 0;
  double images_per_s = 0;  // 0 or non-finite: unknown, not drawn
};

// One evaluation (normally at the end of an epoch). As in BLIP, test metrics may be computed only
// when val improves; has_test says whether `test` holds this epoch's numbers.
struct EpochPoint {
  std::int64_t epoch = 0;
  std::int64_t step = 0;  // the global step the evaluation ran after
  eval::RetrievalMetrics val;
  bool has_test = false;
  eval::RetrievalMetrics test;
};

struct TrainHistory {
  std::vector<StepPoint> steps;
  std::vector<EpochPoint> epochs;

  // A compact JSON form for checkpoints (columns of numbers; non-finite values as null).
  nlohmann::json to_json() const;
  // Inverse of to_json; a malformed document throws blip::Error naming the offending key.
  static TrainHistory from_json(const nlohmann::json& j);
  // Drops every step and epoch point recorded after global step `step` (resuming from a
  // checkpoint taken at `step` must forget what came after it).
  void truncate_after(std::int64_t step);
};

struct ReportInfo {
  std::string title = "BLIP retrieval training";
  std::string config_path, dataset, precision, device;
  int world_size = 1;
  double elapsed_s = 0;
  // More header rows, shown in order (name, value).
  std::vector<std::pair<std::string, std::string>> extra;
};

// The whole HTML document. All text from `info` is escaped.
std::string render_report_html(const TrainHistory& history, const ReportInfo& info);

// Renders and writes the report atomically (see blip/io/atomic_write.h); errors name `path`.
void write_report_html(const std::string& path, const TrainHistory& history, const ReportInfo& info);

}  // namespace blip::train
