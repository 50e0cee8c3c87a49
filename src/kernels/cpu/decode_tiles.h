// The inner loops of the CPU decode attention (decode_attention.cpp), written as small matrix
// products over one cache block so that the compiler keeps a tile of the output in vector registers
// and every cache number loaded feeds several multiply-adds:
//   - row_dots: out[k][i] = q_i · row_k for a few queries against many rows (plain attention's scores,
//     KVonly's q̃·B̃_kᵀ);
//   - combine_rows: out_k = Σ_i c[k][i] · basis_i for many outputs of the same basis rows (head mixing,
//     and B̃_k·B̃_qᵀ against B̃_q transposed);
//   - weighted_rows: acc[i] += Σ_k w[k][i] · row_k for a few output rows (the value side);
//   - OnlineSoftmax: each head's running maximum and sum over blocks of scores laid out (token, head).
// Lanes are GCC vector extensions of 8 floats: one AVX2 register, two SSE ones in the default build.
// They are included only into functions compiled for each target (target_clones), always inlined.
#pragma once
#include <cstdint>

#include "kernels/cpu/vector_exp.h"

#define T6_DECODE_INLINE [[gnu::always_inline]] inline
// Lanes are passed by value only between always-inlined functions: no call ever uses the ABI that
// GCC warns may differ between the default and the AVX build.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace t6::ops::cpu::decode {

using Lanes = float __attribute__((vector_size(32), aligned(4), may_alias));
constexpr int64_t kLanes = 8;

T6_DECODE_INLINE Lanes load(const float* at) { return *reinterpret_cast<const Lanes*>(at); }
T6_DECODE_INLINE void store(float* at, Lanes value) { *reinterpret_cast<Lanes*>(at) = value; }
T6_DECODE_INLINE float lane_sum(Lanes x) {
  return ((x[0] + x[4]) + (x[1] + x[5])) + ((x[2] + x[6]) + (x[3] + x[7]));
}

// out[k·ld_out + i] = scale · (q[i·ld_q, +width) · rows[k·ld_rows, +width)) for i < queries, k < count.
// Four queries at a time, two accumulators each, so that eight independent chains hide the latency.
template <int64_t Q>
T6_DECODE_INLINE void row_dots_tile(float* out, int64_t ld_out, const float* q, int64_t ld_q, const float* rows,
                                    int64_t ld_rows, int64_t count, int64_t width, float scale) {
  const int64_t body = width / (2 * kLanes) * (2 * kLanes);
  for (int64_t k = 0; k < count; ++k) {
    const float* row = rows + k * ld_rows;
    Lanes even[Q], odd[Q];
    for (int64_t i = 0; i < Q; ++i) even[i] = Lanes{}, odd[i] = Lanes{};
    for (int64_t d = 0; d < body; d += 2 * kLanes) {
      const Lanes low = load(row + d), high = load(row + d + kLanes);
      for (int64_t i = 0; i < Q; ++i) {
        even[i] += load(q + i * ld_q + d) * low;
        odd[i] += load(q + i * ld_q + d + kLanes) * high;
      }
    }
    for (int64_t i = 0; i < Q; ++i) {
      float sum = lane_sum(even[i] + odd[i]);
      for (int64_t d = body; d < width; ++d) sum += q[i * ld_q + d] * row[d];
      out[k * ld_out + i] = sum * scale;
    }
  }
}

T6_DECODE_INLINE void row_dots(float* out, int64_t ld_out, const float* q, int64_t ld_q, int64_t queries,
                               const float* rows, int64_t ld_rows, int64_t count, int64_t width, float scale) {
  int64_t i = 0;
  for (; i + 4 <= queries; i += 4) row_dots_tile<4>(out + i, ld_out, q + i * ld_q, ld_q, rows, ld_rows, count, width, scale);
  const float* rest = q + i * ld_q;
  switch (queries - i) {
    case 3: row_dots_tile<3>(out + i, ld_out, rest, ld_q, rows, ld_rows, count, width, scale); break;
    case 2: row_dots_tile<2>(out + i, ld_out, rest, ld_q, rows, ld_rows, count, width, scale); break;
    case 1: row_dots_tile<1>(out + i, ld_out, rest, ld_q, rows, ld_rows, count, width, scale); break;
    default: break;
  }
}

