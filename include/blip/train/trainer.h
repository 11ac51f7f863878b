// BLIP's retrieval fine-tuning (train_retrieval.py main()), one process per rank:
//   for epoch in [start, max_epoch):
//     lr := cosine_lr(epoch); one pass over this rank's shard of the train set (DistributedSampler,
//     seeded shuffle per epoch, drop_last batches), each step BLIP_Retrieval.forward ->
//     loss_ita + loss_itm -> backward -> gradients averaged over ranks -> AdamW;
//     evaluate val (and test when val r_mean improves, as BLIP) with the eval engine;
//     rank 0: checkpoint_best.pth when val r_mean improves, one log.txt line, report.html,
//     checkpoint_last.pth (for --resume).
// Everything BLIP leaves to chance is seeded: the sampler by the seed and the epoch, each sample's
// augmentation by (seed, epoch, dataset index), and torch's generator (hard negatives) by
// seed + rank; checkpoint_last.pth holds the generator state and the position in the epoch, so a
// resumed run continues bit for bit (CPU).
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "blip/config.h"
#include "blip/dist/distributed.h"
#include "blip/eval/itm_metrics.h"

namespace blip::train {

inline constexpr const char* kBestCheckpoint = "checkpoint_best.pth";
inline constexpr const char* kLastCheckpoint = "checkpoint_last.pth";
inline constexpr const char* kLogFile = "log.txt";
inline constexpr const char* kReportFile = "report.html";
inline constexpr const char* kConfigFile = "config.yaml";
inline constexpr const char* kEvaluateFile = "evaluate.txt";

struct TrainOptions {
  std::string output_dir;
  std::string resume;        // a checkpoint_last.pth (or any BLIP checkpoint) to continue from
  bool evaluate = false;     // BLIP's --evaluate: val and test once, evaluate.txt, no training
  std::uint64_t seed = 42;   // BLIP: seed + rank for torch; the sampler and augmentation use seed
  c10::Device device = c10::Device(c10::kCPU);
  at::ScalarType precision = at::kFloat;  // kBFloat16: autocast (CPU, CUDA); kHalf: CUDA + scaler
  std::int64_t max_steps = 0;   // stop after this many optimizer steps in total (0: no limit)
  std::int64_t save_every = 0;  // also write checkpoint_last.pth every N steps (0: per epoch)
  int num_workers = 4;          // image decoding threads per rank
  bool strict_pretrained = false;  // BLIP loads `pretrained` non-strictly (drops unmatched keys)
  bool show_progress = false;      // progress bar on stderr (see eval::progress_enabled)
  // Receives one line per event (loading, epoch summaries, evaluation results, saved files);
  // rank 0 only. Null: silent.
  std::function<void(const std::string&)> log;
};

struct TrainResult {
  std::int64_t epochs_done = 0;   // epochs evaluated in this run
  std::int64_t global_step = 0;   // optimizer steps in total (including resumed ones)
  double best = 0;                // best val r_mean
  std::int64_t best_epoch = 0;
  bool has_val = false, has_test = false;
  eval::RetrievalMetrics val, test;  // the last val metrics; test of the best epoch
};

// Runs training (or, with options.evaluate, the evaluation) of `config` on this rank of `dist`.
// Every check that can fail before training does (configuration, annotation and image files,
// queue_size against the global batch, the output directory) runs before the first step; errors
// are blip::Error naming the file or key.
TrainResult train_retrieval(const RetrievalConfig& config, const TrainOptions& options,
                            const dist::DistContext& dist);

}  // namespace blip::train
