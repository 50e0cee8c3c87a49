// The shape checks of the ops, shared by the CPU and CUDA backends so that both refuse the same
// mistakes with the same messages: matrices seen as (rows, last dim), equal shapes, one statistic
// per row, vocabulary slices, and the shapes of the TPA contraction and of attention.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/ops.h"

namespace t6::ops {

// Rows and columns of a tensor seen as a matrix (leading dims flattened).
inline int64_t matrix_cols(const Tensor& x) { return x.size(x.ndim() - 1); }
inline int64_t matrix_rows(const Tensor& x) { return x.numel() / matrix_cols(x); }

inline void require_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  T6_CHECK(a.shape() == b.shape(), op, ": shape ", a.shape().to_string(), " does not match ", b.shape().to_string());
}

inline void require_per_row(const char* op, int64_t rows, std::initializer_list<const Tensor*> statistics) {
  for (const Tensor* statistic : statistics)
    T6_CHECK(statistic->numel() == rows, op, ": one statistic per row expected (", rows, "), got ", statistic->numel());
}

struct VocabRange {
  int64_t first, vocab_size;
};

// The slice with vocab_size filled in (0 means: the local size, no split), checked to fit.
inline VocabRange checked_vocab_range(const char* op, const VocabSlice& slice, int64_t local_size) {
  const int64_t vocab_size = slice.vocab_size > 0 ? slice.vocab_size : local_size;
  T6_CHECK(slice.first_row >= 0 && slice.first_row + local_size <= vocab_size, op, ": vocabulary slice [",
           slice.first_row, ", ", slice.first_row + local_size, ") does not fit a vocabulary of ", vocab_size);
  return {slice.first_row, vocab_size};
}

// The widths W_i of split_columns' and pack_columns' parts: packed is (rows, W) and each part holds
// rows · W_i elements, the W_i adding up to W.
inline std::vector<int64_t> column_block_widths(const char* op, const Tensor& packed, const std::vector<Tensor>& parts) {
  T6_CHECK(!parts.empty(), op, ": no parts");
  const int64_t rows = matrix_rows(packed);
  std::vector<int64_t> widths;
  int64_t total = 0;
  for (const Tensor& part : parts) {
    T6_CHECK(rows > 0 && part.numel() % rows == 0, op, ": part ", part.shape().to_string(), " is not ", rows,
             " rows of packed ", packed.shape().to_string());
    widths.push_back(part.numel() / rows);
    total += widths.back();
  }
  T6_CHECK(total == matrix_cols(packed), op, ": the parts' widths add up to ", total, ", packed ",
           packed.shape().to_string(), " is ", matrix_cols(packed), " wide");
  return widths;
}

// out (B, T, H, D) = contraction of A (B, T, H, R) with B (B, T, R, D): N = B·T tokens.
struct ContractDims {
  int64_t N, H, R, D;
};

inline ContractDims check_contract(const char* op, const Tensor& out, const Tensor& A, const Tensor& factor_B) {
  T6_CHECK(out.ndim() == 4 && A.ndim() == 4 && factor_B.ndim() == 4, op, ": expected 4-d tensors");
  const ContractDims dims{out.size(0) * out.size(1), out.size(2), A.size(3), out.size(3)};
  T6_CHECK(A.size(0) * A.size(1) == dims.N && A.size(2) == dims.H, op, ": A ", A.shape().to_string(),
           " does not fit ", out.shape().to_string());
  T6_CHECK(factor_B.size(0) * factor_B.size(1) == dims.N && factor_B.size(2) == dims.R && factor_B.size(3) == dims.D,
           op, ": B ", factor_B.shape().to_string(), " does not fit A ", A.shape().to_string());
  return dims;
}

struct AttentionDims {
  int64_t B, T, H, Hkv, D, Dv;  // D: query/key width, Dv: value width (they differ in MLA)
};

