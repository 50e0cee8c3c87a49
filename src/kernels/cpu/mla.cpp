// MLA on the CPU: keys and values from the expanded latent and the shared rotated key part.
#include "kernels/cpu/cpu_dispatch.h"
#include "kernels/ops.h"

namespace t6::ops {


void mla_split_kv_forward(Tensor k, Tensor v, const Tensor& kv, const Tensor& k_pe) {
  T6_CUDA_TWIN(k, mla_split_kv_forward(k, v, kv, k_pe));
  for_float_type(t6_twin_routed, "mla_split_kv_forward", {&k, &v, &kv, &k_pe}, [&](auto zero) {
    using T = decltype(zero);
    const SplitKvDims s = check_mla_split_kv("mla_split_kv_forward", k, v, kv, k_pe);
    const int64_t Dk = s.Dn + s.Dr;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      const T* pe = k_pe.data<T>() + n * s.Dr;
      for (int64_t h = 0; h < s.H; ++h) {
        const T* kv_row = kv.data<T>() + (n * s.H + h) * (s.Dn + s.Dv);
        T* k_row = k.data<T>() + (n * s.H + h) * Dk;
        T* v_row = v.data<T>() + (n * s.H + h) * s.Dv;
        for (int64_t j = 0; j < s.Dn; ++j) k_row[j] = kv_row[j];
        for (int64_t j = 0; j < s.Dr; ++j) k_row[s.Dn + j] = pe[j];
        for (int64_t j = 0; j < s.Dv; ++j) v_row[j] = kv_row[s.Dn + j];
      }
    }
  });
}

void mla_split_kv_backward(Tensor dkv, Tensor dk_pe, const Tensor& dk, const Tensor& dv) {
  T6_CUDA_TWIN(dkv, mla_split_kv_backward(dkv, dk_pe, dk, dv));
  for_float_type(t6_twin_routed, "mla_split_kv_backward", {&dkv, &dk_pe, &dk, &dv}, [&](auto zero) {
    using T = decltype(zero);
    const SplitKvDims s = check_mla_split_kv("mla_split_kv_backward", dk, dv, dkv, dk_pe);
    const int64_t Dk = s.Dn + s.Dr;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < s.N; ++n) {
      T* pe = dk_pe.data<T>() + n * s.Dr;
      for (int64_t j = 0; j < s.Dr; ++j) pe[j] = 0;
      for (int64_t h = 0; h < s.H; ++h) {
        T* kv_row = dkv.data<T>() + (n * s.H + h) * (s.Dn + s.Dv);
        const T* k_row = dk.data<T>() + (n * s.H + h) * Dk;
        const T* v_row = dv.data<T>() + (n * s.H + h) * s.Dv;
        for (int64_t j = 0; j < s.Dn; ++j) kv_row[j] = k_row[j];
        for (int64_t j = 0; j < s.Dr; ++j) pe[j] += k_row[s.Dn + j];
        for (int64_t j = 0; j < s.Dv; ++j) kv_row[s.Dn + j] = v_row[j];
      }
    }
  });
}

}  // namespace t6::ops
