// The op set of t6: every computation of the model, its optimizer and its loss, declared once.
// Layers call only these. Shapes are given as (B, T, ...) with B·T = N rows; tensors are contiguous
// and row-major. The CPU backend (kernels/cpu/) is the readable fp32 reference and also accepts
// fp64 tensors, so finite-difference tests can check every backward in double precision.
//
// Conventions:
//   - "out" tensors are overwritten unless the parameter is named accumulate/beta.
//   - Backward functions take the forward's saved inputs and outputs and return input gradients.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace t6::ops {

// ---- linear algebra -------------------------------------------------------------------------
// out (M, N) = alpha · op(a) · op(b) + beta · out, with op(a) (M, K) and op(b) (K, N); a tensor of
// more than two dims is seen as (rows, last dim). A linear layer y = x·Wᵀ is matmul(y, x, W, false, true).
void matmul(Tensor out, const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b,
            float alpha = 1.0f, float beta = 0.0f);

// out = a + b (element-wise, any shape); out may alias a or b.
void add(Tensor out, const Tensor& a, const Tensor& b);
// Σ x² over every element of every tensor, in double, in one pass: the squared gradient norm of
// many parameters. The CUDA twin synchronises once for the whole list (tensor_list_statistics
// below leaves the sum on the device instead).
double sum_of_squares(const std::vector<Tensor>& tensors);
void fill_zero(Tensor x);
// out = x converted to out's element type (same shape): the fp32 → bf16 cast of a weight or an
// activation rounds to nearest even, as float_to_bf16_bits does.
void cast(Tensor out, const Tensor& x);

// ---- column blocks: several (N, W_i) matrices side by side in one (N, Σ W_i) ------------------
// packed (N, W) holds parts[i] in consecutive columns of each row, W = Σ W_i; a part of more dims is
// seen as (N, numel / N). TPA's factor maps run as one GEMM with packed as its output (and, in the
// backward, packed as its operand of factor gradients), while the TPA ops read and write the
// factors as contiguous tensors.
// split_columns writes every part from its columns; pack_columns writes packed from the parts. The
// CPU backend copies like types (F32, F64); the CUDA twins also convert between F32 and BF16,
// rounding as cast does (the fp32 factor gradients into the bf16 operand of the weight matmul).
void split_columns(const std::vector<Tensor>& parts, const Tensor& packed);
void pack_columns(Tensor packed, const std::vector<Tensor>& parts);

// ---- one pass over many tensors: the gradient norm and finite checks of a whole model ----------
// statistics (F64, 2) = {Σ x² over every element of every tensor, summed in double (on a GPU in a
// fixed order: the same bits every run); the number of elements that are NaN or ±inf}. statistics lives where the tensors live:
// on a GPU nothing synchronises, and the caller reads both values with the step's one copy.
// The tensors may differ in element type; an empty list gives {0, 0}.
void tensor_list_statistics(Tensor statistics, const std::vector<Tensor>& tensors);

// ---- step scalars: reductions into a tensor on the device, read once per step ----------------------
// total (F64, one element, on x's device) = scale · Σ x, plus total's old value when accumulate;
// summed in double in a fixed order (the same bits every run). Nothing waits for the device.
void sum_into(Tensor total, const Tensor& x, double scale, bool accumulate);
// dst ← src byte for byte (same dtype and element count), host → device, device → host or within
// one side, ordered with the ops before and after it. Between host and device it does not wait:
// the host side must be pinned memory (PinnedHostBuffer) and is ready after wait_for_ops().
void copy(Tensor dst, const Tensor& src);
// Waits until every op this thread issued on `device` has finished (a no-op for Device::CPU).
void wait_for_ops(Device device);

