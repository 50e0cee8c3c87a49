// split_columns and pack_columns on the GPU: one grid-stride pass over the packed matrix, each
// element finding its part by the blocks' first columns (a handful of parts: TPA's five or six
// factor maps). FloatRef converts between F32 and BF16 as it loads and stores.
#include "core/cuda/cuda_check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"

namespace t6::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxParts = 8;

// Part i is columns [first_column[i], first_column[i + 1]) of the packed rows.
struct ColumnBlocks {
  FloatRef parts[kMaxParts];
  int64_t first_column[kMaxParts + 1];
  int count;
};

__global__ void column_blocks_kernel(ColumnBlocks blocks, FloatRef packed, int64_t rows, bool to_packed) {
  const int64_t width = blocks.first_column[blocks.count], n = rows * width;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / width, column = i % width;
    int part = 0;
    while (column >= blocks.first_column[part + 1]) ++part;
    const int64_t part_width = blocks.first_column[part + 1] - blocks.first_column[part];
    const int64_t j = row * part_width + column - blocks.first_column[part];
    if (to_packed) packed.store(i, blocks.parts[part].load(j));
    else blocks.parts[part].store(j, packed.load(i));
  }
}

void copy_column_blocks(const char* op, const Tensor& packed, const std::vector<Tensor>& parts, bool to_packed) {
  const std::vector<int64_t> widths = column_block_widths(op, packed, parts);
  T6_CHECK(parts.size() <= size_t(kMaxParts), op, ": ", parts.size(), " parts, at most ", kMaxParts);
  ColumnBlocks blocks{};
  blocks.count = int(parts.size());
  for (int i = 0; i < blocks.count; ++i) {
    blocks.parts[i] = float_ref(op, parts[i]);
    blocks.first_column[i + 1] = blocks.first_column[i] + widths[i];
  }
  const FloatRef packed_ref = float_ref(op, packed);
  const int64_t rows = matrix_rows(packed), n = packed.numel();
  if (n == 0) return;
  T6_LAUNCH(column_blocks_kernel, grid_for(n, kThreads), kThreads, 0, cuda_context().stream())(blocks, packed_ref, rows,
                                                                                            to_packed);
  T6_CUDA_CHECK_LAUNCH("column_blocks_kernel");
}

}  // namespace

void split_columns(const std::vector<Tensor>& parts, const Tensor& packed) {
  copy_column_blocks("split_columns", packed, parts, false);
}

void pack_columns(Tensor packed, const std::vector<Tensor>& parts) {
  copy_column_blocks("pack_columns", packed, parts, true);
}

}  // namespace t6::ops::cuda
