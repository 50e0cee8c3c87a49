// Causal softmax attention, exact (no approximation), with the log-sum-exp of each score row kept
// for backward, which recomputes the probabilities instead of saving the T×T matrix.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

namespace {

int64_t kv_head_of(const HeadMap& heads, int64_t h) { return (heads.first_head + h) / heads.group_size - heads.first_kv_head; }

// Per (batch, head): the T×T score matrix through BLAS (full square, masked after: BLAS on the
// square is far faster than exact triangular loops), softmax in place, then P·V. Heads are visited
// one after another and BLAS threads each product, so dk and dv of a shared KV head accumulate
// without races, and one head's score matrices in the caller's scratch serve every head.
template <class T>
T* checked_scratch(const char* op, const Tensor& scratch, int64_t seq_len, bool backward) {
  const int64_t needed = attention_scratch_elements(seq_len, backward);
  T6_CHECK(scratch.numel() >= needed, op, ": scratch of ", scratch.numel(), " elements, ", needed, " needed for T = ",
           seq_len, " (ops::attention_scratch_elements)");
  return scratch.data<T>();
}

// One head's rows in q, k, v and y (or their gradients), and the strides between positions.
struct HeadOffsets {
  int64_t q, k, v, y;
  int64_t q_stride, k_stride, v_stride, y_stride;
};

HeadOffsets head_offsets(const AttentionDims& s, int64_t b, int64_t h, int64_t kv) {
  return {(b * s.T * s.H + h) * s.D, (b * s.T * s.Hkv + kv) * s.D, (b * s.T * s.Hkv + kv) * s.Dv,
          (b * s.T * s.H + h) * s.Dv, s.H * s.D, s.Hkv * s.D, s.Hkv * s.Dv, s.H * s.Dv};
}

template <class T>
void forward(Tensor y, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& scratch,
             const HeadMap& heads) {
  const AttentionDims s = check_attention_dims("attention_forward", q, k, v, y, lse, heads);
  const T scale = T(1) / std::sqrt(T(s.D));
  T* scores = checked_scratch<T>("attention_forward", scratch, s.T, false);
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t h = 0; h < s.H; ++h) {
      const HeadOffsets at = head_offsets(s, b, h, kv_head_of(heads, h));
      gemm(false, true, s.T, s.T, s.D, scale, q.data<T>() + at.q, at.q_stride, k.data<T>() + at.k, at.k_stride, T(0),
           scores, s.T);
      T* row_lse = lse.data<T>() + (b * s.H + h) * s.T;
#pragma omp parallel for schedule(static)
      for (int64_t t = 0; t < s.T; ++t) {
        T* row = scores + t * s.T;
        T max_score = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j <= t; ++j) max_score = std::max(max_score, row[j]);
        T sum = 0;
        for (int64_t j = 0; j <= t; ++j) sum += row[j] = std::exp(row[j] - max_score);
        const T inverse = T(1) / sum;
        for (int64_t j = 0; j <= t; ++j) row[j] *= inverse;
        for (int64_t j = t + 1; j < s.T; ++j) row[j] = 0;  // the causal mask
        row_lse[t] = max_score + std::log(sum);
      }
      gemm(false, false, s.T, s.Dv, s.T, T(1), scores, s.T, v.data<T>() + at.v, at.v_stride, T(0), y.data<T>() + at.y,
           at.y_stride);
    }
  }
}

template <class T>
void backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dy, const Tensor& q, const Tensor& k, const Tensor& v,
              const Tensor& y, const Tensor& lse, const Tensor& scratch, const HeadMap& heads) {
  const AttentionDims s = check_attention_dims("attention_backward", q, k, v, y, lse, heads);
  require_same_shape("attention_backward", dq, q);
  require_same_shape("attention_backward", dk, k);
  require_same_shape("attention_backward", dv, v);
  require_same_shape("attention_backward", dy, y);
  const T scale = T(1) / std::sqrt(T(s.D));
  T* probabilities = checked_scratch<T>("attention_backward", scratch, s.T, true);
  T* dscores = probabilities + s.T * s.T;
  std::fill(dk.data<T>(), dk.data<T>() + dk.numel(), T(0));
  std::fill(dv.data<T>(), dv.data<T>() + dv.numel(), T(0));
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t h = 0; h < s.H; ++h) {
      const HeadOffsets at = head_offsets(s, b, h, kv_head_of(heads, h));
      const T *q_head = q.data<T>() + at.q, *k_head = k.data<T>() + at.k;
      const T *dy_head = dy.data<T>() + at.y, *y_head = y.data<T>() + at.y;
      const T* row_lse = lse.data<T>() + (b * s.H + h) * s.T;
      // P is recomputed from the scores and the saved log-sum-exp.
      gemm(false, true, s.T, s.T, s.D, scale, q_head, at.q_stride, k_head, at.k_stride, T(0), probabilities, s.T);
      gemm(false, true, s.T, s.T, s.Dv, T(1), dy_head, at.y_stride, v.data<T>() + at.v, at.v_stride, T(0), dscores, s.T);
#pragma omp parallel for schedule(static)
      for (int64_t t = 0; t < s.T; ++t) {
        T* p = probabilities + t * s.T;
        T* ds = dscores + t * s.T;
        T dy_dot_y = 0;
        for (int64_t i = 0; i < s.Dv; ++i) dy_dot_y += dy_head[t * at.y_stride + i] * y_head[t * at.y_stride + i];
        for (int64_t j = 0; j <= t; ++j) {
          p[j] = std::exp(p[j] - row_lse[t]);
          ds[j] = p[j] * (ds[j] - dy_dot_y) * scale;
        }
        for (int64_t j = t + 1; j < s.T; ++j) p[j] = ds[j] = 0;
      }
      gemm(true, false, s.T, s.Dv, s.T, T(1), probabilities, s.T, dy_head, at.y_stride, T(1), dv.data<T>() + at.v,
           at.v_stride);
      gemm(false, false, s.T, s.D, s.T, T(1), dscores, s.T, k_head, at.k_stride, T(0), dq.data<T>() + at.q, at.q_stride);
      gemm(true, false, s.T, s.D, s.T, T(1), dscores, s.T, q_head, at.q_stride, T(1), dk.data<T>() + at.k, at.k_stride);
    }
  }
}

}  // namespace

int64_t attention_scratch_elements(int64_t T, bool backward) { return (backward ? 2 : 1) * T * T; }

void attention_forward(Tensor y, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v, Tensor scratch,
                       HeadMap heads) {
  T6_CUDA_TWIN(y, attention_forward(y, lse, q, k, v, heads));
  for_float_type(t6_twin_routed, "attention_forward", {&y, &lse, &q, &k, &v, &scratch},
                 [&](auto zero) { forward<decltype(zero)>(y, lse, q, k, v, scratch, heads); });
}

void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dy, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& y, const Tensor& lse, Tensor scratch, HeadMap heads) {
  T6_CUDA_TWIN(dq, attention_backward(dq, dk, dv, dy, q, k, v, y, lse, heads));
  for_float_type(t6_twin_routed, "attention_backward", {&dq, &dk, &dv, &dy, &q, &k, &v, &y, &lse, &scratch},
                 [&](auto zero) { backward<decltype(zero)>(dq, dk, dv, dy, q, k, v, y, lse, scratch, heads); });
}

}  // namespace t6::ops
