// The device scratch (CudaContext::scratch) that the CUDA ops which need one take, so that a
// trainer can reserve the largest before its first step (CudaContext::reserve_scratch) and no step
// allocates. Plain C++.
#pragma once
#include <cstddef>
#include <cstdint>

namespace t6::ops::cuda {

// embedding_backward over `rows` token positions (sorting their ids).
size_t embedding_backward_scratch_bytes(int64_t rows);
// tensor_list_statistics over `tensors` tensors (per-block partial sums).
size_t tensor_list_statistics_scratch_bytes(size_t tensors);
// sum_of_squares over `tensors` tensors (the partials and the two statistics read back).
size_t sum_of_squares_scratch_bytes(size_t tensors);

}  // namespace t6::ops::cuda