// out[k·ld_out, +width) = Σ_{i < terms} c[k·ld_c + i] · basis[i·ld_basis, +width) for k < count: many
// combinations of the same rows (the head mixing; B̃_k·B̃_qᵀ against B̃_q transposed), in tiles of K
// output rows so that K independent chains of multiply-adds hide the latency, and every basis chunk
// loaded feeds K of them. width is a whole number of lanes.
template <int64_t K>
T6_DECODE_INLINE void combine_rows_tile(float* out, int64_t ld_out, const float* c, int64_t ld_c, int64_t terms,
                                        const float* basis, int64_t ld_basis, int64_t width) {
  for (int64_t j = 0; j < width; j += kLanes) {
    Lanes sum[K];
    for (int64_t k = 0; k < K; ++k) sum[k] = Lanes{};
    for (int64_t i = 0; i < terms; ++i) {
      const Lanes chunk = load(basis + i * ld_basis + j);
      for (int64_t k = 0; k < K; ++k) sum[k] += c[k * ld_c + i] * chunk;
    }
    for (int64_t k = 0; k < K; ++k) store(out + k * ld_out + j, sum[k]);
  }
}

T6_DECODE_INLINE void combine_rows(float* out, int64_t ld_out, const float* c, int64_t ld_c, int64_t terms,
                                   const float* basis, int64_t ld_basis, int64_t count, int64_t width) {
  constexpr int64_t kTile = 8;
  int64_t k = 0;
  for (; k + kTile <= count; k += kTile)
    combine_rows_tile<kTile>(out + k * ld_out, ld_out, c + k * ld_c, ld_c, terms, basis, ld_basis, width);
  for (; k < count; ++k) combine_rows_tile<1>(out + k * ld_out, ld_out, c + k * ld_c, ld_c, terms, basis, ld_basis, width);
}

// acc[i·ld_acc, +width) += Σ_k w[k·ld_w + i] · rows[k·ld_rows, +width) for i < Q: a tile of Q output
// rows × C lanes of columns lives in registers while the rows stream past.
template <int64_t Q, int64_t C>
T6_DECODE_INLINE void weighted_rows_tile(float* acc, int64_t ld_acc, const float* w, int64_t ld_w, const float* rows,
                                         int64_t ld_rows, int64_t count, int64_t width) {
  int64_t c = 0;
  for (; c + C * kLanes <= width; c += C * kLanes) {
    Lanes sum[Q][C];
    for (int64_t i = 0; i < Q; ++i)
      for (int64_t l = 0; l < C; ++l) sum[i][l] = load(acc + i * ld_acc + c + l * kLanes);
    for (int64_t k = 0; k < count; ++k) {
      Lanes row[C];
      for (int64_t l = 0; l < C; ++l) row[l] = load(rows + k * ld_rows + c + l * kLanes);
      for (int64_t i = 0; i < Q; ++i) {
        const float weight = w[k * ld_w + i];
        for (int64_t l = 0; l < C; ++l) sum[i][l] += weight * row[l];
      }
    }
    for (int64_t i = 0; i < Q; ++i)
      for (int64_t l = 0; l < C; ++l) store(acc + i * ld_acc + c + l * kLanes, sum[i][l]);
  }
  if constexpr (C > 1) {
    // What is left, in tiles of half the columns.
    if (c < width) weighted_rows_tile<Q, C / 2>(acc + c, ld_acc, w, ld_w, rows + c, ld_rows, count, width - c);
  } else {
    for (; c < width; ++c)
      for (int64_t i = 0; i < Q; ++i) {
        float sum = acc[i * ld_acc + c];
        for (int64_t k = 0; k < count; ++k) sum += w[k * ld_w + i] * rows[k * ld_rows + c];
        acc[i * ld_acc + c] = sum;
      }
  }
}

// The whole product, in runs of 64 rows (16 KiB of a 64-wide row: they stay in L1 while every tile
// of outputs passes over them) and tiles of six output rows × C lanes of columns.
template <int64_t C>
T6_DECODE_INLINE void weighted_rows_in_tiles(float* acc, int64_t ld_acc, const float* w, int64_t ld_w, int64_t outputs,
                                             const float* rows, int64_t ld_rows, int64_t count, int64_t width) {
  constexpr int64_t kRun = 64;
  for (int64_t begin = 0; begin < count; begin += kRun) {
    const int64_t n = count - begin < kRun ? count - begin : kRun;
    const float* run_w = w + begin * ld_w;
    const float* run_rows = rows + begin * ld_rows;
    int64_t i = 0;
    for (; i + 6 <= outputs; i += 6)
      weighted_rows_tile<6, C>(acc + i * ld_acc, ld_acc, run_w + i, ld_w, run_rows, ld_rows, n, width);
    float* rest = acc + i * ld_acc;
    switch (outputs - i) {
      case 5: weighted_rows_tile<5, C>(rest, ld_acc, run_w + i, ld_w, run_rows, ld_rows, n, width); break;
      case 4: weighted_rows_tile<4, C>(rest, ld_acc, run_w + i, ld_w, run_rows, ld_rows, n, width); break;
      case 3: weighted_rows_tile<3, C>(rest, ld_acc, run_w + i, ld_w, run_rows, ld_rows, n, width); break;
      case 2: weighted_rows_tile<2, C>(rest, ld_acc, run_w + i, ld_w, run_rows, ld_rows, n, width); break;
      case 1: weighted_rows_tile<1, C>(rest, ld_acc, run_w + i, ld_w, run_rows, ld_rows, n, width); break;
      default: break;
    }
  }
}

