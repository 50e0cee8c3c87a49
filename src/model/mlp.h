// The SwiGLU MLP of every block: out = (silu(x·W1ᵀ) ⊙ x·W2ᵀ)·W3ᵀ, with c_fc1/c_fc2 split by hidden
// unit (column-parallel) and c_proj by input column (row-parallel) under tensor parallelism.
#pragma once
#include "core/arena.h"
#include "model/layer_context.h"
#include "model/model_weights.h"

namespace t6 {

class Mlp {
 public:
  Mlp(const ModelWeights& weights, int64_t layer);
  void plan_activations(Arena& arena, int64_t batch, int64_t seq_len);
  // Uses `owner`'s planned activations: generation keeps none for backward, so its layers share one set.
  void share_activations(const Mlp& owner);
  int64_t scratch_elements(int64_t batch, int64_t seq_len) const;
  // out (N, d) = this rank's hidden units' contribution, for N = context.rows() up to the planned rows.
  void forward(const LayerContext& context, const Tensor& x, const Tensor& out);
  // Adds the weight gradients; writes dx (N, d), this rank's partial input gradient.
  void backward(const LayerContext& context, const Tensor& x, const Tensor& dout, const Tensor& dx);

 private:
  // The backward's buffers in the scratch: dout as a matmul operand (matmul_operand_space), dgated
  // (F32), and the gradients of pre_gate and up, which only feed matmuls, in matmul_dtype_.
  struct Gradients {
    Tensor dout, dgated, dpre_gate, dup;
  };
  Gradients carve_gradients(ScratchCursor& cursor, const Tensor& dout) const;

  int64_t hidden_;  // this rank's hidden units
  int64_t width_;   // n_embd
  DType matmul_dtype_;  // of the weights and activations the matmuls read (ModelWeights::matmul_dtype)
  Tensor fc1_, fc2_, proj_, dfc1_, dfc2_, dproj_;  // the matmul weights (bf16 on the CUDA backend), fp32 gradients
  Tensor pre_gate_, up_, gated_;  // x·W1ᵀ, x·W2ᵀ, silu(x·W1ᵀ) ⊙ x·W2ᵀ, in matmul_dtype_
};

}  // namespace t6
