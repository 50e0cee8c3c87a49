// Attention of one new token (query row) over positions [0, length) of one sequence's cache, in
// cache blocks with a running maximum and sum per head in fp32 (online softmax), scale 1/sqrt(D).
// Heads [first_head, end_head) only, so callers can split one row's heads over threads.
//   - attend_kv_cache: MHA/GQA over cached k̃ and v (query head h reads KV head h / group_size).
//   - attend_factor_cache: TPA and TPA-KVonly over the factor cache A_k, B̃_k, A_v, B_v
//     (docs/MODEL.md 1.4). The factorised order never forms K or V; the materialised order builds each
//     block's k and v from the factors and attends to them as plain attention does.
// Each call works in the caller's `scratch` (flat F32, at least the *_scratch_elements below): the
// decoder plans one such slice per thread in its arena, so a decode step allocates nothing.
#pragma once
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace t6::infer {

enum class TpaDecodeOrder { factorised, materialised };
const char* tpa_decode_order_name(TpaDecodeOrder order);
TpaDecodeOrder tpa_decode_order_from_name(const std::string& name);  // throws naming the accepted values

struct HeadRange {
  int64_t first_head = 0, end_head = 0;
};

// Scratch elements of one call over `heads` heads of keys `width` numbers wide (D, or MLA's latent
// key Ckv + Dr) in blocks of `block_tokens` positions: each head's running maximum and sum,
// accumulator and block scores; the materialised order adds the block's k and v and the query.
int64_t kv_cache_scratch_elements(int64_t heads, int64_t width, int64_t block_tokens);
int64_t factor_cache_scratch_elements(int64_t heads, int64_t head_dim, int64_t block_tokens, TpaDecodeOrder order);

// y (H, D) rows of the range = attention of q (H, D) over k, v (max_context, Hkv, D).
void attend_kv_cache(float* y, const float* q, const Tensor& k, const Tensor& v, int64_t length, int64_t group_size,
                     HeadRange heads, int64_t block_tokens, const Tensor& scratch);

// The query of a factor-cache attention: T6 gives its factors A_q (H, Rq) and B̃_q (Rq, D); KVonly a
// plain q̃ (H, D) (then A_q is null).
struct FactorQuery {
  const float* A_q = nullptr;
  const float* B_q = nullptr;
  int64_t q_rank = 0;
  const float* q = nullptr;
};
struct FactorCache {
  Tensor A_k, B_k, A_v, B_v;  // (max_context, H, R), (max_context, R, D), likewise for v
};
void attend_factor_cache(float* y, const FactorQuery& query, const FactorCache& cache, int64_t length,
                         HeadRange heads, int64_t block_tokens, TpaDecodeOrder order, const Tensor& scratch);

}  // namespace t6::infer