// q (B, T, H, D), k (B, T, Hkv, D), v (B, T, Hkv, Dv), y (B, T, H, Dv), lse B·H·T elements, and every
// local head mapped to a KV head.
inline AttentionDims check_attention_dims(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                          const Tensor& y, const Tensor& lse, const HeadMap& heads) {
  T6_CHECK(q.ndim() == 4 && k.ndim() == 4 && v.ndim() == 4 && y.ndim() == 4, op, ": q, k, v and y must be (B, T, H, D)");
  AttentionDims dims{q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3)};
  T6_CHECK(k.size(0) == dims.B && k.size(1) == dims.T && k.size(3) == dims.D, op, ": k ", k.shape().to_string(),
           " does not fit q ", q.shape().to_string());
  T6_CHECK(v.size(0) == dims.B && v.size(1) == dims.T && v.size(2) == dims.Hkv, op, ": v ", v.shape().to_string(),
           " does not fit k ", k.shape().to_string());
  T6_CHECK(y.size(0) == dims.B && y.size(1) == dims.T && y.size(2) == dims.H && y.size(3) == dims.Dv, op, ": y ",
           y.shape().to_string(), " does not fit q ", q.shape().to_string(), " and v ", v.shape().to_string());
  T6_CHECK(lse.numel() == dims.B * dims.H * dims.T, op, ": lse must be (B, H, T)");
  for (int64_t h = 0; h < dims.H; ++h) {
    const int64_t kv = (heads.first_head + h) / heads.group_size - heads.first_kv_head;
    T6_CHECK(kv >= 0 && kv < dims.Hkv, op, ": head ", h, " maps to KV head ", kv, " of ", dims.Hkv);
  }
  return dims;
}

// The sizes of MLA's k/v split (ops.h, mla_split_kv_forward): N = B·T rows, Dn = kv width − Dv.
struct SplitKvDims {
  int64_t N, H, Dn, Dr, Dv;
};

inline SplitKvDims check_mla_split_kv(const char* op, const Tensor& k, const Tensor& v, const Tensor& kv, const Tensor& k_pe) {
  T6_CHECK(k.ndim() == 4 && v.ndim() == 4 && kv.ndim() == 4 && k_pe.ndim() == 4, op, ": expected (B, T, H, ·) tensors");
  const int64_t N = kv.size(0) * kv.size(1), H = kv.size(2), Dr = k_pe.size(3), Dv = v.size(3);
  const SplitKvDims dims{N, H, kv.size(3) - Dv, Dr, Dv};
  T6_CHECK(dims.Dn >= 0 && k.size(3) == dims.Dn + Dr && k_pe.size(2) == 1, op, ": k ", k.shape().to_string(), ", v ",
           v.shape().to_string(), " and k_pe ", k_pe.shape().to_string(), " do not fit kv ", kv.shape().to_string());
  for (const Tensor* tensor : {&k, &v, &k_pe})
    T6_CHECK(tensor->size(0) * tensor->size(1) == N && (tensor == &k_pe || tensor->size(2) == H), op, ": ",
             tensor->shape().to_string(), " does not fit kv ", kv.shape().to_string());
  return dims;
}

// ---- decode attention (ops.h, DecodeRows) ----------------------------------------------------------

// The rows' slots and lengths (host I64) fit the cache (slots, T, ·, ·), which holds F32 or BF16.
inline void check_decode_rows(const char* op, const DecodeRows& rows, const Tensor& cache_field, int64_t N) {
  T6_CHECK(rows.slot.dtype() == DType::I64 && rows.length.dtype() == DType::I64 && rows.slot.numel() == N &&
               rows.length.numel() == N && rows.block_tokens >= 1,
           op, ": expected I64 slots and lengths for ", N, " rows and a positive block size");
  T6_CHECK(rows.slot.device() == Device::CPU && rows.length.device() == Device::CPU, op,
           ": the rows' slots and lengths live in host memory");
  for (int64_t n = 0; n < N; ++n) {
    const int64_t slot = rows.slot.data<int64_t>()[n], length = rows.length.data<int64_t>()[n];
    T6_CHECK(slot >= 0 && slot < cache_field.size(0) && length >= 1 && length <= cache_field.size(1), op, ": row ", n,
             " reads positions [0, ", length, ") of slot ", slot, " of a cache of ", cache_field.size(0), " × ",
             cache_field.size(1));
  }
  T6_CHECK(cache_field.dtype() == DType::F32 || cache_field.dtype() == DType::BF16, op,
           ": the cache holds F32 or BF16, got ", dtype_name(cache_field.dtype()));
}

