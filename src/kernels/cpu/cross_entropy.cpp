// Cross-entropy in the passes of ops.h, so that a vocabulary split over TP ranks needs only two
// small reductions per row. One exp per logit: pass 1 finds the row maximum and exponentiates while
// the row is in cache, and the gradient reuses the exps.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/cpu/vector_exp.h"
#include "kernels/cpu/vocab_slice.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

namespace {

// Pass 1 over one fp32 row: its maximum, then exp(x − max) in place, summed in double. The hot loop
// of the step after the GEMMs: built for AVX2 as well as the baseline, chosen when the library is
// loaded, so the build stays portable.
__attribute__((target_clones("avx2", "default"))) float exp_row(float* row, int64_t count, double* sum) {
  float largest = row[0];
  for (int64_t j = 1; j < count; ++j) largest = row[j] > largest ? row[j] : largest;
  for (int64_t j = 0; j < count; ++j) row[j] = vector_exp(row[j] - largest);
  double total = 0;
#pragma omp simd reduction(+ : total)
  for (int64_t j = 0; j < count; ++j) total += double(row[j]);
  *sum = total;
  return largest;
}

double exp_row(double* row, int64_t count, double* sum) {
  double largest = row[0];
  for (int64_t j = 1; j < count; ++j) largest = std::max(largest, row[j]);
  double total = 0;
  for (int64_t j = 0; j < count; ++j) total += row[j] = std::exp(row[j] - largest);
  *sum = total;
  return largest;
}

}  // namespace

void cross_entropy_exp_sum(Tensor local_max, Tensor sum_exp, Tensor target_logit, Tensor logits, const Tensor& targets,
                           VocabSlice slice) {
  T6_CUDA_TWIN(logits, cross_entropy_exp_sum(local_max, sum_exp, target_logit, logits, targets, slice));
  for_float_type(t6_twin_routed, "cross_entropy_exp_sum", {&local_max, &sum_exp, &target_logit, &logits}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t vocab = matrix_cols(logits), rows = matrix_rows(logits);
    require_per_row("cross_entropy_exp_sum", rows, {&local_max, &sum_exp, &target_logit});
    const VocabRange range = checked_vocab_range("cross_entropy_exp_sum", slice, vocab);
    const int32_t* ids = checked_token_ids("cross_entropy_exp_sum", targets, rows, range.vocab_size);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < rows; ++n) {
      T* row = logits.data<T>() + n * vocab;
      const int64_t target = ids[n] - range.first;
      target_logit.data<T>()[n] = target >= 0 && target < vocab ? row[target] : T(0);
      double sum = 0;  // in double: the fp32 path sums up to 50k terms
      local_max.data<T>()[n] = exp_row(row, vocab, &sum);
      sum_exp.data<T>()[n] = T(sum);
    }
  });
}

void cross_entropy_rescale(Tensor sum_exp, const Tensor& local_max, const Tensor& row_max) {
  T6_CUDA_TWIN(sum_exp, cross_entropy_rescale(sum_exp, local_max, row_max));
  for_float_type(t6_twin_routed, "cross_entropy_rescale", {&sum_exp, &local_max, &row_max}, [&](auto zero) {
    using T = decltype(zero);
    require_per_row("cross_entropy_rescale", sum_exp.numel(), {&local_max, &row_max});
    for (int64_t n = 0; n < sum_exp.numel(); ++n)
      sum_exp.data<T>()[n] *= std::exp(local_max.data<T>()[n] - row_max.data<T>()[n]);
  });
}

void cross_entropy_losses(Tensor losses, const Tensor& row_max, const Tensor& sum_exp, const Tensor& target_logit) {
  T6_CUDA_TWIN(losses, cross_entropy_losses(losses, row_max, sum_exp, target_logit));
  for_float_type(t6_twin_routed, "cross_entropy_losses", {&losses, &row_max, &sum_exp, &target_logit}, [&](auto zero) {
    using T = decltype(zero);
    require_per_row("cross_entropy_losses", losses.numel(), {&row_max, &sum_exp, &target_logit});
    for (int64_t n = 0; n < losses.numel(); ++n)
      losses.data<T>()[n] = T(double(row_max.data<T>()[n]) + std::log(double(sum_exp.data<T>()[n])) -
                              double(target_logit.data<T>()[n]));
  });
}

void cross_entropy_gradient(Tensor exp_logits, const Tensor& targets, const Tensor& local_max, const Tensor& row_max,
                            const Tensor& sum_exp, float dloss, VocabSlice slice) {
  T6_CUDA_TWIN(exp_logits, cross_entropy_gradient(exp_logits, targets, local_max, row_max, sum_exp, dloss, slice));
  for_float_type(t6_twin_routed, "cross_entropy_gradient", {&exp_logits, &local_max, &row_max, &sum_exp}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t vocab = matrix_cols(exp_logits), rows = matrix_rows(exp_logits);
    require_per_row("cross_entropy_gradient", rows, {&local_max, &row_max, &sum_exp});
    const VocabRange range = checked_vocab_range("cross_entropy_gradient", slice, vocab);
    const int32_t* ids = checked_token_ids("cross_entropy_gradient", targets, rows, range.vocab_size);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < rows; ++n) {
      T* row = exp_logits.data<T>() + n * vocab;
      // softmax = exp(l − local_max) · exp(local_max − row_max) / sum_exp
      const T factor = T(double(dloss) * std::exp(double(local_max.data<T>()[n]) - double(row_max.data<T>()[n])) /
                         double(sum_exp.data<T>()[n]));
      for (int64_t j = 0; j < vocab; ++j) row[j] *= factor;
      const int64_t target = ids[n] - range.first;
      if (target >= 0 && target < vocab) row[target] -= T(dloss);
    }
  });
}

}  // namespace t6::ops
