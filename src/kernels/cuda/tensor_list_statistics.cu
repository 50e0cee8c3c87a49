// Σ x² and the count of non-finite elements over a list of tensors (the gradient norm and the
// finite checks of a whole model) in one pass and without a host synchronisation, deterministic:
//   - the list travels in the kernels' arguments, kChunk tensors per launch, so nothing is copied
//     from the host (a pageable copy would synchronise) and no host buffer must outlive the call;
//   - each launch's grid is a function of the list's total element count only (up to kMaxBlocks,
//     fewer for a small model, whose step would otherwise be mostly idle threads); block j
//     grid-strides over every tensor of its chunk in list order, in double, and writes its partial
//     sums to its own slot (no atomics);
//   - one block then adds every slot in slot order (block_reduce.cuh) into the F64 statistics.
// The same list gives the same bits on every run (exact resume and repeatable runs need that).
#include <algorithm>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/scratch_needs.h"

namespace t6::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 528;          // 4 per multiprocessor of an H100/H200
constexpr int64_t kElementsPerThread = 16;  // at least, before the grid reaches kMaxBlocks
constexpr int kChunk = 64;    // tensors per launch: 64 · 17 bytes of arguments, well under 4 KiB

struct TensorChunk {
  const void* data[kChunk];
  int64_t count[kChunk];
  bool bf16[kChunk];
  int tensors;
};

// partials[2·block] = Σ x², partials[2·block + 1] = the number of NaN or ±inf elements.
__global__ void partial_statistics_kernel(TensorChunk chunk, double* partials) {
  double squares = 0, non_finite = 0;
  for (int t = 0; t < chunk.tensors; ++t) {
    const FloatRef x{const_cast<void*>(chunk.data[t]), chunk.bf16[t]};
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < chunk.count[t]; i += int64_t(gridDim.x) * blockDim.x) {
      const double value = x.load(i);
      squares += value * value;
      non_finite += isfinite(value) ? 0.0 : 1.0;
    }
  }
  squares = block_sum(squares);
  non_finite = block_sum(non_finite);
  if (threadIdx.x == 0) {
    partials[2 * blockIdx.x] = squares;
    partials[2 * blockIdx.x + 1] = non_finite;
  }
}

__global__ void total_statistics_kernel(const double* partials, int64_t slots, double* statistics) {
  double squares = 0, non_finite = 0;
  for (int64_t i = threadIdx.x; i < slots; i += blockDim.x) {
    squares += partials[2 * i];
    non_finite += partials[2 * i + 1];
  }
  squares = block_sum(squares);
  non_finite = block_sum(non_finite);
  if (threadIdx.x == 0) {
    statistics[0] = squares;
    statistics[1] = non_finite;
  }
}

// The same list always gets the same grid, so the same order of additions and the same bits.
int blocks_for(const std::vector<Tensor>& tensors) {
  int64_t elements = 0;
  for (const Tensor& x : tensors) elements += x.numel();
  const int64_t per_block = kThreads * kElementsPerThread;
  return int(std::clamp<int64_t>((elements + per_block - 1) / per_block, 1, kMaxBlocks));
}

}  // namespace

size_t tensor_list_statistics_scratch_bytes(size_t tensors) {
  const size_t launches = (tensors + kChunk - 1) / kChunk;
  return launches * kMaxBlocks * 2 * sizeof(double);
}

void tensor_list_statistics(Tensor statistics, const std::vector<Tensor>& tensors) {
  const char* op = "tensor_list_statistics";
  require_device(op, {&statistics});
  T6_CHECK(statistics.dtype() == DType::F64 && statistics.numel() == 2, op,
           ": statistics must be F64 with 2 elements, got ", statistics.shape().to_string(), " ",
           dtype_name(statistics.dtype()));
  // Every check before the first launch, so that a bad tensor leaves no work half queued.
  std::vector<FloatRef> refs;
  refs.reserve(tensors.size());
  for (const Tensor& x : tensors) refs.push_back(float_ref(op, x));
  CudaContext& context = cuda_context();
  double* partials = static_cast<double*>(context.scratch(tensor_list_statistics_scratch_bytes(tensors.size())));
  const int blocks = blocks_for(tensors);
  int64_t slots = 0;
  for (size_t first = 0; first < tensors.size(); first += kChunk) {
    TensorChunk chunk{};
    chunk.tensors = int(std::min(tensors.size() - first, size_t(kChunk)));
    for (int t = 0; t < chunk.tensors; ++t) {
      chunk.data[t] = refs[first + t].data;
      chunk.count[t] = tensors[first + t].numel();
      chunk.bf16[t] = refs[first + t].bf16;
    }
    double* chunk_partials = partials + 2 * slots;
    T6_LAUNCH(partial_statistics_kernel, unsigned(blocks), kThreads, 0, context.stream())(chunk, chunk_partials);
    T6_CUDA_CHECK_LAUNCH("partial_statistics_kernel");
    slots += blocks;
  }
  double* out = statistics.data<double>();
  T6_LAUNCH(total_statistics_kernel, 1, kThreads, 0, context.stream())(partials, slots, out);
  T6_CUDA_CHECK_LAUNCH("total_statistics_kernel");
}

size_t sum_of_squares_scratch_bytes(size_t tensors) {
  return tensor_list_statistics_scratch_bytes(tensors) + 2 * sizeof(double);
}

double sum_of_squares(const std::vector<Tensor>& tensors) {
  // The statistics in the scratch after the partials, read with one copy and one synchronisation.
  CudaContext& context = cuda_context();
  const size_t partial_bytes = tensor_list_statistics_scratch_bytes(tensors.size());
  char* scratch = static_cast<char*>(context.scratch(sum_of_squares_scratch_bytes(tensors.size())));
  const Tensor statistics(scratch + partial_bytes, {2}, DType::F64, Device::CUDA);
  tensor_list_statistics(statistics, tensors);
  double host[2] = {0, 0};
  // A copy into pageable memory returns once it is done: the one synchronisation.
  T6_CUDA_CHECK(cudaMemcpyAsync(host, statistics.raw(), sizeof host, cudaMemcpyDeviceToHost, context.stream()));
  return host[0];
}

}  // namespace t6::ops::cuda
