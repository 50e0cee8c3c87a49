// The attention half of a block. Variants (TPA, TPA-KVonly, MHA/GQA, MLA) share this interface; under
// tensor parallelism each holds only its rank's heads and returns partial sums that the block
// reduces over TP.
#pragma once
#include <memory>
#include <string>

#include "core/arena.h"
#include "kernels/ops.h"
#include "model/layer_context.h"
#include "model/model_weights.h"

namespace t6 {

class AttentionLayer {
 public:
  virtual ~AttentionLayer() = default;
  // Takes this layer's saved activations for a (batch, seq_len) micro-batch from the arena.
  virtual void plan_activations(Arena& arena, int64_t batch, int64_t seq_len) = 0;
  // Scratch elements the layer's calls need (ScratchCursor over context.scratch).
  virtual int64_t scratch_elements(int64_t batch, int64_t seq_len) const = 0;
  // out (N, d) = this rank's heads' contribution to attn(x) (sum over TP ranks = the full output).
  virtual void forward(const LayerContext& context, const Tensor& x, const Tensor& out) = 0;
  // Adds the weight gradients; writes dx (N, d), this rank's partial input gradient.
  virtual void backward(const LayerContext& context, const Tensor& x, const Tensor& dout, const Tensor& dx) = 0;
};

// The attention variant of config.kind for layer `layer`, with views into `weights`.
std::unique_ptr<AttentionLayer> make_attention_layer(const ModelWeights& weights, int64_t layer);

}  // namespace t6
