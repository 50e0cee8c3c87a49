#include "train_state/train_checkpoint.h"

#include <algorithm>
#include <cmath>

#include "checkpoint/file_checksum.h"
#include "core/error.h"
#include "train/distributed_optimizer.h"
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
  return {{"step", state.step},
          {"adam_steps", state.adam_steps},
          {"lr_decay_steps", state.lr_decay_steps},
          {"elapsed_seconds", state.elapsed_seconds},
          {"skipped_steps", state.skipped_steps},
          {"skipped_in_a_row", state.skipped_in_a_row},
          {"corpus", {{"path", state.corpus_path}, {"index_xxh3_128", state.corpus_index_hash}}}};
}

TrainState train_state_from_json(const nlohmann::json& json, const std::string& source) {
  try {
    TrainState state{json.at("step").get<int64_t>(), json.at("adam_steps").get<int64_t>(),
                     json.at("lr_decay_steps").get<int64_t>(), json.at("elapsed_seconds").get<double>(), "", ""};
    state.skipped_steps = json.value("skipped_steps", int64_t(0));
    state.skipped_in_a_row = json.value("skipped_in_a_row", int64_t(0));
    if (json.contains("corpus")) {
      state.corpus_path = json["corpus"].at("path").get<std::string>();
      state.corpus_index_hash = json["corpus"].at("index_xxh3_128").get<std::string>();
    }
    return state;
  } catch (const nlohmann::json::exception& error) {
    fail(str(source, ": the manifest's training state is incomplete (", error.what(), ")"));
  }
}

TrainState training_state_of(const checkpoint::Manifest& manifest, const std::filesystem::path& dir) {
  const std::string source = (dir / "manifest.json").string();
  const TrainState state = train_state_from_json(manifest.state, source);
  T6_CHECK(state.step == manifest.step, source, ": the training state is of step ", state.step, " but the manifest of step ",
           manifest.step);
  auto check_count = [&](const char* name, int64_t count, int64_t most) {
    T6_CHECK(count >= 0 && count <= most, source, ": the training state's ", name, " ", count, " is not in [0, ", most,
             "]");
  };
  check_count("adam_steps", state.adam_steps, state.step);
  check_count("skipped_steps", state.skipped_steps, state.step);
  check_count("skipped_in_a_row", state.skipped_in_a_row, state.skipped_steps);
  T6_CHECK(state.lr_decay_steps >= 0, source, ": the training state's lr_decay_steps ", state.lr_decay_steps,
           " is negative");
  T6_CHECK(std::isfinite(state.elapsed_seconds) && state.elapsed_seconds >= 0, source,
           ": the training state's elapsed_seconds ", state.elapsed_seconds, " is not a time");
  return state;
}

void check_training_checkpoint(const checkpoint::ResumePoint& point) {
  const ModelConfig model = model_config_of(point.manifest, point.dir);
  // Every save lists exactly the tensors of its model config; an edited config would load the
  // tensors into a model of other shapes.
  const std::vector<checkpoint::TensorInfo> expected = train_checkpoint_tensors(model);
  for (const checkpoint::TensorInfo& tensor : expected) {
    const checkpoint::TensorInfo* listed = point.manifest.find_tensor(tensor.name);
    T6_CHECK(listed && *listed == tensor, (point.dir / "manifest.json").string(), ": the manifest's model config has tensor '",
             tensor.name, "' of shape ", checkpoint::extents_to_string(tensor.shape), " but its tensor table ",
             listed ? "records " + checkpoint::extents_to_string(listed->shape) : std::string("lacks it"));
  }
  T6_CHECK(point.manifest.tensors.size() == expected.size(), (point.dir / "manifest.json").string(), ": its tensor table holds ",
           point.manifest.tensors.size(), " tensors, the model config has ", expected.size());
  training_state_of(point.manifest, point.dir);
}

std::vector<checkpoint::TensorInfo> train_checkpoint_tensors(const ModelConfig& config) {
  std::vector<checkpoint::TensorInfo> tensors;
  for (const char* prefix : {"param/", kMomentNames[0], kMomentNames[1]})
    for (const ParamSpec& spec : model_param_specs(config))
      tensors.push_back({prefix + spec.name, extents_of(spec.global_shape), DType::F32});
  return tensors;
}

std::string shard_file_name(int tp_rank, int dp_rank) { return str("shard_tp", tp_rank, "_dp", dp_rank, ".h5"); }

Range shard_range(const ModelWeights& weights, int dp_rank, int dp_size, bool zero1) {
  if (zero1 && dp_size > 1) return optimizer_state_range(weights, dp_rank, dp_size, true);
  return balanced_range(weights.table().local_numel(), dp_size, dp_rank);
}

