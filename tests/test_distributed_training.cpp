// ctest-mpi-ranks: 4
// ctest-timeout: 600
// Tensor and data parallelism are exact: TP4, TP2×DP2, DP4 and DP4 + ZeRO-1 runs of 5 steps with
// gradient accumulation reproduce a single-rank run of the same config and data (per-step loss and
// gradient norm within 1e-5 relative, final weights by the fixtures' `after.` rule), for T6 with a
// head count that does not divide by the TP size and for the baselines, MLA at TP2×DP2 (± ZeRO-1)
// and TP4 (6 heads split 2, 2, 1, 1), and global batches that the DP size does not divide; the DP
// gradients are reduced in small buckets during the backward (ZeRO-1: each piece to its owner);
// DP4 with ZeRO-1 gives the same bits run to run. A replicated W_B_* (or MLA latent projection or norm) whose
// gradient is not reduced over TP changes the TP runs' gradient norms and weights, so this fails.
#include <gtest/gtest.h>

#include <cmath>

#include "common/mpi_environment.h"
#include "common/mpi_training.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "common/weight_comparison.h"
#include "run/trainer.h"

T6_MPI_TEST_ENVIRONMENT();

using namespace t6;
using namespace t6::testing;

namespace {

// DP buckets of 13107 gradient elements, so that every block's gradients are reduced in several
// buckets while the backward goes on (the default 64 MiB would hold the whole model in one): a
// bucket reduced before its gradients are final, or (ZeRO-1) a piece reduced to a rank that does
// not own it, changes the results.
constexpr double kSmallBucketMib = 0.05;

void expect_matches_single_rank(RunConfig config, int tp, bool zero1) {
  config.parallel.tp = tp;
  config.parallel.zero1 = zero1;
  config.parallel.bucket_mib = kSmallBucketMib;

  // The reference: every rank trains the same model alone (MPI_COMM_SELF), in its own run dir.
  ProcessGrid single(communicator_of(MPI_COMM_SELF), 1, 0);
  const std::string single_dir = scratch_dir("single").string();
  Trainer reference(config, single, single_dir);
  reference.run();
  const StepRecords expected = read_step_records(single_dir);

  ProcessGrid grid(communicator_of(MPI_COMM_WORLD), tp, 0);
  const std::string run_dir = shared_run_dir("parallel");
  Trainer parallel(config, grid, run_dir);
  parallel.run();

  if (world_rank() == 0) {
    const StepRecords actual = read_step_records(run_dir);
    ASSERT_EQ(actual.losses.size(), expected.losses.size());
    ASSERT_EQ(actual.losses.size(), size_t(config.train.max_steps));
    for (size_t step = 0; step < expected.losses.size(); ++step) {
      EXPECT_NEAR(actual.losses[step], expected.losses[step], 1e-5 * std::fabs(expected.losses[step])) << "step " << step + 1;
      EXPECT_NEAR(actual.grad_norms[step], expected.grad_norms[step], 1e-5 * expected.grad_norms[step]) << "step " << step + 1;
    }
  }
  // Each rank checks its slice of every weight against the same slice of the reference.
  const double lr = config.train.lr;
  const ModelWeights& mine = parallel.model().weights();
  const ModelWeights& full = reference.model().weights();
  for (const LocalParam& entry : mine.table().params()) {
    std::vector<float> expected_slice(size_t(entry.numel()));
    copy_local_slice(entry, full.param(entry.spec.name).data<float>(), expected_slice.data());
    // The fixtures' bound per step, over the steps run.
    expect_weights_match(str(entry.spec.name, " on rank ", world_rank()), mine.param(entry).data<float>(),
                         expected_slice.data(), entry.numel(), 0.1 * lr * double(config.train.max_steps));
  }
  EXPECT_TRUE(all_ranks_agree(!::testing::Test::HasFailure()));
}

}  // namespace

TEST(DistributedTraining, T6TensorParallel4WithUnevenHeads) {
  expect_matches_single_rank(tiny_run_config(ModelKind::T6, shared_corpus()), 4, false);
}

TEST(DistributedTraining, T6TensorParallel2DataParallel2) {
  expect_matches_single_rank(tiny_run_config(ModelKind::T6, shared_corpus()), 2, false);
}

