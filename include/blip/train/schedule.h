// BLIP's per-epoch schedules (utils.cosine_lr_schedule, train_retrieval.py train()).
#pragma once

#include <cstdint>

namespace blip::train {

// The learning rate of `epoch` (0-based): min_lr + (init_lr - min_lr) * (1 + cos(pi * epoch / max_epoch)) / 2.
// Set once at the start of each epoch, as BLIP does (no per-step decay, no warm-up).
double cosine_lr(std::int64_t epoch, std::int64_t max_epoch, double init_lr, double min_lr);

// The distillation weight of step `i` of `steps_per_epoch`: alpha * min(1, i / steps_per_epoch) in
// epoch 0 (a linear warm-up), alpha afterwards.
double warmup_alpha(double alpha, std::int64_t epoch, std::int64_t i, std::int64_t steps_per_epoch);

}  // namespace blip::train
