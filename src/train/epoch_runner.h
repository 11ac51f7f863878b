// One epoch of train_retrieval.py train(): BLIP_Retrieval.forward on each batch of this rank's
// shard, loss_ita + loss_itm, backward, gradients averaged over ranks (DDP), AdamW.
#pragma once

#include <torch/optim/adamw.h>

#include <cstdint>
#include <memory>

#include "blip/config.h"
#include "blip/dist/distributed.h"
#include "blip/models/blip_retrieval.h"
#include "blip/text/tokenizer.h"
#include "blip/train/train_step.h"
#include "blip/train/trainer.h"
#include "run_state.h"
#include "train_data.h"

namespace blip::train {

struct EpochOutcome {
  std::int64_t steps = 0;      // optimizer steps run in this call
  bool completed = false;      // the epoch's last batch was reached (false: max_steps stopped it)
  double images_per_s = 0;     // this rank's images over the wall time of those steps
};

class EpochRunner {
 public:
  EpochRunner(models::BlipRetrievalImpl& model, torch::optim::AdamW& optimizer,
              const text::Tokenizer& tokenizer, const TrainData& data, const RetrievalConfig& config,
              const TrainOptions& options, const dist::DistContext& dist);

  // Trains epoch `epoch` at learning rate `lr` from run.state.epoch_step on, updating `run`
  // (position, meters, history); writes checkpoint_last.pth every options.save_every steps.
  EpochOutcome run(std::int64_t epoch, double lr, RunState& run, OutputFiles& out);

 private:
  models::BlipRetrievalImpl& model_;
  torch::optim::AdamW& optimizer_;
  const TrainData& data_;
  const RetrievalConfig& config_;
  const TrainOptions& options_;
  const dist::DistContext& dist_;
  TrainStepper stepper_;
};

}  // namespace blip::train
