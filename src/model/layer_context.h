// What every layer needs besides its own weights and activations during one micro-batch: the batch
// shape, the RoPE tables, shared scratch space, and the tensor-parallel group.
#pragma once
#include <cstdint>

#include "core/arena.h"
#include "core/tensor.h"
#include "kernels/ops.h"
#include "parallel/communicator.h"

namespace t6 {

struct LayerContext {
  int64_t batch = 0;       // sequences in the micro-batch (B)
  int64_t seq_len = 0;     // T
  Tensor rope_cos, rope_sin;  // (T, rope_dim / 2): head_dim, or MLA's qk_rope_head_dim
  Tensor scratch;          // flat F32 space for buffers that live within one layer call
  Communicator* tp = nullptr;  // null or size 1: no tensor parallelism
  ops::TpaAttentionChoice tpa_attention;  // T6 layers: the fused path (default) or the materialised one

  int64_t rows() const { return batch * seq_len; }
};

// Megatron's reduce-from-TP-region: sums the partial outputs (or input gradients) of a TP region.
inline void reduce_over_tp(const LayerContext& context, Tensor partial) {
  if (context.tp && context.tp->size() > 1) context.tp->all_reduce(partial, ReduceOp::Sum);
}

}  // namespace t6
