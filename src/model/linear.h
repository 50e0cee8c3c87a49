// A bias-free linear map y = x·Wᵀ over N rows, forward and backward, on (N, width) views of any
// tensor (activations are stored (B, T, heads, dim) and seen here as matrices).
#pragma once
#include "core/tensor.h"
#include "kernels/ops.h"

namespace t6 {

inline Tensor as_rows(const Tensor& x, int64_t rows) { return x.view({rows, x.numel() / rows}); }

// out (N, out_dim) = x (N, in_dim) · Wᵀ.
inline void linear_forward(const Tensor& out, const Tensor& x, const Tensor& weight, int64_t rows) {
  ops::matmul(as_rows(out, rows), as_rows(x, rows), weight, false, true);
}

// dW += doutᵀ · x, and dx = dout · W (or dx += dout · W when accumulate_dx).
inline void linear_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dout, const Tensor& x,
                            const Tensor& weight, int64_t rows, bool accumulate_dx) {
  ops::matmul(dweight, as_rows(dout, rows), as_rows(x, rows), true, false, 1.0f, 1.0f);
  ops::matmul(as_rows(dx, rows), as_rows(dout, rows), weight, false, false, 1.0f, accumulate_dx ? 1.0f : 0.0f);
}

}  // namespace t6