// ---- embedding, with the vocabulary possibly split over TP ranks ------------------------------
// `table` holds rows [first_row, first_row + rows) of the full (vocab_size, d) table; one rank holds
// all of it (first_row 0, vocab_size = rows). Every id in tokens (I32, N) must be < vocab_size.
struct VocabSlice {
  int64_t first_row = 0;
  int64_t vocab_size = 0;  // 0: the local table's rows (no split)
};
// out (N, d) = table[tokens], zero where the id is another rank's (the ranks' outputs sum to the lookup).
void embedding_forward(Tensor out, const Tensor& tokens, const Tensor& table, VocabSlice slice = {});
// dtable[tokens[n] − first_row] += dout[n] for the ids in this slice.
void embedding_backward(Tensor dtable, const Tensor& dout, const Tensor& tokens, VocabSlice slice = {});

// ---- RMSNorm without weight (docs/MODEL.md 2) --------------------------------------------------
inline constexpr double kRmsNormEps = 1.1920928955078125e-07;  // fp32 machine epsilon, in every precision
// out (N, d) = x · rstd, rstd (N) = 1 / sqrt(mean(x²) + eps).
void rmsnorm_forward(Tensor out, Tensor rstd, const Tensor& x);
// dx (N, d) += rstd · (dout − x · rstd² · mean(dout · x)).
void rmsnorm_backward(Tensor dx, const Tensor& dout, const Tensor& x, const Tensor& rstd);

// ---- RMSNorm with a learned weight (MLA's latent norms, docs/MODEL.md 3.1) ------------------------
inline constexpr double kWeightedRmsNormEps = 1e-6;  // the reference's RMSNorm module default
// out (N, d) = (x · rstd) ⊙ weight (d), rstd (N) = 1 / sqrt(mean(x²) + 1e-6).
void weighted_rmsnorm_forward(Tensor out, Tensor rstd, const Tensor& x, const Tensor& weight);
// With g = dout ⊙ weight: dx (N, d) += rstd · (g − x · rstd² · mean(g · x)); dweight (d) += Σ_n dout ⊙ x · rstd.
void weighted_rmsnorm_backward(Tensor dx, Tensor dweight, const Tensor& dout, const Tensor& x, const Tensor& rstd,
                               const Tensor& weight);

// ---- RoPE (docs/MODEL.md 1.1) ------------------------------------------------------------------
// Tables cos/sin (T, D/2), F32 or F64, holding the reference's bf16-rounded values.
void rope_tables(Tensor cos, Tensor sin);
// x (B, T, R, W), in place on columns [first_column, W) of each row, which must be as wide as the
// tables cover (D = 2·tables' width): y1 = x1·cos + x2·sin, y2 = −x1·sin + x2·cos (a rotation by −θ).
// first_column is 0 except for MLA's query heads, whose last qk_rope_head_dim columns rotate.
void rope_forward(Tensor x, const Tensor& cos, const Tensor& sin, int64_t first_column = 0);
// The transpose, in place on the gradient: dx1 = dy1·cos − dy2·sin, dx2 = dy1·sin + dy2·cos.
void rope_backward(Tensor dx, const Tensor& cos, const Tensor& sin, int64_t first_column = 0);

// ---- TPA factor contraction (docs/MODEL.md 1, steps 2 and 1.2) -------------------------------------
// out (B, T, H, D) = (1/R) Σ_r A (B, T, H, R)[h, r] · factor_B (B, T, R, D)[r, :].
void tpa_contract_forward(Tensor out, const Tensor& A, const Tensor& factor_B);
// dA = (1/R) dout · Bᵀ per token, dB = (1/R) Aᵀ · dout per token (both overwritten).
void tpa_contract_backward(Tensor dA, Tensor dB, const Tensor& dout, const Tensor& A, const Tensor& factor_B);

// ---- causal softmax attention, scale 1/sqrt(D) of the query/key width D ------------------------
// Which KV head serves each local query head: kv = (first_head + h) / group_size − first_kv_head.
// Plain MHA and TPA use the default (kv = h).
struct HeadMap {
  int64_t first_head = 0;
  int64_t group_size = 1;
  int64_t first_kv_head = 0;
};
// y (B, T, H, Dv), lse (B, H, T) the log-sum-exp of each score row; q (B, T, H, D), k (B, T, Hkv, D),
// v (B, T, Hkv, Dv). Dv = D except for MLA. `scratch` (of q's dtype, planned with the activations)
// holds the CPU backend's T×T scores of one head (forward) or its probabilities and their gradient
// (backward); the CUDA kernels keep their tiles on chip and take an empty one.
int64_t attention_scratch_elements(int64_t T, bool backward);
void attention_forward(Tensor y, Tensor lse, const Tensor& q, const Tensor& k, const Tensor& v, Tensor scratch,
                       HeadMap heads = {});
