#include "model/model_weights.h"

#include "core/rng.h"
#include "kernels/ops.h"

namespace t6 {

ModelWeights::ModelWeights(const ModelConfig& config, int tp_rank, int tp_size, int64_t pad_multiple,
                           bool with_gradients)
    : config_(config),
      table_(config, tp_rank, tp_size),
      padded_numel_((table_.local_numel() + pad_multiple - 1) / pad_multiple * pad_multiple),
      params_(size_t(padded_numel_) * sizeof(float)),
      grads_(with_gradients ? size_t(padded_numel_) * sizeof(float) : 0) {}

ModelWeights::ModelWeights(ShapesOnly, const ModelConfig& config, int tp_rank, int tp_size)
    : shapes_only_(true), config_(config), table_(config, tp_rank, tp_size), padded_numel_(table_.local_numel()) {}

ModelWeights ModelWeights::shapes_only(const ModelConfig& config, int tp_rank, int tp_size) {
  return ModelWeights(ShapesOnly{}, config, tp_rank, tp_size);
}

Tensor ModelWeights::view(const HostBuffer& buffer, const LocalParam& entry) const {
  // A non-null dummy pointer, as a measuring Arena hands out, so no caller takes it for empty.
  if (shapes_only_) return Tensor(reinterpret_cast<char*>(64), entry.local_shape, DType::F32);
  if (buffer.bytes() == 0) return {};  // gradients not allocated
  return Tensor(static_cast<float*>(buffer.data()) + entry.flat_offset, entry.local_shape, DType::F32);
}

int64_t global_element_index(const LocalParam& entry, int64_t local_index) {
  const Shape& global = entry.spec.global_shape;
  if (entry.spec.rule.kind == ShardRule::Kind::Replicated) return local_index;
  // Split weights are 2-d, cut along rows (axis 0) or columns (axis 1).
  const int64_t local_cols = entry.local_shape[1];
  int64_t row = local_index / local_cols, col = local_index % local_cols;
  if (entry.spec.rule.axis == 0) row += entry.axis_offset;
  else col += entry.axis_offset;
  return row * global[1] + col;
}

void copy_local_slice(const LocalParam& entry, const float* global, float* local) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < entry.numel(); ++i) local[i] = global[global_element_index(entry, i)];
}

void ModelWeights::initialise(uint64_t seed) {
  for (const LocalParam& entry : table_.params()) {
    float* data = param(entry).data<float>();
    if (entry.spec.init != InitKind::Uniform) {
      const float value = entry.spec.init == InitKind::One ? 1.0f : 0.0f;
      for (int64_t i = 0; i < entry.numel(); ++i) data[i] = value;
      continue;
    }
    const CounterRng rng(seed, entry.spec.name);
    const float bound = entry.spec.init_bound;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < entry.numel(); ++i) data[i] = rng.uniform_symmetric(uint64_t(global_element_index(entry, i)), bound);
  }
}

void ModelWeights::zero_grads() { ops::fill_zero(padded_grads()); }

}  // namespace t6
