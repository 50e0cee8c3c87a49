// Incremental forward of the language model over a KV cache: sequences live in cache slots, and
// each call appends tokens to any of them. A call's rows go through every projection and the MLP as
// one batch (a prompt's prefill is one call over all its tokens, in chunks of max_rows), then each
// row attends over its own sequence up to itself. Decoding is the same call with one row per active
// sequence. The block and its MLP are the model's own (model/transformer_block.h, model/mlp.h), with
// the cache's attention step; weights are used in place; the cache and all buffers are allocated once.
// The decoder runs where the weights live: with weights on the GPU (the CUDA backend) the cache, the
// activations and the attention's partial states are device memory too, and a step allocates nothing;
// each call's token ids and RoPE rows travel through pinned memory. MLA decodes on the CPU only.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "infer/attention_step.h"
#include "infer/kv_cache.h"
#include "model/mlp.h"
#include "model/model_weights.h"

namespace t6::infer {

struct DecodeOptions {
  int64_t block_tokens = 256;  // cache positions per online-softmax block
  // Factorised by default: bench_decode measured it 6–7× faster than materialising each block
  // (README "Performance", TPA decode order), so no rule by context.
  TpaDecodeOrder order = TpaDecodeOrder::factorised;
  int64_t max_rows = 256;      // rows per internal batch (bounds the buffers of a long prefill)
  DType cache_dtype = DType::F32;  // F32, or BF16 for half the cache bytes
};

struct SlotToken {
  int64_t slot = 0;
  int32_t token = 0;
};

class Decoder {
 public:
  Decoder(const ModelWeights& weights, int64_t slots, int64_t max_context, const DecodeOptions& options = {});

  const ModelConfig& config() const { return weights_.config(); }
  const KvCache& cache() const { return cache_; }
  KvCache& cache() { return cache_; }  // benchmarks fill it directly
  int64_t length(int64_t slot) const { return cache_.length(slot); }
  // The buffers besides the cache: each internal batch's activations, the RoPE tables, and the
  // decode attention's scratch: on the CPU one slice per OpenMP thread counted when the decoder was
  // made (decoding runs that many threads) sized for a row's heads in options' block size, order and
  // cache dtype (none on a GPU, whose blocks work in shared memory), and ops::kDecodePartialStates
  // partial states for rows cut into pieces (ops::kDeviceDecodePartialStates on a GPU).
  size_t buffer_bytes() const { return buffers_.bytes() + tables_.bytes(); }
  size_t attention_scratch_bytes() const {
    return attention_workspace_.per_thread.bytes() + attention_workspace_.partials.bytes();
  }
  int64_t attention_threads() const {
    return attention_workspace_.per_thread.empty() ? 0 : attention_workspace_.per_thread.size(0);
  }
  // "3.23 MiB, of which decode attention scratch 15.25 KiB (2 threads × 7.62 KiB, partial states 1.02 KiB)"
  std::string describe_buffers() const;

  Device device() const { return weights_.device(); }
  // Appends the tokens to their slots (a slot's tokens in order) and writes each row's final normed
  // hidden state into hidden (N, d), in host memory or on the decoder's device. Throws naming the slot
  // when a sequence would outgrow the cache.
  void append(const std::vector<SlotToken>& tokens, const Tensor& hidden);
  // logits (N, V) = hidden (N, d) · headᵀ, both in host memory or both on the decoder's device.
  void logits(const Tensor& hidden, const Tensor& logits) const;
  // Empties a slot for a new sequence.
  void clear(int64_t slot) { cache_.set_length(slot, 0); }

 private:
  void plan(Arena& arena, int64_t threads);
  void plan_staging();
  void append_chunk(const SlotToken* tokens, int64_t count, const Tensor& hidden);

  const ModelWeights& weights_;
  DecodeOptions options_;
  KvCache cache_;
  // The weights are looked up by name once: a step builds no strings.
  Tensor embedding_;  // also the LM head
  std::vector<Mlp> mlp_;  // the model's MLP, its layers sharing one set of activations
  std::vector<std::unique_ptr<AttentionStep>> attention_;
  StepRows rows_;                // this call's rows, kept so that their capacity stays
  std::vector<int64_t> length_;  // each slot's length as this call's rows are added
  Arena buffers_;  // on the decoder's device
  Arena tables_;   // host: the RoPE tables, whose rows each call gathers by position
  ops::DecodeWorkspace attention_workspace_;
  Tensor residual_, norm_, rstd_, middle_, branch_, token_ids_, scratch_, rope_cos_, rope_sin_, row_cos_, row_sin_;
  // On a GPU: a chunk's final hidden rows, the LM head's input and output rows (for host callers),
  // and the host side of each call's token ids and RoPE rows (pinned; on the CPU they are the
  // buffers themselves).
  Tensor hidden_, head_hidden_, head_logits_;
  int64_t head_rows_ = 0;
  PinnedHostBuffer staging_;
  Tensor staged_ids_, staged_cos_, staged_sin_;
};

}  // namespace t6::infer
