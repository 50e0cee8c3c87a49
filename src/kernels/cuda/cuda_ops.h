// The CUDA twins of the ops in kernels/ops.h, same names and signatures. Callers never use this
// header: each op of ops.h (defined in kernels/cpu/) hands tensors that live on a GPU to its twin
// here (T6_CUDA_TWIN in kernels/cpu/cpu_dispatch.h), so model, trainer and optimizer code never
// branch on the backend. Plain C++: the CPU files that dispatch include it.
//
// Precision (DESIGN.md): every tensor may be F32 or BF16 unless an op says otherwise; arithmetic,
// accumulation and statistics (rstd, row maxima and sums, lse, losses) are fp32. What an op adds
// to must be F32, and a BF16 one is an error: add's out, the norms' dx and dweight, dtable, a
// matmul's out with beta ≠ 0 (linear_backward's accumulated dx and dW), the cross-entropy logits. Token ids are I32
// device tensors. Kernels run on the calling thread's stream (kernels/cuda/cuda_context.h) and do
// not synchronise, except the ops that return a host value (sum_of_squares, once per call).
#pragma once
#include "kernels/ops.h"

namespace t6::ops::cuda {

void matmul(Tensor out, const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b, float alpha, float beta);
void add(Tensor out, const Tensor& a, const Tensor& b);
double sum_of_squares(const std::vector<Tensor>& tensors);
void fill_zero(Tensor x);
void cast(Tensor out, const Tensor& x);
void split_columns(const std::vector<Tensor>& parts, const Tensor& packed);
void pack_columns(Tensor packed, const std::vector<Tensor>& parts);
void tensor_list_statistics(Tensor statistics, const std::vector<Tensor>& tensors);
void sum_into(Tensor total, const Tensor& x, double scale, bool accumulate);
void copy(Tensor dst, const Tensor& src);
void wait_for_ops();

void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& table, VocabSlice slice);
void embedding_backward(Tensor dtable, const Tensor& dout, const Tensor& tokens, VocabSlice slice);

void rmsnorm_forward(Tensor out, Tensor rstd, const Tensor& x);
void rmsnorm_backward(Tensor dx, const Tensor& dout, const Tensor& x, const Tensor& rstd);
void weighted_rmsnorm_forward(Tensor out, Tensor rstd, const Tensor& x, const Tensor& weight);
void weighted_rmsnorm_backward(Tensor dx, Tensor dweight, const Tensor& dout, const Tensor& x, const Tensor& rstd,
                               const Tensor& weight);

void rope_tables(Tensor cos, Tensor sin);
void rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t first_column);
void rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t first_column);

void tpa_contract_forward(Tensor out, const Tensor& A, const Tensor& factor_B);
void tpa_contract_backward(Tensor dA, Tensor dB, const Tensor& dout, const Tensor& A, const Tensor& factor_B);

void attention_forward(Tensor y, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v, HeadMap heads);
void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dy, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& y, const Tensor& lse, HeadMap heads);

void mla_split_kv_forward(Tensor k, Tensor v, const Tensor& kv, const Tensor& k_pe);
void mla_split_kv_backward(Tensor dkv, Tensor dk_pe, const Tensor& dk, const Tensor& dv);

// The fused path of tpa_rotary_attention_* (tpa_attention_fused.cu).
void tpa_attention_fused_forward(Tensor y, Tensor lse, const TpaFactors& factors, const Tensor& cos, const Tensor& sin,
                                 int64_t heads_per_block);
void tpa_attention_fused_backward(const TpaFactors& gradients, const Tensor& dy, const Tensor& y, const Tensor& lse,
                                  const TpaFactors& factors, const Tensor& cos, const Tensor& sin);

void kv_decode_attention(Tensor y, const Tensor& q, const Tensor& k, const Tensor& v, const DecodeRows& rows,
                         const DecodeWorkspace& workspace);
void tpa_decode_attention(Tensor y, const TpaDecodeQuery& query, const TpaFactorCache& cache, const DecodeRows& rows,
                          TpaDecodeOrder order, const DecodeWorkspace& workspace);
void decode_cache_write(Tensor cache, const Tensor& x, const DecodeRows& rows, bool transpose);

void swiglu_forward(Tensor out, const Tensor& a, const Tensor& b);
void swiglu_backward(Tensor da, Tensor db, const Tensor& dout, const Tensor& a, const Tensor& b);

void cross_entropy_exp_sum(Tensor local_max, Tensor sum_exp, Tensor target_logit, Tensor logits, const Tensor& targets,
                           VocabSlice slice);
void cross_entropy_rescale(Tensor sum_exp, const Tensor& local_max, const Tensor& row_max);
void cross_entropy_losses(Tensor losses, const Tensor& row_max, const Tensor& sum_exp, const Tensor& target_logit);
void cross_entropy_gradient(Tensor exp_logits, const Tensor& targets, const Tensor& local_max, const Tensor& row_max,
                            const Tensor& sum_exp, float dloss, VocabSlice slice);

void adamw_update(Tensor param, const Tensor& grad, Tensor m, Tensor v, const AdamWStep& hyper, Tensor param_bf16);

}  // namespace t6::ops::cuda
