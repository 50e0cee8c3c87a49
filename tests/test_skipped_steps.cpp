// ctest-mpi-ranks: 2
// ctest-timeout: 300
// Non-finite steps are skipped, at 1 rank and at 2 (DP, with and without ZeRO-1): a NaN or inf put
// into one rank's gradient (a test hook, after backward) leaves every rank's weights, AdamW moments
// and AdamW step count exactly as they were, logs "skipped": true for that step in metrics.jsonl
// with the one poisoned gradient element counted in "non_finite_grads" (counted once, on both ranks),
// and training goes on from there. An inf gradient with clipping on is the trap: the clip factor
// is 0 and inf · 0 is NaN. train.max_skipped_steps skips in a row end the run with an error after
// saving the unchanged, finite state; a checkpoint is never written from non-finite weights. Both
// skip counts (in the run, in a row) are kept in checkpoints and continue after a resume.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>

#include "checkpoint/checkpoint_store.h"
#include "common/error_expectations.h"
#include "common/mpi_environment.h"
#include "common/mpi_training.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "run/trainer.h"

T6_MPI_TEST_ENVIRONMENT();

using namespace t6;
using namespace t6::testing;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Weights, both AdamW moments and the AdamW step count of one rank.
struct RankState {
  std::vector<float> params, first_moment, second_moment;
  int64_t adam_steps = 0;
};

std::vector<float> copy_of(const Tensor& tensor) {
  return std::vector<float>(tensor.data<float>(), tensor.data<float>() + tensor.numel());
}

RankState state_of(Trainer& trainer) {
  AdamW& adamw = trainer.optimizer().adamw();
  return {copy_of(trainer.model().weights().params()), copy_of(adamw.first_moment()), copy_of(adamw.second_moment()),
          adamw.steps_taken()};
}

void expect_same_state(const RankState& actual, const RankState& expected, const std::string& when) {
  EXPECT_TRUE(actual.params == expected.params) << when << ": weights changed";
  EXPECT_TRUE(actual.first_moment == expected.first_moment) << when << ": first moment changed";
  EXPECT_TRUE(actual.second_moment == expected.second_moment) << when << ": second moment changed";
  EXPECT_EQ(actual.adam_steps, expected.adam_steps) << when;
}

// Which steps metrics.jsonl marks as skipped, in file order, and the steps it records.
struct SkipRecords {
  std::vector<int64_t> steps, skipped, non_finite_grads;  // the last two for each skipped step
};
SkipRecords read_skip_records(const std::string& run_dir) {
  SkipRecords records;
  std::ifstream file(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(file, line)) {
    const auto record = nlohmann::json::parse(line);
    if (!record.contains("loss")) continue;
    records.steps.push_back(record["step"]);
    if (!record.value("skipped", false)) continue;
    records.skipped.push_back(record["step"]);
    records.non_finite_grads.push_back(record.value("non_finite_grads", int64_t(-1)));
  }
  return records;
}

struct World {
  bool parallel;  // both ranks in one run; else each rank alone (MPI_COMM_SELF)
  bool zero1;
};

// The rank whose gradient or weight goes bad: rank 1 of a 2-rank run, or each rank alone.
int poisoner_of(const World& world) { return world.parallel ? 1 : world_rank(); }

std::string run_dir_for(const World& world, const std::string& label) {
  return world.parallel ? shared_run_dir(label) : scratch_dir(label).string();
}

// Poisons one gradient element of `poisoner` at each of `steps` with `value`.
Trainer::GradientHook poison(std::vector<int64_t> steps, float value, int poisoner) {
  return [=](int64_t step, ModelWeights& weights) {
    if (std::find(steps.begin(), steps.end(), step) == steps.end() || world_rank() != poisoner) return;
    weights.grads().data<float>()[3] = value;
  };
}