// Six output rows × 16 columns are 12 accumulators of AVX2's 16 registers; with AVX-512's 32 (the
// x86-64-v4 clones) a tile is 32 columns wide, so that each weight loaded feeds four multiply-adds.
// The choice is made at run time: a CPU with avx512f runs the v4 clone.
T6_DECODE_INLINE void weighted_rows(float* acc, int64_t ld_acc, const float* w, int64_t ld_w, int64_t outputs,
                                    const float* rows, int64_t ld_rows, int64_t count, int64_t width) {
  if (__builtin_cpu_supports("avx512f"))
    weighted_rows_in_tiles<4>(acc, ld_acc, w, ld_w, outputs, rows, ld_rows, count, width);
  else
    weighted_rows_in_tiles<2>(acc, ld_acc, w, ld_w, outputs, rows, ld_rows, count, width);
}

// A count rounded up to whole lanes. Score rows are this many heads wide, so that the softmax runs
// without a scalar tail (the padding heads' scores are kept finite and never reach an output), and
// T6's rank pairs this many ranks wide, B̃_k·B̃_qᵀ being computed with lanes along the rank.
inline int64_t whole_lanes(int64_t count) { return (count + kLanes - 1) / kLanes * kLanes; }

// One piece's softmax state per head: running maximum and sum of exp(score − maximum) (padded heads
// long), and the output accumulated against that maximum (heads × width). `rescale` is room for one
// number a padded head.
struct OnlineSoftmax {
  float *max, *sum, *rescale, *acc;
  int64_t heads, padded, width;

  T6_DECODE_INLINE void reset() const {
    for (int64_t h = 0; h < padded; ++h) max[h] = -__builtin_inff(), sum[h] = 0;
    for (int64_t j = 0; j < heads * width; ++j) acc[j] = 0;
  }

  // A block's scores pass through in three steps (absorb runs them over a block of n tokens laid out
  // n × padded heads; a caller may interleave them with its own passes over the tokens):
  //   begin_block, then observe each token's scores: `rescale` collects the block's maximum per head;
  //   raise_maximum: the state moves to the new maximum, rescaling the sums and outputs so far (a
  //   factor 0 for the first block);
  //   exponentiate each token's scores in place into exp(s − maximum), added to the sums.
  T6_DECODE_INLINE void begin_block() const {
    for (int64_t h = 0; h < padded; ++h) rescale[h] = max[h];
  }
  T6_DECODE_INLINE void observe(const float* s) const {
    for (int64_t h = 0; h < padded; ++h) rescale[h] = s[h] > rescale[h] ? s[h] : rescale[h];
  }
  T6_DECODE_INLINE void raise_maximum() const {
    for (int64_t h = 0; h < padded; ++h) {
      const float new_max = rescale[h];
      rescale[h] = max[h] == -__builtin_inff() ? 0.0f : vector_exp(max[h] - new_max);
      sum[h] *= rescale[h];
      max[h] = new_max;
    }
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < width; ++j) acc[h * width + j] *= rescale[h];
  }
  T6_DECODE_INLINE void exponentiate(float* s) const {
    for (int64_t h = 0; h < padded; ++h) {
      s[h] = vector_exp(s[h] - max[h]);
      sum[h] += s[h];
    }
  }

  T6_DECODE_INLINE void absorb(float* s, int64_t n) const {
    begin_block();
    for (int64_t t = 0; t < n; ++t) observe(s + t * padded);
    raise_maximum();
    for (int64_t t = 0; t < n; ++t) exponentiate(s + t * padded);
  }
};

}  // namespace t6::ops::cpu::decode
