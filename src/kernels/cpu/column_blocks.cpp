// split_columns and pack_columns on the CPU: row by row, each part's row copied to or from its
// columns of the packed row.
#include <algorithm>

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

namespace {

void copy_column_blocks(TwinRouted routed, const char* op, const Tensor& packed, const std::vector<Tensor>& parts,
                        bool to_packed) {
  const std::vector<int64_t> widths = column_block_widths(op, packed, parts);
  for_float_type(routed, op, {&packed}, [&](auto zero) {
    using T = decltype(zero);
    for (const Tensor& part : parts) {
      require_host(routed, op, {&part});
      T6_CHECK(part.dtype() == packed.dtype(), op, ": mixed element types ", dtype_name(packed.dtype()), " and ",
               dtype_name(part.dtype()));
    }
    const int64_t rows = matrix_rows(packed), width = matrix_cols(packed);
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      T* packed_row = packed.data<T>() + row * width;
      for (size_t i = 0; i < parts.size(); ++i) {
        T* part_row = parts[i].data<T>() + row * widths[i];
        if (to_packed) std::copy_n(part_row, widths[i], packed_row);
        else std::copy_n(packed_row, widths[i], part_row);
        packed_row += widths[i];
      }
    }
  });
}

}  // namespace

void split_columns(const std::vector<Tensor>& parts, const Tensor& packed) {
  T6_CUDA_TWIN(packed, split_columns(parts, packed));
  copy_column_blocks(t6_twin_routed, "split_columns", packed, parts, false);
}

void pack_columns(Tensor packed, const std::vector<Tensor>& parts) {
  T6_CUDA_TWIN(packed, pack_columns(packed, parts));
  copy_column_blocks(t6_twin_routed, "pack_columns", packed, parts, true);
}

}  // namespace t6::ops
