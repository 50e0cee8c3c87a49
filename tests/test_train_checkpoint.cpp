// What a training checkpoint holds (src/train_state/train_checkpoint.*): without ZeRO-1 the DP
// replicas write disjoint parts that together cover the local buffer once, and a checkpoint whose
// weights or moments hold a NaN or an infinity is refused at load, naming the tensor.
#include <gtest/gtest.h>

#include <cmath>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/checkpoint_store.h"
#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "train_state/train_checkpoint.h"

using namespace t6;
using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

// Saves `weights` (one rank, zero moments) as step 1 and returns the checkpoint.
checkpoint::ResumePoint save_one_rank(const ModelWeights& weights, const fs::path& checkpoints) {
  const int64_t numel = weights.table().local_numel();
  HostBuffer first(size_t(numel) * 4), second(size_t(numel) * 4);
  const OptimizerShard optimizer{first.as({numel}, DType::F32), second.as({numel}, DType::F32), 0, numel};
  checkpoint::CheckpointStore store(checkpoints, 0, "job");
  store.begin_save(1);
  checkpoint::ShardFileWriter writer(store.staging_dir(1) / shard_file_name(0, 0), store.save_id(1));
  write_rank_tensors(writer, weights, optimizer, {0, numel});
  writer.finish();
  store.commit_save({1, 0, {1, 1, false}, {}, {}, train_checkpoint_tensors(weights.config())});
  return checkpoint::resolve_latest(checkpoints, checkpoint::ChecksumCheck::verify);
}

}  // namespace

TEST(TrainCheckpoint, DataParallelReplicasWriteDisjointPartsCoveringTheBuffer) {
  const ModelWeights weights(fixture_model_config(ModelKind::T6), 0, 1);
  const int64_t numel = weights.table().local_numel();
  for (int dp_size : {1, 2, 3, 4}) {
    int64_t next = 0;
    for (int dp_rank = 0; dp_rank < dp_size; ++dp_rank) {
      const Range range = shard_range(weights, dp_rank, dp_size, false);
      EXPECT_EQ(range.begin, next) << "DP " << dp_size << " rank " << dp_rank;
      EXPECT_GE(range.size(), numel / dp_size);
      next = range.end;
    }
    EXPECT_EQ(next, numel) << "DP " << dp_size;
  }
}

TEST(TrainCheckpoint, NonFiniteWeightsOrMomentsAreRefusedAtLoadNamingTheTensor) {
  const ModelConfig config = fixture_model_config(ModelKind::T6);
  for (float bad : {std::nanf(""), INFINITY}) {
    ModelWeights weights(config, 0, 1);
    weights.initialise(7);
    const LocalParam& poisoned = weights.table().params()[3];
    weights.param(poisoned).data<float>()[2] = bad;
    const checkpoint::ResumePoint point = save_one_rank(weights, scratch_dir("nan_load") / "checkpoints");

    ModelWeights loaded(config, 0, 1);
    const int64_t numel = loaded.table().local_numel();
    HostBuffer first(size_t(numel) * 4), second(size_t(numel) * 4);
    checkpoint::CheckpointReader reader(point.dir, point.manifest);
    const std::string message = error_of([&] {
      read_rank_tensors(reader, loaded, {first.as({numel}, DType::F32), second.as({numel}, DType::F32), 0, numel});
    });
    expect_mentions(message, {point.dir.string(), "'param/" + poisoned.spec.name + "'", "element 2", "refusing"});
  }
}
