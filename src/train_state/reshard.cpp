#include "train_state/reshard.h"

#include <optional>

#include "checkpoint/checkpoint_reader.h"
#include "core/error.h"
#include "train/distributed_optimizer.h"
#include "train_state/train_checkpoint.h"

namespace t6::checkpoint {

ResumePoint open_checkpoint_path(const std::filesystem::path& path, ChecksumCheck checksums) {
  T6_CHECK(std::filesystem::is_directory(path), path.string(), ": no such directory");
  if (std::filesystem::exists(path / "manifest.json")) return open_checkpoint(path, checksums);
  T6_CHECK(std::filesystem::exists(path / "latest") || !list_step_dirs(path).empty(), path.string(),
           ": neither a checkpoint (no manifest.json: an interrupted save?) nor a checkpoints directory");
  return resolve_latest(path, checksums);
}

std::filesystem::path reshard_checkpoint(const ResumePoint& source, const std::filesystem::path& destination_checkpoints,
                                         const CheckpointLayout& layout, const ReshardProgress& progress) {
  T6_CHECK(layout.tp >= 1 && layout.dp >= 1, "reshard: TP and DP sizes must be positive, got TP ", layout.tp, " DP ",
           layout.dp);
  const Manifest& manifest = source.manifest;
  const ModelConfig model = model_config_of(manifest, source.dir);
  const bool zero1 = layout.zero1 && layout.dp > 1;  // what the trainer does: ZeRO-1 over one rank is plain
  const SaveInfo info{manifest.step, manifest.tokens_seen, {layout.tp, layout.dp, zero1}, manifest.config,
                      manifest.state, train_checkpoint_tensors(model)};
  return write_checkpoint_offline(destination_checkpoints, info, [&](const CheckpointStore& store) {
    CheckpointReader reader(source.dir, manifest);
    const int64_t total = int64_t(layout.tp) * layout.dp;
    int64_t done = 0;
    for (int tp_rank = 0; tp_rank < layout.tp; ++tp_rank) {
      ModelWeights weights(model, tp_rank, layout.tp, zero1 ? layout.dp : 1);
      std::optional<Range> loaded;  // the state range read; without ZeRO-1 every DP rank holds all of it
      HostBuffer first, second;
      OptimizerShard optimizer;
      for (int dp_rank = 0; dp_rank < layout.dp; ++dp_rank) {
        const Range state = optimizer_state_range(weights, dp_rank, layout.dp, zero1);
        if (!loaded || loaded->begin != state.begin || loaded->end != state.end) {
          first = HostBuffer(size_t(state.size()) * sizeof(float));
          second = HostBuffer(size_t(state.size()) * sizeof(float));
          optimizer = {first.as({state.size()}, DType::F32), second.as({state.size()}, DType::F32), state.begin,
                       state.end};
          read_rank_tensors(reader, weights, optimizer);
          loaded = state;
        }
        ShardFileWriter writer(store.staging_dir(manifest.step) / shard_file_name(tp_rank, dp_rank),
                               store.save_id(manifest.step));
        write_rank_tensors(writer, weights, optimizer, shard_range(weights, dp_rank, layout.dp, zero1));
        writer.finish();
        if (progress) progress(++done, total);
      }
    }
  });
}

}  // namespace t6::checkpoint