void write_rank_tensors(checkpoint::ShardFileWriter& writer, const ModelWeights& weights,
                        const OptimizerShard& optimizer, Range range) {
  T6_ASSERT(range.begin >= optimizer.state_begin && range.end <= optimizer.state_end);
  const bool with_replicated = weights.table().tp_rank() == 0;
  const Tensor moments[] = {optimizer.first_moment, optimizer.second_moment};
  for_each_piece(weights, range.begin, range.end, with_replicated,
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
  // Reads a piece and refuses it when a value is not finite (a diverged or damaged save).
  auto read_finite = [&](const std::string& tensor, const TensorRegion& region, const Tensor& out) {
    reader.read(tensor, region, out);
    const float* values = out.data<float>();
    for (int64_t index = 0; index < out.numel(); ++index)
      T6_CHECK(std::isfinite(values[index]), "checkpoint ", reader.dir().string(), ": tensor '", tensor, "' holds ",
               values[index], " in region ", region.to_string(), " (element ", index, " of it); refusing to load it");
  };
  for (const LocalParam& entry : weights.table().params())
    read_finite("param/" + entry.spec.name, region_of(entry, 0, entry.numel()), flat(weights.param(entry)));
  const Tensor moments[] = {optimizer.first_moment, optimizer.second_moment};
  for_each_piece(weights, optimizer.state_begin, optimizer.state_end, true,
                 [&](const LocalParam& entry, int64_t begin, int64_t end) {
                   const int64_t state_offset = entry.flat_offset - optimizer.state_begin;
                   for (int moment = 0; moment < 2; ++moment)
                     read_finite(kMomentNames[moment] + entry.spec.name, region_of(entry, begin, end),
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

void record_corpus(TrainState& state, const std::string& corpus_dir) {
  state.corpus_path = corpus_dir;
  state.corpus_index_hash = checkpoint::digest_file(std::filesystem::path(corpus_dir) / "index.json").xxh3_128;
}

const std::vector<std::string>& resume_sensitive_keys() {
  static const std::vector<std::string> keys = {"train.seed", "train.global_batch_size", "train.seq_len",
                                                "data.corpus"};
  return keys;
}

void check_resume_keeps_meaning(const checkpoint::Manifest& manifest, const std::filesystem::path& dir,
                                const nlohmann::json& run_config, const TrainState& run_state,
                                const std::vector<std::string>& allowed) {
  for (const std::string& key : allowed)
    T6_CHECK(std::find(resume_sensitive_keys().begin(), resume_sensitive_keys().end(), key) !=
                 resume_sensitive_keys().end(),
             "--allow-change ", key, ": not a key resume checks (train.seed, train.global_batch_size, train.seq_len, ",
             "data.corpus)");
  const TrainState saved = training_state_of(manifest, dir);
  // Nothing trained from it yet (t6_ckpt import, fine-tuning's start): no batch was drawn and AdamW
  // is fresh, so another seed, batch, sequence length or corpus changes nothing already run.
  if (saved.step == 0 && saved.adam_steps == 0) return;
  std::string differences;
  auto compare = [&](const std::string& key, bool same, const std::string& saved_value, const std::string& run_value) {
    if (same || std::find(allowed.begin(), allowed.end(), key) != allowed.end()) return;
    differences += str(differences.empty() ? "" : ", ", key, " (checkpoint ", saved_value, ", run ", run_value, ")");
  };
  for (const char* key : {"seed", "global_batch_size", "seq_len"}) {
    const nlohmann::json saved_value = manifest.config.value("train", nlohmann::json::object()).value(key, nlohmann::json());
    const nlohmann::json& run_value = run_config.at("train").at(key);
    compare(str("train.", key), saved_value == run_value, saved_value.dump(), run_value.dump());
  }
  // The corpus by its index.json's hash: a corpus moved elsewhere is the same corpus. Checkpoints
  // written before the corpus was recorded carry no hash; nothing to compare then.
  if (!saved.corpus_index_hash.empty())
    compare("data.corpus", saved.corpus_index_hash == run_state.corpus_index_hash,
            str(saved.corpus_path, " with index.json ", saved.corpus_index_hash),
            str(run_state.corpus_path, " with index.json ", run_state.corpus_index_hash));
  T6_CHECK(differences.empty(), "cannot resume from ", dir.string(), ": the run differs from the checkpoint in ",
           differences, "; pass --allow-change KEY... to continue anyway");
}

}  // namespace t6
