// Everything a training run carries from step to step and across --resume: the position
// (TrainState), the epoch's running loss/lr sums, the report's history, and the best epoch's test
// metrics (BLIP logs the test metrics of the best epoch so far).
#pragma once

#include <torch/optim/adamw.h>

#include <optional>
#include <string>

#include "blip/config.h"
#include "blip/dist/distributed.h"
#include "blip/eval/itm_metrics.h"
#include "blip/models/blip_retrieval.h"
#include "blip/train/report_html.h"
#include "blip/train/train_checkpoint.h"
#include "blip/train/train_log.h"

namespace blip::train {

class OutputFiles;

// MetricLogger's meters of one epoch: sums and the count, so that a resumed epoch and several
// ranks average exactly as one process would (synchronize_between_processes).
struct MeterSums {
  double loss_itm = 0, loss_ita = 0, lr = 0;
  std::int64_t count = 0;
  void add(double itm, double ita, double step_lr);
  // The global averages over every rank (a collective: all ranks call it).
  TrainStats global_average(const dist::DistContext& dist) const;
};

struct RunState {
  TrainState state;
  MeterSums meters;
  TrainHistory history;
  bool has_test = false;
  std::optional<eval::RetrievalMetrics> test;
};

// Restores model, optimizer and run state from a checkpoint. A BLIP checkpoint without our training
// state resumes at the epoch after its 'epoch'. Each rank restores its own generator state.
RunState resume_from(const std::string& path, models::BlipRetrievalImpl& model,
                     torch::optim::AdamW& optimizer, const dist::DistContext& dist);

// Writes checkpoint_last.pth (rank 0) with every rank's generator state (a collective).
void save_last(OutputFiles& out, const models::BlipRetrievalImpl& model,
               const torch::optim::AdamW& optimizer, const RetrievalConfig& config, RunState& run,
               const dist::DistContext& dist);

}  // namespace blip::train
