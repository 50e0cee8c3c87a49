// decode_cache_write on the GPU (kernels/ops.h): one thread block per new row, its threads copying
// (or transposing) the row's entry to its slot and position, rounded to the cache's element type.
#include "core/cuda/cuda_check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/decode_rows.cuh"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/shape_checks.h"

namespace t6::ops::cuda {

namespace {

constexpr int kThreads = 128;

// Row r of the chunk: x's (a × b) entry to position length − 1 of its slot, transposed to (b × a) when asked.
__global__ void decode_cache_write_kernel(FloatRef cache, FloatRef x, int64_t max_context, int a, int b, bool transpose,
                                          DecodeRowChunk chunk) {
  const int r = blockIdx.x, entry = a * b;
  const int64_t at = (int64_t(chunk.slot[r]) * max_context + chunk.length[r] - 1) * entry;
  const int64_t from = int64_t(chunk.first + r) * entry;
  for (int e = threadIdx.x; e < entry; e += blockDim.x) {
    const int i = e / b, j = e % b;
    cache.store(at + (transpose ? j * a + i : e), x.load(from + e));
  }
}

}  // namespace

void decode_cache_write(Tensor cache, const Tensor& x, const DecodeRows& rows, bool transpose) {
  const char* op = "decode_cache_write";
  check_decode_cache_write(cache, x, rows, transpose);
  const FloatRef entries = float_ref(op, cache), values = float_ref(op, x);
  for_row_chunks(rows, 1, [&](const DecodeRowChunk& chunk) {
    T6_LAUNCH(decode_cache_write_kernel, unsigned(chunk.count), kThreads, 0, cuda_context().stream())(
        entries, values, cache.size(1), int(x.size(1)), int(x.size(2)), transpose, chunk);
    T6_CUDA_CHECK_LAUNCH("decode_cache_write_kernel");
  });
}

}  // namespace t6::ops::cuda
