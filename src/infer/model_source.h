// Where a model for generation or evaluation comes from, read as one process whatever layout saved
// it: a checkpoint step directory (any TP × DP layout, resharded on load into one whole model), a
// checkpoints directory (its `latest`), a run directory (its checkpoints/latest), or a safetensors
// export, reference state dict or fixture file. Weights are read straight into the model's storage,
// one tensor at a time: no optimizer state and no second copy of the model.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "checkpoint/checkpoint_store.h"
#include "model/model_weights.h"

namespace t6::infer {

struct ModelSource {
  std::string path;
  ModelConfig config;
  int64_t seq_len = 0;  // the training run's train.seq_len when the source records it, else 0
  std::optional<checkpoint::ResumePoint> checkpoint;  // for checkpoints; safetensors otherwise
  std::string tensor_prefix;  // safetensors: "" for state dicts, "param." for fixture files
};

// Opens and checks the source (manifest, every checkpoint file's checksum, safetensors header,
// model config) without reading weights into the model. Throws t6::Error naming the path and the
// problem.
ModelSource open_model_source(const std::string& path);

// Throws naming the source when the model's vocabulary is smaller than the tokenizer's, so that
// text is never encoded into ids the model has no embedding for.
void check_vocabulary_fits(const ModelSource& source, int64_t tokenizer_vocab_size);

// Fills `weights` (built for source.config with tp = 1) from the source.
void load_model_weights(const ModelSource& source, ModelWeights& weights);
// The whole model (tp = 1, no gradients) from the source, on `device`: read into host memory, then
// copied to the current GPU for Device::CUDA (the host copy is freed on return).
std::unique_ptr<ModelWeights> load_model_weights_on(const ModelSource& source, Device device);

}  // namespace t6::infer