void expect_skips_and_continues(const World& world, float value) {
  RunConfig config = tiny_run_config(ModelKind::T6, shared_corpus());
  config.parallel.zero1 = world.zero1;
  config.train.max_steps = 6;
  ASSERT_GT(config.train.grad_clip, 0);  // clipping on: the inf · 0 case
  ProcessGrid grid(communicator_of(world.parallel ? MPI_COMM_WORLD : MPI_COMM_SELF), 1, 0);
  const std::string run_dir = run_dir_for(world, "skip");
  Trainer trainer(config, grid, run_dir);
  const int poisoner = poisoner_of(world);
  RankState before_skips;
  const Trainer::GradientHook inject = poison({3, 4}, value, poisoner);
  trainer.set_gradient_hook([&](int64_t step, ModelWeights& weights) {
    // Called after backward, before the update: the state is that of step - 1.
    if (step == 3) before_skips = state_of(trainer);
    if (step == 4) expect_same_state(state_of(trainer), before_skips, "after skipped step 3");
    if (step == 5) expect_same_state(state_of(trainer), before_skips, "after skipped step 4");
    if (step == 6) { EXPECT_FALSE(state_of(trainer).params == before_skips.params) << "step 5 was not applied"; }
    inject(step, weights);
  });
  trainer.run();
  EXPECT_EQ(trainer.step(), 6);
  EXPECT_EQ(trainer.optimizer().adamw().steps_taken(), 4);
  for (float element : state_of(trainer).params) ASSERT_TRUE(std::isfinite(element));
  if (!world.parallel || world_rank() == 0) {
    const SkipRecords records = read_skip_records(run_dir);
    EXPECT_EQ(records.steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(records.skipped, (std::vector<int64_t>{3, 4}));
    EXPECT_EQ(records.non_finite_grads, (std::vector<int64_t>{1, 1}));
  }
  EXPECT_TRUE(all_ranks_agree(!::testing::Test::HasFailure()));
}

TEST(SkippedSteps, NaNGradientIsSkippedOnOneRank) { expect_skips_and_continues({false, false}, kNaN); }
TEST(SkippedSteps, InfGradientWithClippingIsSkippedOnOneRank) { expect_skips_and_continues({false, false}, kInf); }
TEST(SkippedSteps, NaNOnOneOfTwoRanksSkipsOnBoth) { expect_skips_and_continues({true, false}, kNaN); }
TEST(SkippedSteps, InfOnOneOfTwoZero1RanksSkipsOnBoth) { expect_skips_and_continues({true, true}, kInf); }

void expect_stops_after_limit(const World& world) {
  RunConfig config = tiny_run_config(ModelKind::T6, shared_corpus());
  config.parallel.zero1 = world.zero1;
  config.train.max_steps = 8;
  config.train.max_skipped_steps = 3;
  config.checkpoint.interval = 1;
  ProcessGrid grid(communicator_of(world.parallel ? MPI_COMM_WORLD : MPI_COMM_SELF), 1, 0);
  const std::string run_dir = run_dir_for(world, "diverged");
  Trainer trainer(config, grid, run_dir);
  RankState after_step_2;
  const Trainer::GradientHook inject = poison({3, 4, 5, 6, 7, 8}, kNaN, poisoner_of(world));
  trainer.set_gradient_hook([&](int64_t step, ModelWeights& weights) {
    if (step == 3) after_step_2 = state_of(trainer);
    inject(step, weights);
  });
  const std::string message = error_of([&] { trainer.run(); });
  expect_mentions(message, {"diverged", "3 steps in a row", "steps 3 to 5", "train.lr"});
  // The saved state is the finite one of step 2, stored as step 5 (its batches consumed).
  EXPECT_EQ(trainer.step(), 5);
  expect_same_state(state_of(trainer), after_step_2, "when stopping");
  const auto latest = checkpoint::resolve_latest(std::filesystem::path(run_dir) / "checkpoints",
                                                 checkpoint::ChecksumCheck::verify);
  EXPECT_EQ(latest.manifest.step, 5);
  EXPECT_TRUE(all_ranks_agree(!::testing::Test::HasFailure()));
}

TEST(SkippedSteps, LimitInARowStopsWithTheFiniteStateSavedOnOneRank) { expect_stops_after_limit({false, false}); }
TEST(SkippedSteps, LimitInARowStopsWithTheFiniteStateSavedOnTwoRanks) { expect_stops_after_limit({true, false}); }

// metrics.jsonl's skipped_steps of each step record, by step.
std::map<int64_t, int64_t> skipped_counts(const std::string& run_dir) {
  std::map<int64_t, int64_t> counts;
  std::ifstream file(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(file, line)) {
    const auto record = nlohmann::json::parse(line);
    if (record.contains("loss")) counts[record["step"]] = record["skipped_steps"];
  }
  return counts;
}

TEST(SkippedSteps, CountsContinueAfterResume) {
  RunConfig config = tiny_run_config(ModelKind::T6, shared_corpus());
  config.train.max_skipped_steps = 3;
  ProcessGrid grid(communicator_of(MPI_COMM_SELF), 1, 0);
  const std::string run_dir = run_dir_for({false, false}, "skip_resume");
  {
    // Steps 2 and 3 skipped, then the run ends and saves at step 3: 2 skipped, 2 in a row.
    config.train.max_steps = 3;
    Trainer trainer(config, grid, run_dir);
    trainer.set_gradient_hook(poison({2, 3}, kNaN, world_rank()));
    trainer.run();
  }
  // Resumed, step 4 is the third skip in a row: the limit is reached only if the count carried over.
  config.train.max_steps = 6;
  Trainer trainer(config, grid, run_dir, ResumeMode::latest);
  ASSERT_EQ(trainer.step(), 3);
  trainer.set_gradient_hook(poison({4}, kNaN, world_rank()));
  const std::string message = error_of([&] { trainer.run(); });
  expect_mentions(message, {"diverged", "3 steps in a row", "steps 2 to 4"});
  const std::map<int64_t, int64_t> counts = skipped_counts(run_dir);
  EXPECT_EQ(counts, (std::map<int64_t, int64_t>{{1, 0}, {2, 1}, {3, 2}, {4, 3}}));
}

TEST(SkippedSteps, NonFiniteWeightsAreNeverSaved) {
  for (const World world : {World{false, false}, World{true, false}}) {
    RunConfig config = tiny_run_config(ModelKind::T6, shared_corpus());
    config.train.max_steps = 4;
    config.checkpoint.interval = 2;
    ProcessGrid grid(communicator_of(world.parallel ? MPI_COMM_WORLD : MPI_COMM_SELF), 1, 0);
    const std::string run_dir = run_dir_for(world, "poisoned_weight");
    Trainer trainer(config, grid, run_dir);
    // A weight (not a gradient) goes bad on one rank during step 3: the gradients stay finite, so
    // only the save guard can catch it.
    const int poisoner = poisoner_of(world);
    trainer.set_gradient_hook([&](int64_t step, ModelWeights& weights) {
      if (step == 3 && world_rank() == poisoner) weights.params().data<float>()[5] = kInf;
    });
    const std::string message = error_of([&] { trainer.run(); });
    expect_mentions(message, {"refusing to save", "step 4", "non-finite"});
    const auto latest = checkpoint::resolve_latest(std::filesystem::path(run_dir) / "checkpoints",
                                                   checkpoint::ChecksumCheck::verify);
    EXPECT_EQ(latest.manifest.step, 2) << "latest moved to the non-finite state";
    EXPECT_TRUE(all_ranks_agree(!::testing::Test::HasFailure()));
  }
}

}  // namespace
