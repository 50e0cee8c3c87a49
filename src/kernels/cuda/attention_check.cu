#include <cmath>

#include "kernels/cuda/attention_tiles.cuh"

namespace t6::ops::cuda {

AttentionShape check_attention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& y,
                               const Tensor& lse, const HeadMap& heads) {
  T6_CHECK(q.ndim() == 4 && k.ndim() == 4, op, ": q and k must be (B, T, H, D)");
  require_same_shape(op, k, v);
  require_same_shape(op, y, q);
  AttentionShape shape{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), 0, 0.0f, heads};
  T6_CHECK(k.size(0) == shape.B && k.size(1) == shape.T && k.size(3) == shape.D, op, ": k ", k.shape().to_string(),
           " does not fit q ", q.shape().to_string());
  T6_CHECK(shape.D >= 1 && shape.D <= kMaxHeadDim, op, ": head dim ", shape.D, " is outside 1..", kMaxHeadDim,
           " (the CUDA attention kernel's range)");
  require_device(op, {&lse});
  T6_CHECK(lse.dtype() == DType::F32 && lse.numel() == shape.B * shape.H * shape.T, op, ": lse must be F32 (B, H, T)");
  for (int64_t h = 0; h < shape.H; ++h) {
    const int64_t kv = (heads.first_head + h) / heads.group_size - heads.first_kv_head;
    T6_CHECK(kv >= 0 && kv < shape.Hkv, op, ": head ", h, " maps to KV head ", kv, " of ", shape.Hkv);
  }
  shape.padded_dim = int((shape.D + 15) / 16 * 16);
  shape.scale = float(1.0 / std::sqrt(double(shape.D)));
  return shape;
}

}  // namespace t6::ops::cuda
