#include <cstring>

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/cpu/vocab_slice.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& table, VocabSlice slice) {
  T6_CUDA_TWIN(out, embedding_forward(out, tokens, table, slice));
  for_float_type(t6_twin_routed, "embedding_forward", {&out, &table}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t d = matrix_cols(table), rows = matrix_rows(out), local_rows = matrix_rows(table);
    T6_CHECK(matrix_cols(out) == d, "embedding_forward: width mismatch");
    const VocabRange range = checked_vocab_range("embedding_forward", slice, local_rows);
    const int32_t* ids = checked_token_ids("embedding_forward", tokens, rows, range.vocab_size);
    for (int64_t n = 0; n < rows; ++n) {
      const int64_t row = ids[n] - range.first;
      T* destination = out.data<T>() + n * d;
      if (row >= 0 && row < local_rows) std::memcpy(destination, table.data<T>() + row * d, d * sizeof(T));
      else std::memset(destination, 0, d * sizeof(T));
    }
  });
}

void embedding_backward(Tensor dtable, const Tensor& dout, const Tensor& tokens, VocabSlice slice) {
  T6_CUDA_TWIN(dtable, embedding_backward(dtable, dout, tokens, slice));
  for_float_type(t6_twin_routed, "embedding_backward", {&dtable, &dout}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t d = matrix_cols(dtable), rows = matrix_rows(dout), local_rows = matrix_rows(dtable);
    const VocabRange range = checked_vocab_range("embedding_backward", slice, local_rows);
    const int32_t* ids = checked_token_ids("embedding_backward", tokens, rows, range.vocab_size);
    // Sequential over rows: two positions with the same token add into the same table row.
    for (int64_t n = 0; n < rows; ++n) {
      const int64_t row = ids[n] - range.first;
      if (row < 0 || row >= local_rows) continue;
      T* table_row = dtable.data<T>() + row * d;
      const T* grad = dout.data<T>() + n * d;
      for (int64_t j = 0; j < d; ++j) table_row[j] += grad[j];
    }
  });
}

}  // namespace t6::ops
