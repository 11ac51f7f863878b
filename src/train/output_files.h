// What a training run writes into output_dir (rank 0), each file atomically: config.yaml,
// log.txt, evaluate.txt, report.html, checkpoint_best.pth and checkpoint_last.pth.
#pragma once

#include <torch/optim/adamw.h>

#include <string>
#include <utility>
#include <vector>

#include "blip/config.h"
#include "blip/eval/itm_metrics.h"
#include "blip/models/blip_retrieval.h"
#include "blip/train/report_html.h"
#include "blip/train/train_checkpoint.h"

namespace blip::train {

struct TrainOptions;

class OutputFiles {
 public:
  // The main rank creates `dir` and checks that it can write there, so that a bad path fails
  // before any compute; other ranks only remember the path.
  OutputFiles(std::string dir, bool main_rank);

  std::string path(const std::string& name) const;
  void write_config(const RetrievalConfig& config) const;
  void append_log(const std::string& line) const;
  std::string append_evaluate(const std::vector<std::pair<std::string, eval::RetrievalMetrics>>& rows) const;
  void write_report(const TrainHistory& history, const RetrievalConfig& config, const TrainOptions& o,
                    int world_size, double elapsed_s) const;
  std::string save_best(const models::BlipRetrievalImpl& model, const torch::optim::AdamW& optimizer,
                        const RetrievalConfig& config, std::int64_t epoch) const;
  std::string save_last(const models::BlipRetrievalImpl& model, const torch::optim::AdamW& optimizer,
                        const RetrievalConfig& config, const TrainState& state) const;

 private:
  std::string dir_;
  bool main_;
};

}  // namespace blip::train
