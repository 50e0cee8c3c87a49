// The vocab-parallel cross-entropy passes of ops.h on the GPU, over fp32 (or bf16) logit chunks:
// one block per row for the passes over the vocabulary (maximum, exp in place and the sum in
// double, in a fixed order), one thread per row for the per-row statistics.
#include "core/cuda/cuda_check.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_tensor.cuh"
#include "kernels/cuda/launch.cuh"

namespace t6::ops::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void exp_sum_kernel(FloatRef local_max, FloatRef sum_exp, FloatRef target_logit, FloatRef logits,
                               const int32_t* targets, int64_t vocab, int64_t first) {
  const int64_t n = blockIdx.x, row = n * vocab;
  const int64_t target = int64_t(targets[n]) - first;
  if (threadIdx.x == 0) target_logit.store(n, target >= 0 && target < vocab ? logits.load(row + target) : 0.0f);
  float largest = -FLT_MAX;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) largest = fmaxf(largest, logits.load(row + j));
  largest = block_max(largest);  // its barriers also order the target read before the overwrite
  double sum = 0;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float value = expf(logits.load(row + j) - largest);
    logits.store(row + j, value);
    sum += value;
  }
  sum = block_sum(sum);
  if (threadIdx.x == 0) {
    local_max.store(n, largest);
    sum_exp.store(n, float(sum));
  }
}

__global__ void rescale_kernel(FloatRef sum_exp, FloatRef local_max, FloatRef row_max, int64_t rows) {
  const int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (n < rows) sum_exp.store(n, sum_exp.load(n) * expf(local_max.load(n) - row_max.load(n)));
}

__global__ void losses_kernel(FloatRef losses, FloatRef row_max, FloatRef sum_exp, FloatRef target_logit, int64_t rows) {
  const int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (n < rows)
    losses.store(n, float(double(row_max.load(n)) + log(double(sum_exp.load(n))) - double(target_logit.load(n))));
}

__global__ void gradient_kernel(FloatRef exp_logits, const int32_t* targets, FloatRef local_max, FloatRef row_max,
                                FloatRef sum_exp, float dloss, int64_t vocab, int64_t first) {
  const int64_t n = blockIdx.x, row = n * vocab;
  const float factor =
      float(double(dloss) * exp(double(local_max.load(n)) - double(row_max.load(n))) / double(sum_exp.load(n)));
  const int64_t target = int64_t(targets[n]) - first;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float scaled = exp_logits.load(row + j) * factor;
    exp_logits.store(row + j, j == target ? scaled - dloss : scaled);
  }
}

}  // namespace

void cross_entropy_exp_sum(Tensor local_max, Tensor sum_exp, Tensor target_logit, Tensor logits, const Tensor& targets,
                           VocabSlice slice) {
  const char* op = "cross_entropy_exp_sum";
  const int64_t vocab = matrix_cols(logits), rows = matrix_rows(logits);
  require_per_row(op, rows, {&local_max, &sum_exp, &target_logit});
  const VocabRange range = checked_vocab_range(op, slice, vocab);
  const int32_t* ids = token_ids(op, targets, rows);
  if (rows == 0) return;
  T6_LAUNCH(exp_sum_kernel, unsigned(rows), kThreads, 0, cuda_context().stream())(
      float_ref(op, local_max), float_ref(op, sum_exp), float_ref(op, target_logit), float_ref(op, logits), ids, vocab,
      range.first);
  T6_CUDA_CHECK_LAUNCH("exp_sum_kernel");
}

void cross_entropy_rescale(Tensor sum_exp, const Tensor& local_max, const Tensor& row_max) {
  const char* op = "cross_entropy_rescale";
  const int64_t rows = sum_exp.numel();
  require_per_row(op, rows, {&local_max, &row_max});
  if (rows == 0) return;
  T6_LAUNCH(rescale_kernel, grid_for(rows, kThreads), kThreads, 0, cuda_context().stream())(
      float_ref(op, sum_exp), float_ref(op, local_max), float_ref(op, row_max), rows);
  T6_CUDA_CHECK_LAUNCH("rescale_kernel");
}

void cross_entropy_losses(Tensor losses, const Tensor& row_max, const Tensor& sum_exp, const Tensor& target_logit) {
  const char* op = "cross_entropy_losses";
  const int64_t rows = losses.numel();
  require_per_row(op, rows, {&row_max, &sum_exp, &target_logit});
  if (rows == 0) return;
  T6_LAUNCH(losses_kernel, grid_for(rows, kThreads), kThreads, 0, cuda_context().stream())(
      float_ref(op, losses), float_ref(op, row_max), float_ref(op, sum_exp), float_ref(op, target_logit), rows);
  T6_CUDA_CHECK_LAUNCH("losses_kernel");
}

void cross_entropy_gradient(Tensor exp_logits, const Tensor& targets, const Tensor& local_max, const Tensor& row_max,
                            const Tensor& sum_exp, float dloss, VocabSlice slice) {
  const char* op = "cross_entropy_gradient";
  const int64_t vocab = matrix_cols(exp_logits), rows = matrix_rows(exp_logits);
  require_per_row(op, rows, {&local_max, &row_max, &sum_exp});
  const VocabRange range = checked_vocab_range(op, slice, vocab);
  const int32_t* ids = token_ids(op, targets, rows);
  if (rows == 0) return;
  T6_LAUNCH(gradient_kernel, unsigned(rows), kThreads, 0, cuda_context().stream())(
      float_ref(op, exp_logits), ids, float_ref(op, local_max), float_ref(op, row_max), float_ref(op, sum_exp), dloss,
      vocab, range.first);
  T6_CUDA_CHECK_LAUNCH("gradient_kernel");
}

}  // namespace t6::ops::cuda
