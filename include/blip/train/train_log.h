// The per-epoch line BLIP's train_retrieval.py appends to <output_dir>/log.txt, and the running
// averages that feed it.
//
// BLIP's train() returns {k: "{:.3f}".format(meter.global_avg)} over its MetricLogger meters, in
// the order they were added (lr, loss_itm, loss_ita), so the train values are STRINGS with three
// decimals ("0.000" for a 1e-5 learning rate). main() then writes
//   json.dumps({**train_*, **val_*, **test_*, 'epoch': e, 'best_epoch': b}) + "\n"
// with itm_eval's nine metrics as Python floats (repr, e.g. 33.333333333333336).
//
// Note on BLIP's semantics (the caller's job, not this file's): BLIP recomputes test_* only in an
// epoch whose val r_mean beats the best so far; in other epochs it logs the previous best epoch's
// test metrics again.
#pragma once

#include "blip/eval/itm_metrics.h"

#include <cstdint>
#include <string>

namespace blip::train {

// BLIP's SmoothedValue, the part log.txt uses: the count-weighted mean of every value added.
// `total` and `count` are public so ranks can sum them (SmoothedValue.synchronize_between_processes
// all-reduces exactly these two).
struct AverageMeter {
  double total = 0;
  std::int64_t count = 0;

  // SmoothedValue.update(value, n): total += value * n, count += n.
  void add(double value, std::int64_t n = 1);
  // total / count; NaN while nothing was added (Python raises ZeroDivisionError there).
  double global_avg() const;
};

// Global averages of one training epoch (BLIP's meters, in BLIP's order).
struct TrainStats {
  double lr = 0, loss_itm = 0, loss_ita = 0;
};

// Python's "{:.3f}".format(value): "0.000", "-0.000", "nan", "inf", "-inf".
std::string format_fixed3(double value);

// The log.txt line (without the newline):
// {"train_lr": "0.000", "train_loss_itm": "...", "train_loss_ita": "...", "val_txt_r1": ...,
//  ..., "test_r_mean": ..., "epoch": e, "best_epoch": b}
std::string format_log_line(const TrainStats& train, const eval::RetrievalMetrics& val,
                            const eval::RetrievalMetrics& test, std::int64_t epoch,
                            std::int64_t best_epoch);
// The same without test_* keys (`test` null): no epoch has improved on val yet (BLIP's own script
// would stop with a NameError there).
std::string format_log_line(const TrainStats& train, const eval::RetrievalMetrics& val,
                            const eval::RetrievalMetrics* test, std::int64_t epoch,
                            std::int64_t best_epoch);

// Appends `line` + "\n" to <output_dir>/log.txt (creating output_dir and parents, as BLIP's
// Path(...).mkdir(parents=True) does) and returns the file path. The whole new file is written
// to an exclusive temporary file and renamed over log.txt, so a crash never leaves a torn line.
// Single writer (the main rank). A line containing a newline is refused: log.txt is one JSON
// object per line.
std::string append_log_line(const std::string& output_dir, const std::string& line);

}  // namespace blip::train
