// One optimizer step of train_retrieval.py train(): tokenize the captions (kTextMaxLength),
// BLIP_Retrieval.forward (under autocast for bf16/fp16), loss_ita + loss_itm, backward, gradients
// averaged over ranks (DDP's bucketed all-reduce), AdamW (through the grad scaler for fp16).
// The training loop and the tests drive the same code.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <torch/optim/adamw.h>

#include <memory>
#include <string>
#include <vector>

#include "blip/dist/distributed.h"
#include "blip/models/blip_retrieval.h"
#include "blip/models/train_forward.h"
#include "blip/text/tokenizer.h"

namespace blip::train {

struct StepOptions {
  c10::Device device = c10::Device(c10::kCPU);
  at::ScalarType precision = at::kFloat;
  bool negative_all_rank = false;
  // BLIP pads every caption to max_length 35. Padded positions get exactly zero attention weight,
  // so cutting the batch to its longest caption changes no result beyond float summation order
  // and makes the text side up to 35/L times cheaper. Not applied when negative_all_rank gathers
  // token matrices from several ranks: those need one width on every rank.
  bool trim_padding = true;
};

struct StepInputs {
  at::Tensor images;                  // [B, 3, S, S] float32 (any device)
  std::vector<std::string> captions;  // pre_caption'ed, B of them
  at::Tensor idx;                     // [B] int64 image ids
  double alpha = 0.4;
  const models::ItmNegatives* replay = nullptr;  // tests: BLIP's recorded negatives
};

struct StepResult {
  double loss_itm = 0, loss_ita = 0;
  models::ItmNegatives negatives;
};

class TrainStepper {
 public:
  // `dist` must outlive the stepper. The optimizer must hold model.parameters().
  TrainStepper(models::BlipRetrievalImpl& model, torch::optim::AdamW& optimizer,
               const text::Tokenizer& tokenizer, const StepOptions& options,
               const dist::DistContext& dist);
  ~TrainStepper();
  TrainStepper(const TrainStepper&) = delete;
  TrainStepper& operator=(const TrainStepper&) = delete;

  StepResult step(const StepInputs& inputs);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Every rank takes rank 0's parameters and buffers (what DDP's constructor does). A collective.
void broadcast_model_state(models::BlipRetrievalImpl& model, const dist::DistContext& dist);

}  // namespace blip::train
