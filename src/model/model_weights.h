// This rank's parameters and gradients: one flat fp32 buffer each, laid out by the parameter table,
// with views by reference name, in host memory or in one device arena (the CUDA backend).
#pragma once
#include <cstdint>
#include <string>

#include "core/arena.h"
#include "core/tensor.h"
#include "model/param_table.h"

namespace t6 {

class ModelWeights {
 public:
  // The flat buffers are padded with zeros to a multiple of `pad_multiple` elements, so ZeRO-1 can
  // reduce-scatter and all-gather them in equal chunks over the DP ranks. Without gradients
  // (inference, evaluation) only the parameters take memory and grad() views are empty.
  // On Device::CUDA both buffers are one device arena (planned once, 256-byte aligned).
  ModelWeights(const ModelConfig& config, int tp_rank, int tp_size, int64_t pad_multiple = 1,
               bool with_gradients = true, Device device = Device::CPU);
  // The table and the views' shapes without the memory (the views point nowhere), for planning
  // what a model of this config needs (LanguageModel::planned_activation_bytes).
  static ModelWeights shapes_only(const ModelConfig& config, int tp_rank, int tp_size);
  bool has_gradients() const { return !grads_.empty(); }
  Device device() const { return storage_.device(); }
  size_t param_bytes() const { return params_.bytes(); }
  size_t grad_bytes() const { return grads_.empty() ? 0 : grads_.bytes(); }

  const ModelConfig& config() const { return config_; }
  const ParamTable& table() const { return table_; }
  Tensor params() const { return params_.rows(0, table_.local_numel()); }
  Tensor grads() const { return grads_.empty() ? Tensor() : grads_.rows(0, table_.local_numel()); }
  int64_t padded_numel() const { return padded_numel_; }
  Tensor padded_params() const { return params_; }
  Tensor padded_grads() const { return grads_; }
  Tensor param(const std::string& name) const { return view(params_, table_.find(name)); }
  Tensor grad(const std::string& name) const { return view(grads_, table_.find(name)); }
  Tensor param(const LocalParam& entry) const { return view(params_, entry); }
  Tensor grad(const LocalParam& entry) const { return view(grads_, entry); }

  // docs/MODEL.md 2.2: each element of each parameter drawn from (seed, name, global element index),
  // so every layout gets the same full model. Device weights are drawn on the host and uploaded.
  void initialise(uint64_t seed);
  void zero_grads();

 private:
  struct ShapesOnly {};
  ModelWeights(ShapesOnly, const ModelConfig& config, int tp_rank, int tp_size);
  Tensor view(const Tensor& buffer, const LocalParam& entry) const;
  bool shapes_only_ = false;
  ModelConfig config_;
  ParamTable table_;
  int64_t padded_numel_;
  // (padded_numel) views of storage_, grads_ empty without gradients; declared first, as
  // storage_'s planning assigns them.
  Tensor params_, grads_;
  Arena storage_;
};

// Global flat index of element `local_index` of this rank's slice (row-major in both).
int64_t global_element_index(const LocalParam& entry, int64_t local_index);
// Copies this rank's slice out of the full tensor `global` into `local` (entry.numel() elements).
void copy_local_slice(const LocalParam& entry, const float* global, float* local);
// The inverse: writes this rank's slice `local` into its place in the full tensor `global`.
void place_local_slice(const LocalParam& entry, const float* local, float* global);

}  // namespace t6
