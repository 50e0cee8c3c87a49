// This rank's parameters and gradients: one flat fp32 buffer each, laid out by the parameter table,
// with views by reference name.
#pragma once
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "model/param_table.h"

namespace t6 {

class ModelWeights {
 public:
  // The flat buffers are padded with zeros to a multiple of `pad_multiple` elements, so ZeRO-1 can
  // reduce-scatter and all-gather them in equal chunks over the DP ranks. Without gradients
  // (inference, evaluation) only the parameters take memory and grad() views are empty.
  ModelWeights(const ModelConfig& config, int tp_rank, int tp_size, int64_t pad_multiple = 1,
               bool with_gradients = true);
  // The table and the views' shapes without the memory (the views point nowhere), for planning
  // what a model of this config needs (LanguageModel::planned_activation_bytes).
  static ModelWeights shapes_only(const ModelConfig& config, int tp_rank, int tp_size);
  bool has_gradients() const { return grads_.bytes() > 0; }

  const ModelConfig& config() const { return config_; }
  const ParamTable& table() const { return table_; }
  Tensor params() const { return params_.as({table_.local_numel()}, DType::F32); }
  Tensor grads() const { return grads_.as({table_.local_numel()}, DType::F32); }
  int64_t padded_numel() const { return padded_numel_; }
  Tensor padded_params() const { return params_.as({padded_numel_}, DType::F32); }
  Tensor padded_grads() const { return grads_.as({padded_numel_}, DType::F32); }
  Tensor param(const std::string& name) const { return view(params_, table_.find(name)); }
  Tensor grad(const std::string& name) const { return view(grads_, table_.find(name)); }
  Tensor param(const LocalParam& entry) const { return view(params_, entry); }
  Tensor grad(const LocalParam& entry) const { return view(grads_, entry); }

  // docs/MODEL.md 2.2: each element of each parameter drawn from (seed, name, global element index),
  // so every layout gets the same full model.
  void initialise(uint64_t seed);
  void zero_grads();

 private:
  struct ShapesOnly {};
  ModelWeights(ShapesOnly, const ModelConfig& config, int tp_rank, int tp_size);
  Tensor view(const HostBuffer& buffer, const LocalParam& entry) const;
  bool shapes_only_ = false;
  ModelConfig config_;
  ParamTable table_;
  int64_t padded_numel_;
  HostBuffer params_, grads_;
};

// Global flat index of element `local_index` of this rank's slice (row-major in both).
int64_t global_element_index(const LocalParam& entry, int64_t local_index);
// Copies this rank's slice out of the full tensor `global` into `local` (entry.numel() elements).
void copy_local_slice(const LocalParam& entry, const float* global, float* local);

}  // namespace t6