inline void check_decode_partials(const DecodeWorkspace& workspace, int64_t partial) {
  T6_CHECK(workspace.partials.dtype() == DType::F32 && workspace.partials.numel() >= kDecodePartialStates * partial,
           "decode attention: partial states of ", workspace.partials.numel(), " elements, ",
           kDecodePartialStates * partial, " needed");
}

// kv_decode_attention: N rows of H query heads of width Dk over kv_heads KV heads, values of width Dv.
struct KvDecodeDims {
  int64_t N, H, Dk, kv_heads, Dv;
};
inline KvDecodeDims check_kv_decode(const Tensor& y, const Tensor& q, const Tensor& k, const Tensor& v,
                                    const DecodeRows& rows) {
  T6_CHECK(q.ndim() == 3 && k.ndim() == 4 && v.ndim() == 4, "kv_decode_attention: shapes do not match");
  const KvDecodeDims dims{q.size(0), q.size(1), q.size(2), k.size(2), v.size(3)};
  check_decode_rows("kv_decode_attention", rows, k, dims.N);
  T6_CHECK(k.size(3) == dims.Dk && v.size(2) == dims.kv_heads && dims.H % dims.kv_heads == 0 &&
               y.numel() == dims.N * dims.H * dims.Dv && k.dtype() == v.dtype() && v.size(0) == k.size(0) &&
               v.size(1) == k.size(1),
           "kv_decode_attention: shapes do not match");
  return dims;
}

// tpa_decode_attention: N rows, H heads of width D, cache rank R, query rank Rq (0 for KVonly's q̃).
struct TpaDecodeDims {
  int64_t N, H, D, R, Rq;
};
inline TpaDecodeDims check_tpa_decode(const Tensor& y, const TpaDecodeQuery& query, const TpaFactorCache& cache,
                                      const DecodeRows& rows) {
  for (const Tensor* field : {&cache.A_k, &cache.B_k, &cache.A_v, &cache.B_v})
    T6_CHECK(field->ndim() == 4 && field->dtype() == cache.A_k.dtype() && field->size(0) == cache.A_k.size(0) &&
                 field->size(1) == cache.A_k.size(1),
             "tpa_decode_attention: the four cache fields must be (slots, T, ·, ·) of one element type");
  const bool factorised_query = !query.A_q.empty();
  TpaDecodeDims dims{};
  dims.R = cache.A_k.size(2), dims.H = cache.A_k.size(3), dims.D = cache.B_k.size(3);
  dims.N = factorised_query ? query.A_q.size(0) : query.q.size(0);
  dims.Rq = factorised_query ? query.A_q.size(2) : 0;
  check_decode_rows("tpa_decode_attention", rows, cache.A_k, dims.N);
  T6_CHECK(y.numel() == dims.N * dims.H * dims.D && cache.B_k.size(2) == dims.R && cache.A_v.size(2) == dims.R &&
               cache.A_v.size(3) == dims.H && cache.B_v.size(2) == dims.R && cache.B_v.size(3) == dims.D &&
               (factorised_query ? query.B_q.numel() == dims.N * dims.Rq * dims.D
                                 : query.q.numel() == dims.N * dims.H * dims.D),
           "tpa_decode_attention: shapes do not match");
  return dims;
}

// decode_cache_write: x (N, a, b) into a cache (slots, T, a, b), or (slots, T, b, a) transposed.
inline void check_decode_cache_write(const Tensor& cache, const Tensor& x, const DecodeRows& rows, bool transpose) {
  const char* op = "decode_cache_write";
  T6_CHECK(x.ndim() == 3 && cache.ndim() == 4, op, ": expected x (N, a, b) and a cache (slots, T, ·, ·)");
  check_decode_rows(op, rows, cache, x.size(0));
  const int64_t a = transpose ? x.size(2) : x.size(1), b = transpose ? x.size(1) : x.size(2);
  T6_CHECK(cache.size(2) == a && cache.size(3) == b && x.dtype() == DType::F32, op, ": F32 rows ",
           x.shape().to_string(), transpose ? " transposed" : "", " do not fit the cache ", cache.shape().to_string());
}

}  // namespace t6::ops
