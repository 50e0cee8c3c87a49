#include "infer/model_source.h"

#include <filesystem>

#include "core/device_memory.h"
#include "train_state/reshard.h"
#include "checkpoint/safetensors.h"
#include "train_state/state_dict.h"
#include "train_state/train_checkpoint.h"

namespace t6::infer {

namespace fs = std::filesystem;

namespace {

ModelSource open_checkpoint_source(const std::string& path) {
  fs::path directory = path;
  // A run directory: its checkpoints/ folder.
  if (!fs::exists(directory / "manifest.json") && !fs::exists(directory / "latest") && fs::is_directory(directory / "checkpoints"))
    directory /= "checkpoints";
  ModelSource source;
  source.path = path;
  // Every file is checksummed, AdamW moments included, although only the weights are read: a
  // damaged checkpoint is refused naming its file, as resume does, instead of generating from it.
  source.checkpoint = checkpoint::open_checkpoint_path(directory, checkpoint::ChecksumCheck::verify);
  const checkpoint::Manifest& manifest = source.checkpoint->manifest;
  source.config = model_config_of(manifest, source.checkpoint->dir);
  const auto& train = manifest.config.value("train", nlohmann::json::object());
  if (train.contains("seq_len") && train["seq_len"].is_number_integer()) source.seq_len = train["seq_len"].get<int64_t>();
  return source;
}

ModelSource open_safetensors_source(const std::string& path) {
  const SafetensorsReader file(path);
  ModelSource source;
  source.path = path;
  source.config = config_of_state_dict(file, nullptr);
  source.tensor_prefix = file.has("param.transformer.wte.weight") || file.has("param.lm_head.weight") ? "param." : "";
  // An export's training sequence length (t6_ckpt export writes it; fixtures and other files lack it).
  if (const auto found = file.metadata().find("seq_len"); found != file.metadata().end()) {
    size_t used = 0;
    try {
      source.seq_len = std::stoll(found->second, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    T6_CHECK(used == found->second.size() && source.seq_len > 0, path, ": metadata 'seq_len' = '", found->second,
             "' is not a positive integer");
  }
  return source;
}

}  // namespace

ModelSource open_model_source(const std::string& path) {
  T6_CHECK(!path.empty(), "no model given (a checkpoint directory or a .safetensors file)");
  T6_CHECK(fs::exists(path), path, ": no such file or directory");
  return fs::is_directory(path) ? open_checkpoint_source(path) : open_safetensors_source(path);
}

void check_vocabulary_fits(const ModelSource& source, int64_t tokenizer_vocab_size) {
  T6_CHECK(source.config.vocab_size >= tokenizer_vocab_size, source.path, ": the model's vocabulary has ",
           source.config.vocab_size, " tokens, fewer than the tokenizer's ", tokenizer_vocab_size);
}

void load_model_weights(const ModelSource& source, ModelWeights& weights) {
  T6_ASSERT(weights.table().tp_size() == 1);
  const std::string differences = model_config_differences(source.config, "source", weights.config(), "model");
  T6_ASSERT(differences.empty());
  if (source.checkpoint) {
    checkpoint::CheckpointReader reader(source.checkpoint->dir, source.checkpoint->manifest);
    read_rank_tensors(reader, weights, OptimizerShard{});  // an empty optimizer range: weights only
  } else {
    load_state_dict(SafetensorsReader(source.path), weights, source.tensor_prefix);
  }
}

std::unique_ptr<ModelWeights> load_model_weights_on(const ModelSource& source, Device device) {
  auto host = std::make_unique<ModelWeights>(source.config, 0, 1, 1, false);
  load_model_weights(source, *host);
  if (device == Device::CPU) return host;
  auto on_device = std::make_unique<ModelWeights>(source.config, 0, 1, 1, false, device);
  copy_tensor(on_device->params(), host->params());
  return on_device;
}

}  // namespace t6::infer
