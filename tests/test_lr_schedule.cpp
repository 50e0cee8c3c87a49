// The learning-rate schedule (src/train/lr_schedule.*): linear warmup from 0 as the reference's
// train_adam.py, cosine decay to min_lr at lr_decay_steps, min_lr after (docs/MODEL.md 4, DESIGN.md
// "Checkpoints": a pure function of the step and its four settings).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "train/lr_schedule.h"
#include "train/run_config.h"

using namespace t6;

namespace {

// The paper's small/medium recipe.
LrSchedule paper_schedule() { return LrSchedule{6e-4, 3e-5, 2000, 100000}; }

}  // namespace

TEST(LrSchedule, WarmupIsLinearFromZero) {
  const LrSchedule schedule = paper_schedule();
  EXPECT_EQ(schedule.at(0), 0.0) << "the reference trains step 0 at lr 0";
  EXPECT_DOUBLE_EQ(schedule.at(1), 6e-4 / 2000);
  EXPECT_DOUBLE_EQ(schedule.at(500), 6e-4 * 500 / 2000);
  EXPECT_DOUBLE_EQ(schedule.at(1000), 3e-4);
  EXPECT_DOUBLE_EQ(schedule.at(1999), 6e-4 * 1999 / 2000);
  for (int64_t step = 1; step < 2000; ++step) ASSERT_GT(schedule.at(step), schedule.at(step - 1)) << step;
}

TEST(LrSchedule, ReachesExactlyLrAtTheEndOfWarmup) {
  EXPECT_EQ(paper_schedule().at(2000), 6e-4);
  // With min_lr = lr the cosine part is flat at lr.
  EXPECT_EQ((LrSchedule{1e-3, 1e-3, 10, 100}).at(50), 1e-3);
}

TEST(LrSchedule, HoldsMinLrAtAndAfterTheDecayHorizon) {
  const LrSchedule schedule = paper_schedule();
  EXPECT_EQ(schedule.at(100000), 3e-5);
  EXPECT_EQ(schedule.at(100001), 3e-5);
  EXPECT_EQ(schedule.at(250000), 3e-5);
  // One step before the horizon it is just above min_lr.
  EXPECT_GT(schedule.at(99999), 3e-5);
  EXPECT_NEAR(schedule.at(99999), 3e-5, 1e-12);
}

TEST(LrSchedule, CosineMidpointIsTheMeanOfLrAndMinLr) {
  const LrSchedule schedule = paper_schedule();
  EXPECT_NEAR(schedule.at(51000), (6e-4 + 3e-5) / 2, 1e-15);  // halfway between 2000 and 100000
  // A quarter of the way: min_lr + (1 + cos(π/4))/2 · (lr − min_lr).
  EXPECT_NEAR(schedule.at(2000 + 98000 / 4), 3e-5 + 0.5 * (1 + std::cos(std::numbers::pi / 4)) * (6e-4 - 3e-5), 1e-15);
}

TEST(LrSchedule, DecreasesMonotonicallyAfterWarmup) {
  const LrSchedule schedule{1e-3, 1e-4, 100, 5000};
  for (int64_t step = 101; step <= 5000; ++step) ASSERT_LT(schedule.at(step), schedule.at(step - 1)) << step;
  for (int64_t step = 5001; step < 5100; ++step) ASSERT_EQ(schedule.at(step), 1e-4) << step;
}

TEST(LrSchedule, NoWarmupStartsAtLr) {
  const LrSchedule schedule{1e-3, 1e-4, 0, 100};
  EXPECT_EQ(schedule.at(0), 1e-3);
  EXPECT_NEAR(schedule.at(50), 5.5e-4, 1e-15);
}

TEST(LrSchedule, RaisingMaxStepsWithAFixedHorizonChangesNothing) {
  // A run resumed with a larger train.max_steps and the same train.lr_decay_steps must follow the
  // curve it was on, step for step (DESIGN.md, Checkpoints).
  RunConfig first;
  first.train.max_steps = 100000;
  first.train.lr_decay_steps = 100000;
  RunConfig resumed = first;
  resumed.train.max_steps = 300000;
  for (int64_t step = 0; step <= 300000; step += 997)
    ASSERT_EQ(first.lr_schedule().at(step), resumed.lr_schedule().at(step)) << step;

  // Left at its default (0: max_steps), the horizon follows max_steps: after warmup the curve bends,
  // during warmup it does not.
  RunConfig by_default = first;
  by_default.train.lr_decay_steps = 0;
  RunConfig raised = by_default;
  raised.train.max_steps = 200000;
  EXPECT_EQ(by_default.lr_schedule().at(1500), raised.lr_schedule().at(1500));
  EXPECT_EQ(by_default.lr_schedule().at(2000), raised.lr_schedule().at(2000));
  EXPECT_LT(by_default.lr_schedule().at(50000), raised.lr_schedule().at(50000));
}
