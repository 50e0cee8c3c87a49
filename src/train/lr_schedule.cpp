#include "train/lr_schedule.h"

#include <cmath>
#include <numbers>

namespace t6 {

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return lr * double(step) / double(warmup_steps);
  if (step >= lr_decay_steps) return min_lr;
  const double progress = double(step - warmup_steps) / double(lr_decay_steps - warmup_steps);
  return min_lr + 0.5 * (1.0 + std::cos(std::numbers::pi * progress)) * (lr - min_lr);
}

}  // namespace t6
