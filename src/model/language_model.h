// The language model: tied embedding, L pre-norm blocks (attention variant + SwiGLU MLP), final
// RMSNorm, LM head and mean cross-entropy (docs/MODEL.md 2), with explicit forward and backward over one
// micro-batch of fixed shape. Activations live in one arena planned at construction; nothing is
// allocated in a step. Under tensor parallelism each rank holds its slice of every weight and the
// blocks reduce partial results over the TP communicator.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "core/arena.h"
#include "kernels/ops.h"
#include "model/attention_layer.h"
#include "model/layer_context.h"
#include "model/mlp.h"
#include "model/model_weights.h"

namespace t6 {

class LanguageModel {
 public:
  // tp may be null (one rank). micro_batch × seq_len is the shape of every call. pad_multiple and
  // with_gradients: see ModelWeights (forward_backward needs the gradients). On Device::CUDA the
  // weights, gradients and activations are device arenas, and inputs and targets device tensors.
  LanguageModel(const ModelConfig& config, int64_t micro_batch, int64_t seq_len, Communicator* tp = nullptr,
                int64_t pad_multiple = 1, bool with_gradients = true, Device device = Device::CPU);

  // What the activation arena of a model of `config` takes on TP rank `tp_rank` of `tp_size` on
  // `device` (bf16 matmul inputs on the CUDA backend), from the same plan, without allocating it or
  // the weights (memory planning: run/memory_plan.h).
  struct ActivationPlan {
    size_t bytes = 0, scratch_bytes = 0;  // as activation_bytes() and scratch_bytes() would be
  };
  static ActivationPlan planned_activations(const ModelConfig& config, int64_t micro_batch, int64_t seq_len,
                                            int tp_rank, int tp_size, Device device = Device::CPU);

  const ModelConfig& config() const { return weights_.config(); }
  ModelWeights& weights() { return weights_; }
  const ModelWeights& weights() const { return weights_; }
  int64_t micro_batch() const { return batch_; }
  // Which path T6 layers' attention takes on the device (the fused one unless told otherwise).
  void choose_tpa_attention(const ops::TpaAttentionChoice& choice) { context_.tpa_attention = choice; }
  int64_t seq_len() const { return seq_len_; }
  size_t activation_bytes() const { return activations_.bytes(); }
  // The part of activation_bytes() that layers share for buffers living within one call (backward's
  // gradients, TPA's q/k/v, the CPU attention's T×T scores).
  size_t scratch_bytes() const { return size_t(scratch_.numel()) * dtype_size(scratch_.dtype()); }

  // Forward and backward of one micro-batch (inputs, targets: I32 (B, T)). Adds the gradient of
  // loss_scale · mean loss to the gradients (so micro-batches accumulate) and returns the mean loss.
  float forward_backward(const Tensor& inputs, const Tensor& targets, float loss_scale);
  // The same without waiting for the device: loss_total (F64, one element, on the model's device)
  // receives loss_scale · mean loss, added to its value when accumulate (a step's micro-batches).
  void forward_backward(const Tensor& inputs, const Tensor& targets, float loss_scale, Tensor loss_total,
                        bool accumulate);
  // Called during backward each time a block's gradients (and, last, the embedding's) have received
  // this call's contribution, with the index of the first parameter (ModelWeights::table()) from
  // which on every gradient has: the hook by which an optimizer reduces gradient buckets while the
  // backward goes on. Empty (the default): no calls.
  using GradientsReady = std::function<void(int64_t first_param)>;
  void set_gradients_ready(GradientsReady callback) { gradients_ready_ = std::move(callback); }
  // Mean loss without gradients (evaluation).
  float forward_loss(const Tensor& inputs, const Tensor& targets);
  // logits (B, T, V) in fp32.
  void forward_logits(const Tensor& inputs, const Tensor& logits);

 private:
  void forward_blocks(const Tensor& inputs);
  void backward_blocks(const Tensor& inputs);
  // Runs the LM head over row chunks of the final normed states; with `train`, also the loss
  // gradient back into d_norm_ and the head (= embedding) weight gradient. Vocab-parallel: each TP
  // rank computes its columns' logits, and the cross-entropy phases reduce row statistics over TP.
  // loss_total (F64, one element) receives loss_weight · mean loss, plus its value when accumulate.
  void head_loss(const Tensor& targets, bool train, float loss_scale, Tensor loss_total, double loss_weight,
                 bool accumulate);
  // The mean loss in loss_total_ on the host (waits for the device).
  float read_loss_total();
  void plan(Arena& arena);
  // Scratch elements the head's backward needs: a matmul-operand copy of one chunk of dlogits.
  int64_t head_scratch_elements() const;
  // Columns of the logits on this rank: its rows of the (tied) embedding.
  int64_t vocab_columns() const { return weights_.table().find("transformer.wte.weight").local_shape[0]; }
  // The layers over `weights`, without the activation arena.
  LanguageModel(ModelWeights weights, int64_t micro_batch, int64_t seq_len);

  ModelWeights weights_;
  int64_t batch_, seq_len_;
  LayerContext context_;
  std::vector<std::unique_ptr<AttentionLayer>> attention_;
  std::vector<Mlp> mlp_;
  Arena activations_;

  // Planned activations: residual stream at each block's input (L + 1), after each block's attention,
  // the two norms' outputs and inverse RMS per block, and the final norm. The norms' outputs feed
  // matmuls and have the weights' matmul_dtype (bf16 on the CUDA backend); the residual stream, the
  // inverse RMS, the branch outputs, the logits and every gradient buffer are F32.
  std::vector<Tensor> residual_, middle_, norm1_, rstd1_, norm2_, rstd2_;
  Tensor final_norm_, final_rstd_;
  // Buffers reused by every layer: branch outputs, gradients of the residual and of a norm output,
  // one chunk of logits, per-row losses, and the scratch space of the layers' backward.
  Tensor branch_out_, d_residual_, d_norm_, logits_chunk_, row_losses_, scratch_, rope_cos_, rope_sin_;
  Tensor row_stats_;  // (4, chunk rows): local maximum, maximum over TP, exp sum, target logit
  Tensor loss_total_;  // F64 (1): the loss of the calls that return it
  int64_t chunk_rows_ = 0;
  ops::VocabSlice vocab_slice_;  // this rank's rows of the embedding = columns of the logits
  GradientsReady gradients_ready_;
};

}  // namespace t6
