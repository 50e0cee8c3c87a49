#include <cmath>

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

namespace {
// Checks one loss and one valid I32 target id per row of logits; returns the ids.
const int32_t* checked_targets(const char* op, const Tensor& losses, const Tensor& logits, const Tensor& targets) {
  const int64_t rows = matrix_rows(logits), vocab = matrix_cols(logits);
  T6_CHECK(losses.numel() == rows, op, ": one loss per row expected");
  T6_CHECK(targets.dtype() == DType::I32 && targets.numel() == rows, op, ": expected ", rows, " I32 targets");
  const int32_t* ids = targets.data<int32_t>();
  for (int64_t n = 0; n < rows; ++n)
    T6_CHECK(ids[n] >= 0 && ids[n] < vocab, op, ": target id ", ids[n], " is outside the vocabulary of ", vocab);
  return ids;
}

template <class T>
T row_max(const T* row, int64_t vocab) {
  T max_logit = row[0];
  for (int64_t j = 1; j < vocab; ++j) max_logit = std::max(max_logit, row[j]);
  return max_logit;
}
}  // namespace

void cross_entropy_forward(Tensor losses, const Tensor& logits, const Tensor& targets) {
  for_float_type("cross_entropy_forward", {&losses, &logits}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t vocab = matrix_cols(logits), rows = matrix_rows(logits);
    const int32_t* ids = checked_targets("cross_entropy_forward", losses, logits, targets);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < rows; ++n) {
      const T* row = logits.data<T>() + n * vocab;
      const T max_logit = row_max(row, vocab);
      double sum = 0;  // in double: the fp32 path sums 50k terms
      for (int64_t j = 0; j < vocab; ++j) sum += double(std::exp(row[j] - max_logit));
      losses.data<T>()[n] = T(double(max_logit) + std::log(sum) - double(row[ids[n]]));
    }
  });
}

void cross_entropy_forward_backward(Tensor losses, Tensor logits, const Tensor& targets, float dloss) {
  for_float_type("cross_entropy_forward_backward", {&losses, &logits}, [&](auto zero) {
    using T = decltype(zero);
    const int64_t vocab = matrix_cols(logits), rows = matrix_rows(logits);
    const int32_t* ids = checked_targets("cross_entropy_forward_backward", losses, logits, targets);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < rows; ++n) {
      // One exp per logit: the row becomes exp(x − max), summed in double, then scaled to dloss·softmax.
      T* row = logits.data<T>() + n * vocab;
      const T max_logit = row_max(row, vocab);
      const T target_logit = row[ids[n]];
      double sum = 0;
      for (int64_t j = 0; j < vocab; ++j) sum += double(row[j] = std::exp(row[j] - max_logit));
      losses.data<T>()[n] = T(double(max_logit) + std::log(sum) - double(target_logit));
      const T factor = T(double(dloss) / sum);
      for (int64_t j = 0; j < vocab; ++j) row[j] *= factor;
      row[ids[n]] -= T(dloss);
    }
  });
}

}  // namespace t6::ops