// dq, dk, dv overwritten.
void attention_backward(Tensor dq, Tensor dk, Tensor dv, const Tensor& dy, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& y, const Tensor& lse, Tensor scratch, HeadMap heads = {});

// ---- MLA keys and values from the expanded latent (docs/MODEL.md 3.1, steps 2 and 5) ---------------
// kv (B, T, H, Dn + Dv) as kv_b_proj gives it, k_pe (B, T, 1, Dr) the rotated key part shared by all
// heads: k (B, T, H, Dn + Dr) = [kv[h, :Dn], k_pe] and v (B, T, H, Dv) = kv[h, Dn:] for every head h.
void mla_split_kv_forward(Tensor k, Tensor v, const Tensor& kv, const Tensor& k_pe);
// dkv = [dk[h, :Dn], dv[h]] per head and dk_pe = Σ_h dk[h, Dn:] (both overwritten).
void mla_split_kv_backward(Tensor dkv, Tensor dk_pe, const Tensor& dk, const Tensor& dv);

// ---- TPA attention: attention over the six factors (DESIGN.md, Principles) ------------------
// The factors are (B, T, H, Rq) A_q, (B, T, Rq, D) B_q with RoPE applied, and likewise k and v (B_v
// without RoPE). The CPU backend forms q, k, v in `workspace` and runs attention; a fused backend
// builds them on chip. Outputs as attention_forward.
struct TpaFactors {
  Tensor A_q, B_q, A_k, B_k, A_v, B_v;
};
// Elements of workspace the CPU backend needs for a (B, T, H, D) problem: 6·BTHD for q, k, v and their
// gradients, then attention's scratch for backward.
int64_t tpa_attention_workspace_elements(int64_t B, int64_t T, int64_t H, int64_t D);
void tpa_attention_forward(Tensor y, Tensor lse, const TpaFactors& factors, Tensor workspace);
// Writes the six factor gradients (overwritten).
void tpa_attention_backward(const TpaFactors& gradients, const Tensor& dy, const Tensor& y, const Tensor& lse,
                            const TpaFactors& factors, Tensor workspace);

// ---- TPA attention with RoPE inside (docs/MODEL.md 1 and 1.2; DESIGN.md, "Fused TPA attention") ----
// As tpa_attention_*, but B_q and B_k are given as the linear maps give them, before RoPE: the op
// rotates them with the tables cos, sin (T, D/2) of rope_tables, and returns the gradients of the
// unrotated factors (RoPEᵀ applied to dB_q and dB_k). Two paths, equal up to rounding:
//   Fused (the default): on a GPU, q, k and v are built tile by tile on chip from the factors and
//     never reach global memory; the workspace is not used. The backward's blocks own every head,
//     so dB is summed over heads on chip, in a fixed order, without atomics. heads_per_block caps how
//     many heads a forward block owns (0: no cap); it gets as many as fit in shared memory, and the
//     group need not divide H.
//   Materialised (fallback and reference): rotated copies of B_q and B_k, then tpa_attention_* with
//     q, k, v in the workspace, then rope_backward. CPU tensors always take this path.
enum class TpaAttentionPath { Fused, Materialised };
struct TpaAttentionChoice {
  TpaAttentionPath path = TpaAttentionPath::Fused;
  int64_t heads_per_block = 0;
};
// Elements of workspace (of a dtype at least as wide as the factors') the materialised path needs:
// tpa_attention's, then the rotated B_q and B_k.
int64_t tpa_rotary_attention_workspace_elements(int64_t B, int64_t T, int64_t H, int64_t Rq, int64_t R, int64_t D);
void tpa_rotary_attention_forward(Tensor y, Tensor lse, const TpaFactors& factors, const Tensor& cos, const Tensor& sin,
                                  Tensor workspace, TpaAttentionChoice choice = {});
