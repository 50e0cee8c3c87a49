#include "model/model_weights.h"

#include "core/device_memory.h"
#include "core/rng.h"
#include "kernels/ops.h"

namespace t6 {

ModelWeights::ModelWeights(const ModelConfig& config, int tp_rank, int tp_size, int64_t pad_multiple,
                           bool with_gradients, Device device)
    : device_(device),
      matmul_dtype_(device == Device::CUDA && with_gradients ? DType::BF16 : DType::F32),
      config_(config),
      table_(config, tp_rank, tp_size),
      padded_numel_((table_.local_numel() + pad_multiple - 1) / pad_multiple * pad_multiple),
      storage_(
          [&](Arena& arena) {
            params_ = arena.take({padded_numel_});
            grads_ = with_gradients ? arena.take({padded_numel_}) : Tensor();
            // A copy of the whole flat buffer, at the same offsets: every parameter but MLA's
            // latent-norm weights (d_latent elements each) is a matmul weight, and one range keeps
            // AdamW's single pass and ZeRO-1's equal chunks.
            params_bf16_ = matmul_dtype_ == DType::BF16 ? arena.take({padded_numel_}, DType::BF16) : Tensor();
          },
          device) {}

ModelWeights::ModelWeights(ShapesOnly, const ModelConfig& config, int tp_rank, int tp_size, Device device)
    : shapes_only_(true),
      device_(device),
      matmul_dtype_(device == Device::CUDA ? DType::BF16 : DType::F32),
      config_(config),
      table_(config, tp_rank, tp_size),
      padded_numel_(table_.local_numel()) {}

ModelWeights ModelWeights::shapes_only(const ModelConfig& config, int tp_rank, int tp_size, Device device) {
  return ModelWeights(ShapesOnly{}, config, tp_rank, tp_size, device);
}

Tensor ModelWeights::view(const Tensor& buffer, const LocalParam& entry, DType dtype) const {
  // A non-null dummy pointer, as a measuring Arena hands out, so no caller takes it for empty.
  if (shapes_only_) return Tensor(reinterpret_cast<char*>(256), entry.local_shape, dtype, device_);
  if (buffer.empty()) return {};  // gradients not allocated
  T6_ASSERT(buffer.dtype() == dtype);
  return Tensor(static_cast<char*>(buffer.raw()) + entry.flat_offset * int64_t(dtype_size(dtype)), entry.local_shape,
                dtype, buffer.device());
}

LocalParam ModelWeights::stacked_entry(const std::vector<std::string>& names) const {
  T6_CHECK(!names.empty(), "stacked parameters: no names");
  const LocalParam& first = table_.find(names.front());
  T6_CHECK(first.local_shape.ndim == 2, "stacked parameters: ", first.spec.name, " ", first.local_shape.to_string(),
           " is not a matrix");
  LocalParam stacked{{str("stacked ", first.spec.name), {}, {}}, first.local_shape, 0, first.flat_offset};
  for (size_t i = 1; i < names.size(); ++i) {
    const LocalParam& next = table_.find(names[i]);
    T6_CHECK(next.local_shape.ndim == 2 && next.local_shape[1] == stacked.local_shape[1] &&
                 next.flat_offset == stacked.flat_offset + stacked.numel(),
             "stacked parameters: ", next.spec.name, " ", next.local_shape.to_string(), " does not follow ",
             names[i - 1], " in the flat buffer as a block of the same width");
    stacked.local_shape.dims[0] += next.local_shape[0];
  }
  return stacked;
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

void place_local_slice(const LocalParam& entry, const float* local, float* global) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < entry.numel(); ++i) global[global_element_index(entry, i)] = local[i];
}

void ModelWeights::initialise(uint64_t seed) {
  HostBuffer staging(device() == Device::CPU ? 0 : params_.bytes());
  const Tensor host_params = device() == Device::CPU ? params_ : staging.as(params_.shape(), DType::F32);
  for (const LocalParam& entry : table_.params()) {
    float* data = view(host_params, entry).data<float>();
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
  if (device() != Device::CPU) copy_tensor(params_, host_params);
  refresh_matmul_copy();
}

void ModelWeights::refresh_matmul_copy() {
  if (!params_bf16_.empty()) ops::cast(params_bf16_, params_);
}

void ModelWeights::zero_grads() { ops::fill_zero(padded_grads()); }

}  // namespace t6
