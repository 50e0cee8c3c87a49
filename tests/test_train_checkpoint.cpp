// What a training checkpoint holds (src/train_state/train_checkpoint.*): without ZeRO-1 the DP
// replicas write disjoint parts that together cover the local buffer once, and a checkpoint whose
// weights or moments hold a NaN or an infinity is refused at load, naming the tensor; one whose
// manifest holds a training state or model config no save writes is refused by resume and skipped
// by auto-resume.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/checkpoint_store.h"
#include "common/error_expectations.h"
#include "common/test_paths.h"
#include "common/training_setup.h"
#include "train/run_config.h"
#include "train_state/train_checkpoint.h"

using namespace t6;
using namespace t6::testing;
namespace fs = std::filesystem;

namespace {

// Saves `weights` (one rank, zero moments) as `step`, with a run config and training state as the
// trainer writes them, and returns the checkpoint.
checkpoint::ResumePoint save_one_rank(const ModelWeights& weights, const fs::path& checkpoints, int64_t step = 1) {
  const int64_t numel = weights.table().local_numel();
  HostBuffer first(size_t(numel) * 4), second(size_t(numel) * 4);
  const OptimizerShard optimizer{first.as({numel}, DType::F32), second.as({numel}, DType::F32), 0, numel};
  checkpoint::CheckpointStore store(checkpoints, 0, "job");
  store.begin_save(step);
  checkpoint::ShardFileWriter writer(store.staging_dir(step) / shard_file_name(0, 0), store.save_id(step));
  write_rank_tensors(writer, weights, optimizer, {0, numel});
  writer.finish();
  RunConfig config;
  config.model = weights.config();
  const TrainState state{step, step, 10, 1.5, "", ""};
  store.commit_save({step, step * 64, {1, 1, false}, config.to_json(), to_json(state),
                     train_checkpoint_tensors(weights.config())});
  return checkpoint::resolve_latest(checkpoints, checkpoint::ChecksumCheck::verify);
}

void edit_manifest(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json manifest = nlohmann::json::parse(std::ifstream(dir / "manifest.json"));
  edit(manifest);
  std::ofstream(dir / "manifest.json") << manifest.dump(1);
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

TEST(TrainCheckpoint, ManifestStateOrModelNoSaveWritesIsRefusedAndAutoResumeFallsBack) {
  // Each was loaded before: a negative adam_steps gave NaN weights after one step, an invalid model
  // config stopped auto-resume instead of falling back.
  struct Edit {
    const char* expected;
    std::function<void(nlohmann::json&)> apply;
  };
  const std::vector<Edit> edits = {
      {"adam_steps -3 is not in [0, 2]", [](nlohmann::json& m) { m["state"]["adam_steps"] = -3; }},
      {"adam_steps 5 is not in [0, 2]", [](nlohmann::json& m) { m["state"]["adam_steps"] = 5; }},
      {"the training state is of step 7 but the manifest of step 2", [](nlohmann::json& m) { m["state"]["step"] = 7; }},
      {"skipped_in_a_row 1 is not in [0, 0]", [](nlohmann::json& m) { m["state"]["skipped_in_a_row"] = 1; }},
      {"lr_decay_steps -1 is negative", [](nlohmann::json& m) { m["state"]["lr_decay_steps"] = -1; }},
      {"elapsed_seconds -1 is not a time", [](nlohmann::json& m) { m["state"]["elapsed_seconds"] = -1.0; }},
      {"the manifest's model config is invalid", [](nlohmann::json& m) { m["config"]["model"]["kind"] = "llama_mha"; }},
      {"the manifest's training state is incomplete", [](nlohmann::json& m) { m["state"].erase("adam_steps"); }},
      {"has tensor 'param/transformer.wte.weight' of shape [1000, 64] but its tensor table records [128, 64]",
       [](nlohmann::json& m) { m["config"]["model"]["vocab_size"] = 1000; }},
  };
  ModelWeights weights(fixture_model_config(ModelKind::T6), 0, 1);
  weights.initialise(7);
  for (const Edit& edit : edits) {
    SCOPED_TRACE(edit.expected);
    const fs::path checkpoints = scratch_dir("bad_state") / "checkpoints";
    save_one_rank(weights, checkpoints, 1);
    const fs::path newest = save_one_rank(weights, checkpoints, 2).dir;
    edit_manifest(newest, edit.apply);
    expect_mentions(error_of([&] {
                      checkpoint::resolve_latest(checkpoints, checkpoint::ChecksumCheck::verify, check_training_checkpoint);
                    }),
                    {newest.string(), "damaged", edit.expected});
    const auto point =
        checkpoint::resolve_for_auto_resume(checkpoints, checkpoint::ChecksumCheck::verify, check_training_checkpoint);
    ASSERT_TRUE(point);
    EXPECT_EQ(point->manifest.step, 1);
    expect_mentions(point->warnings.at(0), {"skipping", newest.string(), edit.expected});
  }
}
