// BatchPrefetcher: batches read ahead in the background are the loader's batches of the same steps,
// in order, from step 0 and from a resumed step, and whatever step is asked; an error of the
// background read (a shard deleted during the run) is thrown by take() of that step on the calling
// thread, naming the file; and training with and without prefetch gives bit-identical losses.
// ctest-labels: data
// ctest-timeout: 120
#include <gtest/gtest.h>

#include <filesystem>

#include "common/error_expectations.h"
#include "common/mpi_environment.h"
#include "common/mpi_training.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "data/batch_prefetcher.h"
#include "data/corpus_index.h"
#include "run/trainer.h"

T6_MPI_TEST_ENVIRONMENT();

namespace t6 {
namespace {

namespace fs = std::filesystem;
using testing::scratch_dir;

constexpr int64_t kSeqLen = 32, kFirst = 3, kCount = 16;
constexpr uint64_t kSeed = 11;

// ~15 train shards of 20k tokens.
const fs::path& corpus() {
  static const fs::path path = testing::write_shakespeare_corpus((scratch_dir("prefetch") / "corpus").string(), 20'000);
  return path;
}

struct Batch {
  std::vector<int32_t> inputs = std::vector<int32_t>(kCount * kSeqLen), targets = std::vector<int32_t>(kCount * kSeqLen);
  bool operator==(const Batch&) const = default;
};

Batch loader_batch(int64_t step) {
  TokenLoader loader(corpus().string(), kSeqLen, kSeed);
  Batch batch;
  loader.read_train(step, kFirst, kCount, batch.inputs.data(), batch.targets.data());
  return batch;
}

// The batches of steps [first, last) taken in order, each take starting the read of the next.
std::vector<Batch> prefetched_batches(int64_t first, int64_t last, bool enabled) {
  TokenLoader loader(corpus().string(), kSeqLen, kSeed);
  BatchPrefetcher prefetcher(loader, kFirst, kCount, kSeqLen, enabled);
  std::vector<Batch> batches(size_t(last - first));
  for (int64_t step = first; step < last; ++step) {
    Batch& batch = batches[size_t(step - first)];
    prefetcher.take(step, batch.inputs.data(), batch.targets.data(), step + 1 < last ? step + 1 : -1);
  }
  return batches;
}

TEST(BatchPrefetcher, SameBatchesInTheSameOrderWithAndWithoutPrefetch) {
  const std::vector<Batch> with = prefetched_batches(0, 12, true), without = prefetched_batches(0, 12, false);
  ASSERT_EQ(with.size(), 12u);
  for (int64_t step = 0; step < 12; ++step) {
    EXPECT_TRUE(with[size_t(step)] == loader_batch(step)) << "step " << step;
    EXPECT_TRUE(without[size_t(step)] == loader_batch(step)) << "step " << step;
  }
  EXPECT_FALSE(with[0] == with[1]);
  // A resumed run starts reading at its step and reads the same batches from there.
  const std::vector<Batch> resumed = prefetched_batches(7, 12, true);
  for (int64_t step = 7; step < 12; ++step) EXPECT_TRUE(resumed[size_t(step - 7)] == with[size_t(step)]) << step;
}

TEST(BatchPrefetcher, AStepOtherThanTheOneReadAheadIsReadThen) {
  TokenLoader loader(corpus().string(), kSeqLen, kSeed);
  BatchPrefetcher prefetcher(loader, kFirst, kCount, kSeqLen, true);
  Batch batch;
  prefetcher.take(4, batch.inputs.data(), batch.targets.data(), 5);
  EXPECT_TRUE(batch == loader_batch(4));
  prefetcher.wait();
  prefetcher.take(9, batch.inputs.data(), batch.targets.data(), 10);  // 5 was read ahead, 9 is asked
  EXPECT_TRUE(batch == loader_batch(9));
  prefetcher.take(10, batch.inputs.data(), batch.targets.data(), -1);
  EXPECT_TRUE(batch == loader_batch(10));
}

// A shard vanishes after start-up; with one shard open at a time every read reopens it. The
// background read of the first step that needs it fails, and take() of that step says so.
TEST(BatchPrefetcher, AnErrorOfTheBackgroundReadIsThrownByTakeOfThatStepNamingTheFile) {
  const fs::path copy = scratch_dir("prefetch_missing") / "corpus";
  fs::copy(corpus(), copy);
  const CorpusIndex index = read_corpus_index(copy.string());
  const auto train_shards = index.split_shards("train");
  TokenLoader loader(copy.string(), kSeqLen, kSeed, 1);
  // The first step one of whose windows touches a shard, for the first shard step 0 does not touch.
  const auto first_step_reading = [&](uint64_t shard_begin, uint64_t shard_end) {
    for (int64_t step = 0; step < 1000; ++step)
      for (int64_t j = kFirst; j < kFirst + kCount; ++j) {
        const uint64_t start = uint64_t(loader.train_window_start(step, j));
        if (start < shard_end && start + kSeqLen + 1 > shard_begin) return step;
      }
    return int64_t(-1);
  };
  int64_t failing_step = 0;
  size_t shard = 0;
  for (uint64_t begin = 0; shard < train_shards.size(); begin += train_shards[shard++].tokens) {
    failing_step = first_step_reading(begin, begin + train_shards[shard].tokens);
    if (failing_step > 0) break;
  }
  ASSERT_GT(failing_step, 0);
  const fs::path missing = copy / train_shards[shard].file;
  fs::remove(missing);

  BatchPrefetcher prefetcher(loader, kFirst, kCount, kSeqLen, true);
  Batch batch;
  for (int64_t step = 0; step < failing_step; ++step)
    prefetcher.take(step, batch.inputs.data(), batch.targets.data(), step + 1);
  const std::string message =
      testing::error_of([&] { prefetcher.take(failing_step, batch.inputs.data(), batch.targets.data(), -1); });
  testing::expect_mentions(message, {missing.string(), "missing"});
}

std::vector<double> train_losses(bool prefetch, const std::string& label) {
  RunConfig config = testing::tiny_run_config(ModelKind::T6, corpus().string());
  config.data.prefetch = prefetch;
  config.train.max_steps = 3;
  config.train.micro_batch_size = 8;
  config.log.peak_flops = 1e9;  // no SGEMM measurement at start-up
  ProcessGrid grid(testing::communicator_of(MPI_COMM_SELF), 1, 0);
  const std::string run_dir = scratch_dir(label).string();
  Trainer trainer(config, grid, run_dir);
  trainer.run();
  return testing::read_step_records(run_dir).losses;
}

TEST(BatchPrefetcher, TrainingLossesAreBitIdenticalWithAndWithoutPrefetch) {
  const std::vector<double> with = train_losses(true, "prefetch_on"), without = train_losses(false, "prefetch_off");
  ASSERT_EQ(with.size(), 3u);
  EXPECT_EQ(with, without);
}

}  // namespace
}  // namespace t6
