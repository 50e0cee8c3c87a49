// Vocab-parallel embedding on the GPU. Forward: one thread per output element (zero for ids of
// another rank's slice). Backward without float atomics: the positions are sorted by token id
// (CUB's radix sort is stable, so equal ids keep position order), then one block per distinct id
// adds that id's gradient rows in position order, the order of the CPU twin, and every run
// repeats bit for bit.
#include <cub/device/device_radix_sort.cuh>

#include "core/cuda/cuda_check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"

namespace t6::ops::cuda {

namespace {

__global__ void embedding_forward_kernel(FloatRef out, const int32_t* ids, FloatRef table, int64_t rows, int64_t d,
                                         int64_t first, int64_t local_rows) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < rows * d; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = e / d, j = e % d, row = int64_t(ids[n]) - first;
    out.store(e, row >= 0 && row < local_rows ? table.load(row * d + j) : 0.0f);
  }
}

__global__ void positions_kernel(int32_t* positions, int64_t rows) {
  for (int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; n < rows; n += int64_t(gridDim.x) * blockDim.x)
    positions[n] = int32_t(n);
}

// Block b handles sorted position b if it starts a run of equal ids.
__global__ void embedding_backward_kernel(FloatRef dtable, FloatRef dout, const int32_t* sorted_ids,
                                          const int32_t* sorted_positions, int64_t rows, int64_t d, int64_t first,
                                          int64_t local_rows) {
  const int64_t start = blockIdx.x;
  const int32_t id = sorted_ids[start];
  if (start > 0 && sorted_ids[start - 1] == id) return;
  const int64_t row = int64_t(id) - first;
  if (row < 0 || row >= local_rows) return;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    float sum = dtable.load(row * d + j);
    for (int64_t s = start; s < rows && sorted_ids[s] == id; ++s) sum += dout.load(int64_t(sorted_positions[s]) * d + j);
    dtable.store(row * d + j, sum);
  }
}

size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace

void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& table, VocabSlice slice) {
  const char* op = "embedding_forward";
  const int64_t d = matrix_cols(table), rows = matrix_rows(out), local_rows = matrix_rows(table);
  T6_CHECK(matrix_cols(out) == d, op, ": width mismatch");
  const VocabRange range = checked_vocab_range(op, slice, local_rows);
  const int32_t* ids = token_ids(op, tokens, rows);
  if (rows == 0) return;
  T6_LAUNCH(embedding_forward_kernel, grid_for(rows * d, 256), 256, 0, cuda_context().stream())(
      float_ref(op, out), ids, float_ref(op, table), rows, d, range.first, local_rows);
  T6_CUDA_CHECK_LAUNCH("embedding_forward_kernel");
}

void embedding_backward(Tensor dtable, const Tensor& dout, const Tensor& tokens, VocabSlice slice) {
  const char* op = "embedding_backward";
  const int64_t d = matrix_cols(dtable), rows = matrix_rows(dout), local_rows = matrix_rows(dtable);
  T6_CHECK(matrix_cols(dout) == d, op, ": width mismatch");
  const VocabRange range = checked_vocab_range(op, slice, local_rows);
  const int32_t* ids = token_ids(op, tokens, rows);
  if (rows == 0) return;
  T6_CHECK(rows < (int64_t(1) << 31), op, ": more than 2^31 positions");
  CudaContext& context = cuda_context();
  size_t sort_bytes = 0;
  T6_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, ids, static_cast<int32_t*>(nullptr),
                                                static_cast<int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                                int(rows)));
  const size_t list_bytes = aligned(size_t(rows) * sizeof(int32_t));
  char* scratch = static_cast<char*>(context.scratch(3 * list_bytes + aligned(sort_bytes)));
  int32_t* positions = reinterpret_cast<int32_t*>(scratch);
  int32_t* sorted_ids = reinterpret_cast<int32_t*>(scratch + list_bytes);
  int32_t* sorted_positions = reinterpret_cast<int32_t*>(scratch + 2 * list_bytes);
  T6_LAUNCH(positions_kernel, grid_for(rows, 256), 256, 0, context.stream())(positions, rows);
  T6_CUDA_CHECK_LAUNCH("positions_kernel");
  T6_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(scratch + 3 * list_bytes, sort_bytes, ids, sorted_ids, positions,
                                                sorted_positions, int(rows), 0, int(sizeof(int32_t) * 8),
                                                context.stream()));
  T6_LAUNCH(embedding_backward_kernel, unsigned(rows), 128, 0, context.stream())(
      float_ref(op, dtable), float_ref(op, dout), sorted_ids, sorted_positions, rows, d, range.first, local_rows);
  T6_CUDA_CHECK_LAUNCH("embedding_backward_kernel");
}

}  // namespace t6::ops::cuda
