#include "train_state/state_dict.h"

#include <cmath>
#include <set>
#include <vector>

namespace t6 {

namespace {
constexpr const char* kEmbedding = "transformer.wte.weight";
constexpr const char* kHead = "lm_head.weight";
}  // namespace

ModelConfig config_of_state_dict(const SafetensorsReader& file, const ModelConfig* given) {
  if (!file.metadata().count("model")) {
    T6_CHECK(given, file.path(), ": the file carries no model config in its metadata; pass --config");
    return *given;
  }
  const ModelConfig stored = ModelConfig::from_metadata(file.metadata(), file.path());
  if (given) {
    const std::string differences = model_config_differences(stored, "file", *given, "given");
    T6_CHECK(differences.empty(), file.path(), ": the model config in the file's metadata differs from the given config: ",
             differences);
  }
  return stored;
}

void load_state_dict(const SafetensorsReader& file, ModelWeights& weights, const std::string& prefix) {
  std::set<std::string> used;  // like load_state_dict(strict=True): every tensor under `prefix` is a parameter
  for (const LocalParam& entry : weights.table().params()) {
    const std::vector<int64_t> shape = entry.spec.global_shape.to_vector();
    std::string key = prefix + entry.spec.name;
    if (entry.spec.name == kEmbedding) {
      const std::string head_key = prefix + kHead;
      if (!file.has(key)) {
        T6_CHECK(file.has(head_key), file.path(), ": neither '", key, "' nor '", head_key, "' (the tied embedding) is present");
        key = head_key;
      } else if (file.has(head_key)) {
        T6_CHECK(file.read_f32(key, &shape) == file.read_f32(head_key, &shape), file.path(), ": '", key, "' and '",
                 head_key, "' are tied in the model but differ in the file");
      }
      used.insert(head_key);
    }
    T6_CHECK(file.has(key), file.path(), ": missing tensor '", key, "'");
    used.insert(key);
    const std::vector<float> global = file.read_f32(key, &shape);
    for (size_t index = 0; index < global.size(); ++index)
      T6_CHECK(std::isfinite(global[index]), file.path(), ": tensor '", key, "' holds ", global[index], " at element ",
               index, "; refusing to import non-finite weights");
    copy_local_slice(entry, global.data(), weights.param(entry).data<float>());
  }
  for (const auto& [name, entry] : file.entries()) {
    T6_CHECK(name.rfind(prefix, 0) != 0 || used.count(name), file.path(), ": tensor '", name,
             "' is not a parameter of the model (", model_kind_name(weights.config().kind), ", n_layer ",
             weights.config().n_layer, ") that the file's metadata or the given config describes");
  }
}

void save_state_dict(const std::string& path, const ModelWeights& weights, DType dtype,
                     const std::map<std::string, std::string>& extra_metadata) {
  T6_CHECK(weights.table().tp_size() == 1, "save_state_dict writes a whole model: gather the TP slices first");
  std::vector<SafetensorsTensor> tensors;
  for (const LocalParam& entry : weights.table().params()) {
    const float* data = weights.param(entry).data<float>();
    tensors.push_back({entry.spec.name, dtype, entry.spec.global_shape.to_vector(), data});
    if (entry.spec.name == kEmbedding) tensors.push_back({kHead, dtype, entry.spec.global_shape.to_vector(), data});
  }
  std::map<std::string, std::string> metadata = weights.config().to_metadata();
  metadata.insert(extra_metadata.begin(), extra_metadata.end());
  write_safetensors(path, tensors, metadata);
}

}  // namespace t6
