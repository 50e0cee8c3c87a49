// TPA on the CPU: the factor → q/k/v contraction, and tpa_attention composed of that contraction
// and plain causal attention (the CUDA backend fuses the two on chip).
#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {
using namespace cpu;

void tpa_contract_forward(Tensor out, const Tensor& A, const Tensor& factor_B) {
  T6_CUDA_TWIN(out, tpa_contract_forward(out, A, factor_B));
  for_float_type(t6_twin_routed, "tpa_contract_forward", {&out, &A, &factor_B}, [&](auto zero) {
    using T = decltype(zero);
    const ContractDims s = check_contract("tpa_contract_forward", out, A, factor_B);
    const T inv_rank = T(1) / T(s.R);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      const T* a = A.data<T>() + n * s.H * s.R;
      const T* b = factor_B.data<T>() + n * s.R * s.D;
      T* o = out.data<T>() + n * s.H * s.D;
      for (int64_t h = 0; h < s.H; ++h) {
        T* o_row = o + h * s.D;
        for (int64_t j = 0; j < s.D; ++j) o_row[j] = 0;
        for (int64_t r = 0; r < s.R; ++r) {
          const T weight = a[h * s.R + r];
          const T* b_row = b + r * s.D;
#pragma omp simd
          for (int64_t j = 0; j < s.D; ++j) o_row[j] += weight * b_row[j];
        }
        for (int64_t j = 0; j < s.D; ++j) o_row[j] *= inv_rank;
      }
    }
  });
}

void tpa_contract_backward(Tensor dA, Tensor dB, const Tensor& dout, const Tensor& A, const Tensor& factor_B) {
  T6_CUDA_TWIN(dA, tpa_contract_backward(dA, dB, dout, A, factor_B));
  require_same_shape("tpa_contract_backward", dA, A);
  require_same_shape("tpa_contract_backward", dB, factor_B);
  for_float_type(t6_twin_routed, "tpa_contract_backward", {&dA, &dB, &dout, &A, &factor_B}, [&](auto zero) {
    using T = decltype(zero);
    const ContractDims s = check_contract("tpa_contract_backward", dout, A, factor_B);
    const T inv_rank = T(1) / T(s.R);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      const T* a = A.data<T>() + n * s.H * s.R;
      const T* b = factor_B.data<T>() + n * s.R * s.D;
      const T* g = dout.data<T>() + n * s.H * s.D;
      T* da = dA.data<T>() + n * s.H * s.R;
      T* db = dB.data<T>() + n * s.R * s.D;
      for (int64_t i = 0; i < s.R * s.D; ++i) db[i] = 0;
      for (int64_t h = 0; h < s.H; ++h) {
        const T* g_row = g + h * s.D;
        for (int64_t r = 0; r < s.R; ++r) {
          const T* b_row = b + r * s.D;
          T sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < s.D; ++j) sum += g_row[j] * b_row[j];
          da[h * s.R + r] = sum * inv_rank;
          const T weight = a[h * s.R + r] * inv_rank;
          T* db_row = db + r * s.D;
#pragma omp simd
          for (int64_t j = 0; j < s.D; ++j) db_row[j] += weight * g_row[j];
        }
      }
    }
  });
}

int64_t tpa_attention_workspace_elements(int64_t B, int64_t T, int64_t H, int64_t D) {
  return 6 * B * T * H * D + attention_scratch_elements(T, true);
}

namespace {
// q, k, v (and in backward dq, dk, dv) laid out one after another in the workspace.
Tensor workspace_slot(const Tensor& workspace, int slot, const Tensor& like_y) {
  const int64_t elements = like_y.numel();
  T6_CHECK(workspace.numel() >= (slot + 1) * elements, "tpa_attention: workspace too small");
  return Tensor(static_cast<char*>(workspace.raw()) + slot * elements * int64_t(dtype_size(workspace.dtype())),
                like_y.shape(), workspace.dtype(), workspace.device());
}
// Attention's score scratch, after the six q/k/v slots.
Tensor attention_scratch_slot(const Tensor& workspace, const Tensor& like_y) {
  const int64_t elements = attention_scratch_elements(like_y.size(1), true);
  T6_CHECK(workspace.numel() >= 6 * like_y.numel() + elements, "tpa_attention: workspace too small");
  return Tensor(static_cast<char*>(workspace.raw()) + 6 * like_y.numel() * int64_t(dtype_size(workspace.dtype())),
                {elements}, workspace.dtype(), workspace.device());
}
}  // namespace

void tpa_attention_forward(Tensor y, Tensor lse, const TpaFactors& f, Tensor workspace) {
  Tensor q = workspace_slot(workspace, 0, y), k = workspace_slot(workspace, 1, y), v = workspace_slot(workspace, 2, y);
  tpa_contract_forward(q, f.A_q, f.B_q);
  tpa_contract_forward(k, f.A_k, f.B_k);
  tpa_contract_forward(v, f.A_v, f.B_v);
  attention_forward(y, lse, q, k, v, attention_scratch_slot(workspace, y));
}

void tpa_attention_backward(const TpaFactors& grads, const Tensor& dy, const Tensor& y, const Tensor& lse,
                            const TpaFactors& f, Tensor workspace) {
  // q, k, v are rebuilt from the factors: only the factors are kept between forward and backward.
  Tensor q = workspace_slot(workspace, 0, y), k = workspace_slot(workspace, 1, y), v = workspace_slot(workspace, 2, y);
  Tensor dq = workspace_slot(workspace, 3, y), dk = workspace_slot(workspace, 4, y), dv = workspace_slot(workspace, 5, y);
  tpa_contract_forward(q, f.A_q, f.B_q);
  tpa_contract_forward(k, f.A_k, f.B_k);
  tpa_contract_forward(v, f.A_v, f.B_v);
  attention_backward(dq, dk, dv, dy, q, k, v, y, lse, attention_scratch_slot(workspace, y));
  tpa_contract_backward(grads.A_q, grads.B_q, dq, f.A_q, f.B_q);
  tpa_contract_backward(grads.A_k, grads.B_k, dk, f.A_k, f.B_k);
  tpa_contract_backward(grads.A_v, grads.B_v, dv, f.A_v, f.B_v);
}

}  // namespace t6::ops
