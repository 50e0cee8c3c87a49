// A bias-free linear map y = x·Wᵀ over N rows, forward and backward, on (N, width) views of any
// tensor (activations are stored (B, T, heads, dim) and seen here as matrices).
#pragma once
#include "core/arena.h"
#include "core/tensor.h"
#include "kernels/ops.h"

namespace t6 {

inline Tensor as_rows(const Tensor& x, int64_t rows) { return x.view({rows, x.numel() / rows}); }

// out (N, out_dim) = x (N, in_dim) · Wᵀ.
inline void linear_forward(const Tensor& out, const Tensor& x, const Tensor& weight, int64_t rows) {
  ops::matmul(as_rows(out, rows), as_rows(x, rows), weight, false, true);
}

// Where `x` goes as an operand of a matmul over `dtype` inputs: x itself when it has that type, else
// a view of `dtype` in `cursor`'s scratch. cuBLASLt multiplies like types, so on the CUDA backend a
// gradient kept in fp32 meets the bf16 activations and weights as a bf16 copy; the CPU backend never
// copies. Only x's shape and type are read, so planning passes a tensor that points nowhere.
inline Tensor matmul_operand_space(const Tensor& x, DType dtype, ScratchCursor& cursor) {
  return x.dtype() == dtype ? x : cursor.take(x.shape(), dtype);
}
// Fills what matmul_operand_space gave for x (nothing to do where it is x itself).
inline void fill_matmul_operand(const Tensor& operand, const Tensor& x) {
  if (operand.raw() != x.raw()) ops::cast(operand, x);
}
inline Tensor as_matmul_operand(const Tensor& x, DType dtype, ScratchCursor& cursor) {
  const Tensor operand = matmul_operand_space(x, dtype, cursor);
  fill_matmul_operand(operand, x);
  return operand;
}

// dW += doutᵀ · x, and dx = dout · W (or dx += dout · W when accumulate_dx). dout, x and W share an
// element type (as_matmul_operand); dW and an accumulated dx are F32.
inline void linear_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dout, const Tensor& x,
                            const Tensor& weight, int64_t rows, bool accumulate_dx) {
  ops::matmul(dweight, as_rows(dout, rows), as_rows(x, rows), true, false, 1.0f, 1.0f);
  ops::matmul(as_rows(dx, rows), as_rows(dout, rows), weight, false, false, 1.0f, accumulate_dx ? 1.0f : 0.0f);
}

}  // namespace t6
