#include "blip/train/train_step.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "blip/dist/grad_sync.h"
#include "blip/error.h"
#include "blip/retrieval/text_tensors.h"
#include "blip/train/autocast.h"
#include "blip/train/grad_scaler.h"
#include "dist_collectives.h"

namespace blip::train {

namespace {

// Parameters that get gradients (the momentum copies never do), in model order.
std::vector<at::Tensor> trainable(models::BlipRetrievalImpl& model) {
  std::vector<at::Tensor> out;
  for (const auto& p : model.parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

// The columns up to the batch's longest caption: [CLS] pieces [SEP] all have mask 1, padding 0.
retrieval::TextTensors trim_to_longest(retrieval::TextTensors t) {
  const int64_t longest = t.attention_mask.sum(1).max().item<int64_t>();
  t.input_ids = t.input_ids.narrow(1, 0, longest).contiguous();
  t.attention_mask = t.attention_mask.narrow(1, 0, longest).contiguous();
  return t;
}

GradScalerOptions scaler_options(bool enabled) {
  GradScalerOptions o;
  o.enabled = enabled;  // fp16 only: bf16 has fp32's exponent range
  return o;
}

}  // namespace

struct TrainStepper::Impl {
  Impl(models::BlipRetrievalImpl& m, torch::optim::AdamW& opt, const text::Tokenizer& tok,
       const StepOptions& o, const dist::DistContext& d)
      : model(m), optimizer(opt), tokenizer(tok), options(o), dist(d), collectives(d),
        scaler(scaler_options(o.precision == at::kHalf)) {
    if (d.distributed()) averager = std::make_unique<dist::GradientAverager>(d, trainable(m));
  }
  models::BlipRetrievalImpl& model;
  torch::optim::AdamW& optimizer;
  const text::Tokenizer& tokenizer;
  StepOptions options;
  const dist::DistContext& dist;
  DistCollectives collectives;
  std::unique_ptr<dist::GradientAverager> averager;
  GradScaler scaler;
};

TrainStepper::TrainStepper(models::BlipRetrievalImpl& model, torch::optim::AdamW& optimizer,
                           const text::Tokenizer& tokenizer, const StepOptions& options,
                           const dist::DistContext& dist)
    : impl_(std::make_unique<Impl>(model, optimizer, tokenizer, options, dist)) {}

TrainStepper::~TrainStepper() = default;

StepResult TrainStepper::step(const StepInputs& in) {
  Impl& s = *impl_;
  const c10::Device device = s.options.device;
  if (static_cast<std::int64_t>(in.captions.size()) != in.images.size(0))
    fail("training step", std::to_string(in.captions.size()) + " captions for " +
                              std::to_string(in.images.size(0)) + " images");
  retrieval::TextTensors text = retrieval::tokenize_to_tensors(s.tokenizer, in.captions);
  const bool gathers_tokens = s.options.negative_all_rank && s.dist.world_size() > 1;
  if (s.options.trim_padding && !gathers_tokens && text.attention_mask.size(0) > 0)
    text = trim_to_longest(std::move(text));
  models::TrainForwardOptions fo;
  fo.alpha = in.alpha;
  fo.enc_token_id = s.tokenizer.enc_id();
  fo.negative_all_rank = s.options.negative_all_rank;
  fo.collectives = &s.collectives;
  fo.replay = in.replay;
  StepResult r;
  at::Tensor loss, loss_itm, loss_ita;
  {
    AutocastGuard autocast(device.type(), s.options.precision);
    const auto out = models::train_forward(s.model, in.images.to(device), text.input_ids.to(device),
                                           text.attention_mask.to(device), in.idx.to(device), fo);
    loss_itm = out.loss_itm.detach();
    loss_ita = out.loss_ita.detach();
    loss = out.loss_ita + out.loss_itm;
    r.negatives = out.negatives;
  }
  s.optimizer.zero_grad();
  if (s.scaler.is_enabled()) {
    s.scaler.scale(loss).backward();
    if (s.averager) s.averager->average();  // scaled gradients: averaging commutes with the scale
    s.scaler.step(s.optimizer);
    s.scaler.update();
  } else {
    loss.backward();
    if (s.averager) s.averager->average();
    s.optimizer.step();
  }
  r.loss_itm = loss_itm.item<double>();
  r.loss_ita = loss_ita.item<double>();
  return r;
}

void broadcast_model_state(models::BlipRetrievalImpl& model, const dist::DistContext& dist) {
  if (!dist.distributed()) return;
  std::vector<at::Tensor> tensors;
  for (const auto& p : model.named_parameters(true)) tensors.push_back(p.value());
  for (const auto& b : model.named_buffers(true)) tensors.push_back(b.value());
  torch::NoGradGuard no_grad;
  dist::broadcast_tensors(dist, tensors, 0);
}

}  // namespace blip::train