TEST(DistributedTraining, T6DataParallel4) {
  expect_matches_single_rank(tiny_run_config(ModelKind::T6, shared_corpus()), 1, false);
}

TEST(DistributedTraining, T6DataParallel4Zero1) {
  expect_matches_single_rank(tiny_run_config(ModelKind::T6, shared_corpus()), 1, true);
}

TEST(DistributedTraining, T6TensorParallel2DataParallel2Zero1) {
  expect_matches_single_rank(tiny_run_config(ModelKind::T6, shared_corpus()), 2, true);
}

// The same layout trained twice gives the same bits: the ZeRO-1 buckets, reduced piece by piece
// to their owners while the backward goes on, sum in a fixed order.
TEST(DistributedTraining, T6DataParallel4Zero1IsBitIdenticalRunToRun) {
  RunConfig config = tiny_run_config(ModelKind::T6, shared_corpus());
  config.parallel.zero1 = true;
  config.parallel.bucket_mib = kSmallBucketMib;
  config.train.max_steps = 3;
  std::string run_dirs[2];
  for (std::string& run_dir : run_dirs) {
    ProcessGrid grid(communicator_of(MPI_COMM_WORLD), 1, 0);
    run_dir = shared_run_dir("bit-identical");
    Trainer(config, grid, run_dir).run();
  }
  if (world_rank() == 0) {
    const StepRecords first = read_step_records(run_dirs[0]), second = read_step_records(run_dirs[1]);
    ASSERT_EQ(first.losses.size(), size_t(config.train.max_steps));
    EXPECT_EQ(first.losses, second.losses);
    EXPECT_EQ(first.grad_norms, second.grad_norms);
  }
  EXPECT_TRUE(all_ranks_agree(!::testing::Test::HasFailure()));
}

// A global batch that the DP size does not divide (train/batch_split.h): 10 sequences on 4 DP ranks
// are shares of 3, 3, 2, 2 with derived micro-batches of 3 and 2, each rank weighted by its share,
// so every step is still the mean over the 10 sequences. Without the weights the ranks with 2
// sequences would count as much as those with 3, and the losses would differ.
TEST(DistributedTraining, T6DataParallel4WithUnevenShares) {
  RunConfig config = tiny_run_config(ModelKind::T6, shared_corpus());
  config.train.global_batch_size = 10;
  config.train.micro_batch_size = 0;
  expect_matches_single_rank(config, 1, false);
}

TEST(DistributedTraining, T6TensorParallel2DataParallel2WithUnevenSharesZero1) {
  RunConfig config = tiny_run_config(ModelKind::T6, shared_corpus());
  config.train.global_batch_size = 7;  // 4 and 3
  config.train.micro_batch_size = 0;
  expect_matches_single_rank(config, 2, true);
}

TEST(DistributedTraining, KvOnlyTensorParallel4) {
  expect_matches_single_rank(tiny_run_config(ModelKind::T6_kvonly, shared_corpus()), 4, false);
}

TEST(DistributedTraining, MhaTensorParallel2DataParallel2) {
  expect_matches_single_rank(tiny_run_config(ModelKind::llama_mha, shared_corpus()), 2, false);
}

TEST(DistributedTraining, GqaTensorParallel2SplitsKvHeads) {
  expect_matches_single_rank(tiny_run_config(ModelKind::llama_gqa, shared_corpus()), 2, false);
}

TEST(DistributedTraining, GqaTensorParallel4ReplicatesKvHeads) {
  expect_matches_single_rank(tiny_run_config(ModelKind::llama_gqa, shared_corpus()), 4, false);
}

// MLA (6 heads): q_b_proj/kv_b_proj split by head, the latent projections and norms replicated.
TEST(DistributedTraining, MlaTensorParallel2DataParallel2) {
  expect_matches_single_rank(tiny_run_config(ModelKind::llama_mla, shared_corpus()), 2, false);
}

TEST(DistributedTraining, MlaTensorParallel4WithUnevenHeads) {
  expect_matches_single_rank(tiny_run_config(ModelKind::llama_mla, shared_corpus()), 4, false);
}

TEST(DistributedTraining, MlaTensorParallel2DataParallel2Zero1) {
  expect_matches_single_rank(tiny_run_config(ModelKind::llama_mla, shared_corpus()), 2, true);
}
