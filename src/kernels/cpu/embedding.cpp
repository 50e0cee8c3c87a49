#include <cstring>

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

namespace {
void check_tokens(const char* op, const Tensor& tokens, int64_t rows, int64_t vocab) {
  T6_CHECK(tokens.dtype() == DType::I32 && tokens.numel() == rows, op, ": expected ", rows, " I32 token ids");
  const int32_t* ids = tokens.data<int32_t>();
  for (int64_t n = 0; n < rows; ++n)
    T6_CHECK(ids[n] >= 0 && ids[n] < vocab, op, ": token id ", ids[n], " at position ", n,
             " is outside the vocabulary of ", vocab);
}
}  // namespace

void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& table) {
  for_float_type("embedding_forward", {&out, &table}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t d = matrix_cols(table), rows = matrix_rows(out);
    T6_CHECK(matrix_cols(out) == d, "embedding_forward: width mismatch");
    check_tokens("embedding_forward", tokens, rows, matrix_rows(table));
    const int32_t* ids = tokens.data<int32_t>();
    for (int64_t n = 0; n < rows; ++n) std::memcpy(out.data<T>() + n * d, table.data<T>() + ids[n] * d, d * sizeof(T));
  });
}

void embedding_backward(Tensor dtable, const Tensor& dout, const Tensor& tokens) {
  for_float_type("embedding_backward", {&dtable, &dout}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t d = matrix_cols(dtable), rows = matrix_rows(dout);
    check_tokens("embedding_backward", tokens, rows, matrix_rows(dtable));
    const int32_t* ids = tokens.data<int32_t>();
    // Sequential over rows: two positions with the same token add into the same table row.
    for (int64_t n = 0; n < rows; ++n) {
      T* row = dtable.data<T>() + ids[n] * d;
      const T* grad = dout.data<T>() + n * d;
      for (int64_t j = 0; j < d; ++j) row[j] += grad[j];
    }
  });
}

}  // namespace t6::ops
