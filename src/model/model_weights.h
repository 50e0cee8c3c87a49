// This rank's parameters and gradients: one flat fp32 buffer each, laid out by the parameter table,
// with views by reference name, in host memory or in one device arena (the CUDA backend). On the
// CUDA backend the arena also holds a bf16 copy of the parameters, which the matmuls read (DESIGN.md,
// Precision) and AdamW rewrites with every update.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/tensor.h"
#include "model/param_table.h"

namespace t6 {

class ModelWeights {
 public:
  // The flat buffers are padded with zeros to a multiple of `pad_multiple` elements, so ZeRO-1 can
  // reduce-scatter and all-gather them in equal chunks over the DP ranks. Without gradients
  // (inference, evaluation) only the parameters take memory and grad() views are empty.
  // On Device::CUDA both buffers and (with gradients: training) the bf16 copy are one device arena
  // (planned once, 256-byte aligned).
  ModelWeights(const ModelConfig& config, int tp_rank, int tp_size, int64_t pad_multiple = 1,
               bool with_gradients = true, Device device = Device::CPU);
  // The table and the views' shapes without the memory (the views point nowhere), for planning
  // what a model of this config needs to train on `device` (LanguageModel::planned_activations).
  static ModelWeights shapes_only(const ModelConfig& config, int tp_rank, int tp_size, Device device = Device::CPU);
  bool has_gradients() const { return !grads_.empty(); }
  Device device() const { return device_; }
  size_t param_bytes() const { return params_.bytes(); }
  size_t grad_bytes() const { return grads_.empty() ? 0 : grads_.bytes(); }
  size_t matmul_copy_bytes() const { return params_bf16_.empty() ? 0 : params_bf16_.bytes(); }
  // The element type of what the matmuls and the attention read, weights and activations alike:
  // BF16 when training on the CUDA backend (the weights' bf16 copy), F32 on the CPU backend (the
  // fp32 reference) and for inference weights on the device (the decoder computes in fp32 there and
  // holds no copy). Norm statistics, the residual stream, logits, the loss and every gradient that
  // is accumulated stay F32 everywhere.
  DType matmul_dtype() const { return matmul_dtype_; }

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
  // The weight as the matmuls read it: its bf16 copy when training on the CUDA backend, else the
  // fp32 master itself. The embedding lookup reads the fp32 master (param) everywhere.
  Tensor matmul_param(const std::string& name) const {
    return matmul_dtype_ == DType::BF16 ? view(params_bf16_, table_.find(name), DType::BF16) : param(name);
  }
  // The parameters `names`, which the table places back to back with equal column counts, seen as
  // one matrix: their rows stacked in that order, a view of the same memory (nothing is copied).
  // TPA's six factor maps run as one GEMM on it; each parameter keeps its own name and view for the
  // optimizer and checkpoints. Throws if the table does not place them so.
  Tensor stacked_matmul_params(const std::vector<std::string>& names) const {
    return matmul_dtype_ == DType::BF16 ? view(params_bf16_, stacked_entry(names), DType::BF16)
                                        : view(params_, stacked_entry(names));
  }
  Tensor stacked_grads(const std::vector<std::string>& names) const { return view(grads_, stacked_entry(names)); }
  // (padded_numel) BF16 when training on the CUDA backend, else empty: AdamW writes it beside the
  // master weights (ZeRO-1 all-gathers it with them).
  Tensor padded_matmul_copy() const { return params_bf16_; }
  // Rounds the master weights into the bf16 copy (a no-op on the CPU backend): after anything but
  // AdamW writes them (initialise does it itself; a resume's upload).
  void refresh_matmul_copy();

  // docs/MODEL.md 2.2: each element of each parameter drawn from (seed, name, global element index),
  // so every layout gets the same full model. Device weights are drawn on the host and uploaded.
  void initialise(uint64_t seed);
  void zero_grads();

 private:
  struct ShapesOnly {};
  ModelWeights(ShapesOnly, const ModelConfig& config, int tp_rank, int tp_size, Device device);
  Tensor view(const Tensor& buffer, const LocalParam& entry, DType dtype = DType::F32) const;
  // An entry covering `names` (stacked_matmul_params), checked to be adjacent in the flat buffers.
  LocalParam stacked_entry(const std::vector<std::string>& names) const;
  bool shapes_only_ = false;
  Device device_ = Device::CPU;
  DType matmul_dtype_ = DType::F32;
  ModelConfig config_;
  ParamTable table_;
  int64_t padded_numel_;
  // (padded_numel) views of storage_, grads_ empty without gradients, params_bf16_ empty on the
  // CPU backend; declared first, as storage_'s planning assigns them.
  Tensor params_, grads_, params_bf16_;
  Arena storage_;
};

// Global flat index of element `local_index` of this rank's slice (row-major in both).
int64_t global_element_index(const LocalParam& entry, int64_t local_index);
// Copies this rank's slice out of the full tensor `global` into `local` (entry.numel() elements).
void copy_local_slice(const LocalParam& entry, const float* global, float* local);
// The inverse: writes this rank's slice `local` into its place in the full tensor `global`.
void place_local_slice(const LocalParam& entry, const float* local, float* global);

}  // namespace t6
