// The learning rate of a step: linear warmup from 0, then cosine decay to min_lr at lr_decay_steps,
// min_lr after. A pure function of the step and these settings, so a resumed run (even with a
// raised max_steps) follows the same curve.
#pragma once
#include <cstdint>

namespace t6 {

struct LrSchedule {
  double lr = 6e-4, min_lr = 3e-5;
  int64_t warmup_steps = 2000, lr_decay_steps = 100000;

  // As the reference's train_adam.py: lr · step / warmup during warmup (0 at step 0).
  double at(int64_t step) const;
};

}  // namespace t6