// Writes the six factor gradients (overwritten).
void tpa_rotary_attention_backward(const TpaFactors& gradients, const Tensor& dy, const Tensor& y, const Tensor& lse,
                                   const TpaFactors& factors, const Tensor& cos, const Tensor& sin, Tensor workspace,
                                   TpaAttentionChoice choice = {});

// ---- decode attention: new rows over a generation cache (infer/kv_cache.h) -----------------------
// Row n, a new token of the sequence in cache slot rows.slot[n], attends over positions
// [0, rows.length[n]) of that slot (both I64 (N), host memory) in blocks of rows.block_tokens, with an
// online softmax in fp32. A long row is cut into pieces of whole blocks that threads take up
// separately; the pieces' partial softmax states (maximum, sum, unnormalised output per head) merge by
// their log-sum-exp. The cut depends only on the lengths and the row count, never on the thread
// count, so every team size gives the same bits. Cache tensors are (slots, max_context, ...), F32 or
// BF16; queries and outputs F32.
struct DecodeRows {
  Tensor slot, length;
  int64_t block_tokens = 256;
};
// Partial softmax states one call may keep for rows cut into pieces: a call of N rows cuts a row into
// at most kDecodePartialStates / N pieces (none once N exceeds it).
inline constexpr int64_t kDecodePartialStates = 64;
inline constexpr int64_t kDeviceDecodePartialStates = 512;
inline constexpr int64_t kDeviceDecodeTileTokens = 64;
inline constexpr int64_t kDeviceMinPieceTokens = 256;
// Working memory, planned once: per_thread (threads, the *_thread_elements below) holds each thread's
// blocks, one row per thread the op runs (the team is per_thread's row count); partials
// (kDecodePartialStates, decode_partial_elements) the states of cut rows. On a GPU (the cache, the
// queries and y on the device) the slots and lengths stay in host memory, partials is a device
// tensor, and per_thread is not used: each piece is one thread block that keeps its blocks in shared
// memory, so the pieces are where a GPU finds its parallelism. There a call of N rows cuts a row into
// at most (partials' rows) / N pieces of whole kDeviceDecodeTileTokens-position tiles, each at least
// kDeviceMinPieceTokens long; a decoder plans kDeviceDecodePartialStates states, enough to give every
// SM of an H100 a block at batch 1 from 32K positions on. The CUDA twin of tpa_decode_attention runs
// the factorised order.
struct DecodeWorkspace {
  Tensor per_thread, partials;
};
int64_t decode_partial_elements(int64_t heads, int64_t value_width);

// MHA, GQA and MLA's absorbed attention: y (N, H, Dv) from q (N, H, Dk) over k (slots, T, Hkv, Dk)
// and v (slots, T, Hkv, Dv); query head h reads KV head h / (H / Hkv); scale 1/sqrt(Dk). v may be k
// itself (MLA's latent row is its own value).
int64_t kv_decode_thread_elements(int64_t heads, int64_t kv_heads, int64_t key_width, int64_t value_width,
                                  int64_t block_tokens, DType cache_dtype);
void kv_decode_attention(Tensor y, const Tensor& q, const Tensor& k, const Tensor& v, const DecodeRows& rows,
                         const DecodeWorkspace& workspace);

// TPA and TPA-KVonly over the factor cache (docs/MODEL.md 1.4): A_k and A_v transposed, (slots, T, R, H),
// so that a rank's coefficients of all heads are contiguous; B̃_k and B_v (slots, T, R, D). The query is T6's factors A_q (N, H, Rq) and B̃_q (N, Rq, D), or KVonly's q̃
// (N, H, D) (then A_q and B_q are empty tensors). The factorised order never forms K or V: per block, one
// product B̃_q·B̃_kᵀ over all rank pairs and tokens, the head mixing with A_q and A_k, and the values as
// (p·A_v)·B_v over all rank-token rows; the materialised order builds each block's k and v and
// attends to them as plain attention does.
enum class TpaDecodeOrder { factorised, materialised };
struct TpaDecodeQuery {
  Tensor A_q, B_q, q;
};
struct TpaFactorCache {
  Tensor A_k, B_k, A_v, B_v;
};
int64_t tpa_decode_thread_elements(int64_t heads, int64_t head_dim, int64_t rank, int64_t q_rank,
                                   int64_t block_tokens, TpaDecodeOrder order, DType cache_dtype);
