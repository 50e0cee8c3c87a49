#include "train_state/train_checkpoint.h"

#include <algorithm>

#include "core/error.h"
#include "train/run_config.h"

namespace t6 {

using checkpoint::Extents;
using checkpoint::TensorRegion;

namespace {

const char* const kMomentNames[] = {"adam_m/", "adam_v/"};

Extents extents_of(const Shape& shape) { return shape.to_vector(); }
Tensor flat(const Tensor& tensor) { return tensor.view({tensor.numel()}); }

// The slice `entry` holds of its global tensor: offset and shape in global coordinates.
struct SliceBox {
  Extents offset, shape;
};
SliceBox slice_box(const LocalParam& entry) {
  SliceBox box{Extents(size_t(entry.spec.global_shape.ndim), 0), extents_of(entry.local_shape)};
  if (entry.spec.rule.kind == ShardRule::Kind::Split) box.offset[size_t(entry.spec.rule.axis)] = entry.axis_offset;
  return box;
}

// Calls visit(entry, begin, end) for each parameter's elements [begin, end) (in its slice's row-major
// order) inside the flat range [range_begin, range_end) of the local buffer. Replicated weights are
// visited only when `with_replicated`.
template <typename Visit>
void for_each_piece(const ModelWeights& weights, int64_t range_begin, int64_t range_end, bool with_replicated,
                    Visit visit) {
  for (const LocalParam& entry : weights.table().params()) {
    if (!with_replicated && entry.spec.rule.kind == ShardRule::Kind::Replicated) continue;
    const int64_t begin = std::max(range_begin, entry.flat_offset) - entry.flat_offset;
    const int64_t end = std::min(range_end, entry.flat_offset + entry.numel()) - entry.flat_offset;
    if (begin < end) visit(entry, begin, end);
  }
}

TensorRegion region_of(const LocalParam& entry, int64_t begin, int64_t end) {
  const SliceBox box = slice_box(entry);
  return TensorRegion::flat_of_slice(extents_of(entry.spec.global_shape), box.offset, box.shape, begin, end);
}

}  // namespace

nlohmann::json to_json(const TrainState& state) {
  return {{"step", state.step}, {"adam_steps", state.adam_steps}, {"lr_decay_steps", state.lr_decay_steps},
          {"elapsed_seconds", state.elapsed_seconds}};
}

TrainState train_state_from_json(const nlohmann::json& json, const std::string& source) {
  try {
    return {json.at("step").get<int64_t>(), json.at("adam_steps").get<int64_t>(),
            json.at("lr_decay_steps").get<int64_t>(), json.at("elapsed_seconds").get<double>()};
  } catch (const nlohmann::json::exception& error) {
    fail(str(source, ": the manifest's training state is incomplete (", error.what(), ")"));
  }
}

std::vector<checkpoint::TensorInfo> train_checkpoint_tensors(const ModelConfig& config) {
  std::vector<checkpoint::TensorInfo> tensors;
  for (const char* prefix : {"param/", kMomentNames[0], kMomentNames[1]})
    for (const ParamSpec& spec : model_param_specs(config))
      tensors.push_back({prefix + spec.name, extents_of(spec.global_shape), DType::F32});
  return tensors;
}

std::string shard_file_name(int tp_rank, int dp_rank) { return str("shard_tp", tp_rank, "_dp", dp_rank, ".h5"); }

bool rank_writes_shard(int dp_rank, bool zero1) { return zero1 || dp_rank == 0; }

void write_rank_tensors(checkpoint::ShardFileWriter& writer, const ModelWeights& weights,
                        const OptimizerShard& optimizer) {
  const bool with_replicated = weights.table().tp_rank() == 0;
  const Tensor moments[] = {optimizer.first_moment, optimizer.second_moment};
  for_each_piece(weights, optimizer.state_begin, optimizer.state_end, with_replicated,
                 [&](const LocalParam& entry, int64_t begin, int64_t end) {
                   const TensorRegion region = region_of(entry, begin, end);
                   writer.write("param/" + entry.spec.name, region, flat(weights.param(entry)).rows(begin, end));
                   const int64_t state_offset = entry.flat_offset - optimizer.state_begin;
                   for (int moment = 0; moment < 2; ++moment)
                     writer.write(kMomentNames[moment] + entry.spec.name, region,
                                  moments[moment].rows(state_offset + begin, state_offset + end));
                 });
}

void read_rank_tensors(checkpoint::CheckpointReader& reader, ModelWeights& weights, const OptimizerShard& optimizer) {
  for (const LocalParam& entry : weights.table().params())
    reader.read("param/" + entry.spec.name, region_of(entry, 0, entry.numel()), flat(weights.param(entry)));
  const Tensor moments[] = {optimizer.first_moment, optimizer.second_moment};
  for_each_piece(weights, optimizer.state_begin, optimizer.state_end, true,
                 [&](const LocalParam& entry, int64_t begin, int64_t end) {
                   const int64_t state_offset = entry.flat_offset - optimizer.state_begin;
                   for (int moment = 0; moment < 2; ++moment)
                     reader.read(kMomentNames[moment] + entry.spec.name, region_of(entry, begin, end),
                                 moments[moment].rows(state_offset + begin, state_offset + end));
                 });
}

ModelConfig model_config_of(const checkpoint::Manifest& manifest, const std::filesystem::path& dir) {
  T6_CHECK(manifest.config.contains("model"), dir.string(), ": the manifest holds no model config");
  try {
    return RunConfig::from_json({{"model", manifest.config["model"]}}).model;
  } catch (const Error& error) {
    fail(str(dir.string(), ": the manifest's model config is invalid: ", error.what()));
  }
}

void check_same_model(const checkpoint::Manifest& manifest, const std::filesystem::path& dir,
                      const ModelConfig& config) {
  const std::string differences = model_config_differences(model_config_of(manifest, dir), "checkpoint", config, "run");
  T6_CHECK(differences.empty(), dir.string(), " holds another model than this run: ", differences);
}

}  // namespace t6
