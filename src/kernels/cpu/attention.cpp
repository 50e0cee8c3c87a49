// Causal softmax attention, exact (no approximation), with the log-sum-exp of each score row kept
// for backward, which recomputes the probabilities instead of storing the T×T matrix.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

namespace {

struct AttentionDims {
  int64_t B, T, H, Hkv, D;
};

AttentionDims check_dims(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& y, const Tensor& lse,
                         const HeadMap& heads) {
  T6_CHECK(q.ndim() == 4 && k.ndim() == 4, op, ": q and k must be (B, T, H, D)");
  AttentionDims dims{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3)};
  require_same_shape(op, k, v);
  require_same_shape(op, y, q);
  T6_CHECK(k.size(0) == dims.B && k.size(1) == dims.T && k.size(3) == dims.D, op, ": k ", k.shape().to_string(),
           " does not fit q ", q.shape().to_string());
  T6_CHECK(lse.numel() == dims.B * dims.H * dims.T, op, ": lse must be (B, H, T)");
  for (int64_t h = 0; h < dims.H; ++h) {
    const int64_t kv = (heads.first_head + h) / heads.group_size - heads.first_kv_head;
    T6_CHECK(kv >= 0 && kv < dims.Hkv, op, ": head ", h, " maps to KV head ", kv, " of ", dims.Hkv);
  }
  return dims;
}

int64_t kv_head_of(const HeadMap& heads, int64_t h) { return (heads.first_head + h) / heads.group_size - heads.first_kv_head; }

template <class T>
T dot(const T* a, const T* b, int64_t n) {
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

template <class T>
void axpy(T* y, T alpha, const T* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

template <class T>
void forward(Tensor y, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v, const HeadMap& heads) {
  const AttentionDims s = check_dims("attention_forward", q, k, v, y, lse, heads);
  const T scale = T(1) / std::sqrt(T(s.D));
#pragma omp parallel
  {
    std::vector<T> scores(s.T);
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < s.B; ++b) {
      for (int64_t h = 0; h < s.H; ++h) {
        const int64_t kv = kv_head_of(heads, h);
        for (int64_t t = 0; t < s.T; ++t) {
          const T* q_row = q.data<T>() + ((b * s.T + t) * s.H + h) * s.D;
          T max_score = -std::numeric_limits<T>::infinity();
          for (int64_t j = 0; j <= t; ++j) {
            scores[j] = dot(q_row, k.data<T>() + ((b * s.T + j) * s.Hkv + kv) * s.D, s.D) * scale;
            max_score = std::max(max_score, scores[j]);
          }
          T sum = 0;
          for (int64_t j = 0; j <= t; ++j) {
            scores[j] = std::exp(scores[j] - max_score);
            sum += scores[j];
          }
          T* y_row = y.data<T>() + ((b * s.T + t) * s.H + h) * s.D;
          for (int64_t i = 0; i < s.D; ++i) y_row[i] = 0;
          for (int64_t j = 0; j <= t; ++j) axpy(y_row, scores[j] / sum, v.data<T>() + ((b * s.T + j) * s.Hkv + kv) * s.D, s.D);
          lse.data<T>()[(b * s.H + h) * s.T + t] = max_score + std::log(sum);
        }
      }
    }
  }
}

template <class T>
void backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dy, const Tensor& q, const Tensor& k, const Tensor& v,
              const Tensor& y, const Tensor& lse, const HeadMap& heads) {
  const AttentionDims s = check_dims("attention_backward", q, k, v, y, lse, heads);
  require_same_shape("attention_backward", dq, q);
  require_same_shape("attention_backward", dk, k);
  require_same_shape("attention_backward", dv, v);
  require_same_shape("attention_backward", dy, y);
  const T scale = T(1) / std::sqrt(T(s.D));
  const int64_t row = s.D;
  // Parallel over (batch, KV head): dk and dv of a KV head collect from all its query heads, so
  // each is owned by one thread.
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t kv = 0; kv < s.Hkv; ++kv) {
      for (int64_t j = 0; j < s.T; ++j) {
        T* dk_row = dk.data<T>() + ((b * s.T + j) * s.Hkv + kv) * row;
        T* dv_row = dv.data<T>() + ((b * s.T + j) * s.Hkv + kv) * row;
        for (int64_t i = 0; i < row; ++i) dk_row[i] = dv_row[i] = 0;
      }
      for (int64_t h = 0; h < s.H; ++h) {
        if (kv_head_of(heads, h) != kv) continue;
        for (int64_t t = 0; t < s.T; ++t) {
          const int64_t q_offset = ((b * s.T + t) * s.H + h) * row;
          const T* q_row = q.data<T>() + q_offset;
          const T* dy_row = dy.data<T>() + q_offset;
          T* dq_row = dq.data<T>() + q_offset;
          for (int64_t i = 0; i < row; ++i) dq_row[i] = 0;
          const T row_lse = lse.data<T>()[(b * s.H + h) * s.T + t];
          const T dy_dot_y = dot(dy_row, y.data<T>() + q_offset, row);
          for (int64_t j = 0; j <= t; ++j) {
            const int64_t kv_offset = ((b * s.T + j) * s.Hkv + kv) * row;
            const T* k_row = k.data<T>() + kv_offset;
            const T probability = std::exp(dot(q_row, k_row, row) * scale - row_lse);
            axpy(dv.data<T>() + kv_offset, probability, dy_row, row);
            const T dscore = probability * (dot(dy_row, v.data<T>() + kv_offset, row) - dy_dot_y) * scale;
            axpy(dq_row, dscore, k_row, row);
            axpy(dk.data<T>() + kv_offset, dscore, q_row, row);
          }
        }
      }
    }
  }
}

}  // namespace

void attention_forward(Tensor y, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v, HeadMap heads) {
  for_float_type("attention_forward", {&y, &lse, &q, &k, &v},
                 [&](auto zero) { forward<decltype(zero)>(y, lse, q, k, v, heads); });
}

void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dy, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& y, const Tensor& lse, HeadMap heads) {
  for_float_type("attention_backward", {&dq, &dk, &dv, &dy, &q, &k, &v, &y, &lse},
                 [&](auto zero) { backward<decltype(zero)>(dq, dk, dv, dy, q, k, v, y, lse, heads); });
}

}  // namespace t6::ops