void tpa_decode_attention(Tensor y, const TpaDecodeQuery& query, const TpaFactorCache& cache, const DecodeRows& rows,
                          TpaDecodeOrder order, const DecodeWorkspace& workspace);

// Writes each new row's cache entry: row n of x (N, a, b), an a × b matrix, goes to position
// rows.length[n] − 1 of slot rows.slot[n] of `cache` (slots, T, a, b), or transposed into a cache of
// (slots, T, b, a) (TPA's A_k and A_v, kept rank by head), rounded to the cache's F32 or BF16. x is F32.
void decode_cache_write(Tensor cache, const Tensor& x, const DecodeRows& rows, bool transpose);

// ---- SwiGLU ---------------------------------------------------------------------------------
// out = silu(a) ⊙ b.
void swiglu_forward(Tensor out, const Tensor& a, const Tensor& b);
// da = dout ⊙ b ⊙ silu'(a), db = dout ⊙ silu(a), with silu'(a) = σ(a)(1 + a(1 − σ(a))).
void swiglu_backward(Tensor da, Tensor db, const Tensor& dout, const Tensor& a, const Tensor& b);

// ---- cross-entropy, with the vocabulary possibly split over TP ranks ----------------------------
// Megatron's vocab-parallel cross-entropy with an online softmax: logits (N, Vl) are the columns
// [first_row, first_row + Vl) of the full vocabulary (VocabSlice as for the embedding). Each rank
// exponentiates against its own row maxima in one pass; the caller then takes row_max = MAX of the
// local maxima over the ranks, rescales its sums to that maximum, and SUMs sum_exp and
// target_logit over the ranks. One rank runs the same ops with no reduction (row_max = local_max).
// Pass 1: local_max (N) = each row's largest logit; logits ← exp(logits − local_max) in place;
// sum_exp (N) = their row sums (accumulated in double); target_logit (N) = the target's logit where
// this slice holds it, else 0.
void cross_entropy_exp_sum(Tensor local_max, Tensor sum_exp, Tensor target_logit, Tensor logits, const Tensor& targets,
                           VocabSlice slice = {});
// sum_exp ← sum_exp · exp(local_max − row_max): the sums against the maximum over all ranks.
void cross_entropy_rescale(Tensor sum_exp, const Tensor& local_max, const Tensor& row_max);
// losses (N) = row_max + log(sum_exp) − target_logit (= logsumexp − target logit), all reduced.
void cross_entropy_losses(Tensor losses, const Tensor& row_max, const Tensor& sum_exp, const Tensor& target_logit);
// For training: exp_logits (pass 1's output) ← dloss · (softmax − onehot(target)), with the reduced
// row_max and sum_exp.
void cross_entropy_gradient(Tensor exp_logits, const Tensor& targets, const Tensor& local_max, const Tensor& row_max,
                            const Tensor& sum_exp, float dloss, VocabSlice slice = {});

// ---- AdamW, torch semantics (docs/MODEL.md 4) --------------------------------------------------
struct AdamWStep {
  float lr = 0, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0;
  int64_t step = 1;          // 1-based, for bias correction
  float grad_scale = 1.0f;   // the clipping factor, applied to every gradient element
};
// param ← param·(1 − lr·wd); m, v updated with g·grad_scale; param −= lr · m̂ / (sqrt(v̂) + eps).
// param_bf16, when given (BF16, param's shape), receives the updated param rounded to bf16: the
// copy the CUDA backend's matmuls read, written in the same pass.
void adamw_update(Tensor param, const Tensor& grad, Tensor m, Tensor v, const AdamWStep& hyper, Tensor param_bf16 = {});

}  // namespace t6::ops
