#include "blip/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace blip::train {

double cosine_lr(std::int64_t epoch, std::int64_t max_epoch, double init_lr, double min_lr) {
  const double pi = std::acos(-1.0);
  return (init_lr - min_lr) * 0.5 *
             (1.0 + std::cos(pi * static_cast<double>(epoch) / static_cast<double>(max_epoch))) +  // (pi*e)/m, as Python
         min_lr;
}

double warmup_alpha(double alpha, std::int64_t epoch, std::int64_t i, std::int64_t steps_per_epoch) {
  if (epoch > 0 || steps_per_epoch <= 0) return alpha;
  return alpha * std::min(1.0, static_cast<double>(i) / static_cast<double>(steps_per_epoch));
}

}  // namespace blip::train
