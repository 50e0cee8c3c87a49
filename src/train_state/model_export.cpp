#include "train_state/model_export.h"

#include "checkpoint/checkpoint_reader.h"
#include "train_state/state_dict.h"
#include "core/error.h"
#include "train_state/train_checkpoint.h"

namespace t6::checkpoint {

void export_safetensors(const ResumePoint& point, const std::string& out, DType dtype) {
  T6_CHECK(dtype == DType::F32 || dtype == DType::BF16, "export: --dtype must be f32 or bf16");
  ModelWeights weights(model_config_of(point.manifest, point.dir), 0, 1);
  CheckpointReader reader(point.dir, point.manifest);
  for (const LocalParam& entry : weights.table().params())
    reader.read("param/" + entry.spec.name, TensorRegion::whole(entry.spec.global_shape.to_vector()),
                weights.param(entry).view({entry.numel()}));
  // The training sequence length, so that t6_eval and t6_generate need no --seq-len for the file.
  std::map<std::string, std::string> extra;
  const auto& train = point.manifest.config.value("train", nlohmann::json::object());
  if (train.contains("seq_len") && train["seq_len"].is_number_integer())
    extra["seq_len"] = std::to_string(train["seq_len"].get<int64_t>());
  save_state_dict(out, weights, dtype, extra);
}

std::filesystem::path import_safetensors(const std::string& in, const std::filesystem::path& destination_checkpoints,
                                         const RunConfig* run_config) {
  const SafetensorsReader file(in);
  RunConfig config = run_config ? *run_config : RunConfig{};
  config.model = config_of_state_dict(file, run_config ? &run_config->model : nullptr);
  // A fixture file holds its weights as "param.<name>" beside inputs and outputs.
  bool fixture = false;
  for (const auto& [name, entry] : file.entries()) fixture = fixture || name.rfind("param.", 0) == 0;
  ModelWeights weights(config.model, 0, 1);
  load_state_dict(file, weights, fixture ? "param." : "");

  // lr_decay_steps as the user set it (0: the resumed run's max_steps).
  const TrainState state{0, 0, config.train.lr_decay_steps, 0, "", ""};
  const SaveInfo info{0, 0, {1, 1, false}, config.to_json(), to_json(state), train_checkpoint_tensors(config.model)};
  return write_checkpoint_offline(destination_checkpoints, info, [&](const CheckpointStore& store) {
    const int64_t numel = weights.table().local_numel();
    HostBuffer first(size_t(numel) * sizeof(float)), second(size_t(numel) * sizeof(float));  // zero: fresh AdamW
    ShardFileWriter writer(store.staging_dir(0) / shard_file_name(0, 0), store.save_id(0));
    write_rank_tensors(writer, weights, {first.as({numel}, DType::F32), second.as({numel}, DType::F32), 0, numel},
                       {0, numel});
    writer.finish();
  });
}

}  // namespace t6::checkpoint
