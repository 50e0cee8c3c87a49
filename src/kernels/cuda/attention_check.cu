#include <cmath>

#include "kernels/cuda/attention_tiles.cuh"

namespace t6::ops::cuda {

AttentionShape check_attention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& y,
                               const Tensor& lse, const HeadMap& heads) {
  const AttentionDims dims = check_attention_dims(op, q, k, v, y, lse, heads);
  T6_CHECK(dims.D >= 1 && dims.D <= kMaxHeadDim, op, ": head dim ", dims.D, " is outside 1..", kMaxHeadDim,
           " (the CUDA attention kernel's range)");
  T6_CHECK(dims.Dv == dims.D, op, ": value width ", dims.Dv, " differs from key width ", dims.D,
           " (MLA's shape), which the CUDA attention kernel does not take yet");
  require_device(op, {&lse});
  T6_CHECK(lse.dtype() == DType::F32, op, ": lse must be F32");
  return {dims.B, dims.T, dims.H, dims.Hkv, dims.D, int((dims.D + 15) / 16 * 16), float(1.0 / std::sqrt(double(dims.D))),
          heads};
}

}  // namespace t6::ops::cuda
