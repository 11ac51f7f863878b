#include "epoch_runner.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>

#include "blip/error.h"
#include "blip/eval/progress.h"
#include "blip/train/schedule.h"
#include "output_files.h"

namespace blip::train {

namespace {

std::string progress_suffix(double itm, double ita, double lr, double images_per_s) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "loss_ita %.4f  loss_itm %.4f  lr %.2e  %.1f img/s", ita, itm, lr,
                images_per_s);
  return buf;
}

}  // namespace

EpochRunner::EpochRunner(models::BlipRetrievalImpl& model, torch::optim::AdamW& optimizer,
                         const text::Tokenizer& tokenizer, const TrainData& data,
                         const RetrievalConfig& config, const TrainOptions& options,
                         const dist::DistContext& dist)
    : model_(model),
      optimizer_(optimizer),
      data_(data),
      config_(config),
      options_(options),
      dist_(dist),
      stepper_(model, optimizer, tokenizer,
               StepOptions{options.device, options.precision, config.negative_all_rank}, dist) {}

EpochOutcome EpochRunner::run(std::int64_t epoch, double lr, RunState& run, OutputFiles& out) {
  for (auto& group : optimizer_.param_groups()) group.options().set_lr(lr);
  model_.train();
  EpochOutcome outcome;
  const std::int64_t steps = data_.steps_per_epoch;
  auto loader = data_.loader(epoch, run.state.epoch_step);
  eval::ProgressBar bar("epoch " + std::to_string(epoch), steps,
                        options_.show_progress && dist_.is_main());
  bar.advance(run.state.epoch_step);
  const auto start = std::chrono::steady_clock::now();
  std::int64_t images = 0;
  data::TrainBatch batch;
  while (loader->next(batch)) {
    const std::int64_t i = run.state.epoch_step;
    const double alpha = warmup_alpha(config_.alpha, epoch, i, steps);
    StepResult losses;
    try {
      losses = stepper_.step(StepInputs{batch.images, batch.captions, batch.idx, alpha, nullptr});
    } catch (const blip::Error& e) {
      fail("training step " + std::to_string(run.state.global_step + 1) + " (epoch " +
               std::to_string(epoch) + ", batch " + std::to_string(i) + ")",
           e.what());
    }
    run.meters.add(losses.loss_itm, losses.loss_ita, lr);
    ++run.state.epoch_step;
    ++run.state.global_step;
    ++outcome.steps;
    images += batch.images.size(0);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    outcome.images_per_s = elapsed > 0 ? static_cast<double>(images) / elapsed : 0;
    run.history.steps.push_back(StepPoint{run.state.global_step,
                                          static_cast<double>(epoch) + static_cast<double>(i + 1) / steps,
                                          losses.loss_ita, losses.loss_itm, lr, outcome.images_per_s});
    bar.set_suffix(progress_suffix(losses.loss_itm, losses.loss_ita, lr, outcome.images_per_s));
    bar.advance();
    const bool last_of_epoch = run.state.epoch_step >= steps;
    const bool stop = options_.max_steps > 0 && run.state.global_step >= options_.max_steps;
    if (last_of_epoch) break;
    if (stop) return outcome;  // the caller evaluates and saves as at an epoch's end
    if (options_.save_every > 0 && run.state.global_step % options_.save_every == 0)
      save_last(out, model_, optimizer_, config_, run, dist_);
  }
  outcome.completed = true;
  return outcome;
}

}  // namespace blip::train
