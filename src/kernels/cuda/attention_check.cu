#include <cmath>

#include "kernels/cuda/attention_tiles.cuh"

namespace t6::ops::cuda {

AttentionShape check_attention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& y,
                               const Tensor& lse, const HeadMap& heads) {
  const AttentionDims dims = check_attention_dims(op, q, k, v, y, lse, heads);
  T6_CHECK(dims.D >= 1 && dims.D <= kMaxHeadDim, op, ": head dim ", dims.D, " is outside 1..", kMaxHeadDim,
           " (the CUDA attention kernel's range)");
  T6_CHECK(dims.Dv >= 1 && dims.Dv <= kMaxHeadDim, op, ": value width ", dims.Dv, " is outside 1..", kMaxHeadDim,
           " (the CUDA attention kernel's range)");
  require_device(op, {&lse});
  T6_CHECK(lse.dtype() == DType::F32, op, ": lse must be F32");
  const auto padded = [](int64_t width) { return int((width + 15) / 16 * 16); };
  return {dims.B,  dims.T,  dims.H, dims.Hkv, dims.D, dims.Dv, padded(dims.D), padded(dims.Dv),
          float(1.0 / std::sqrt(double(dims.D))), heads};
}

}  // namespace t6::ops::cuda
