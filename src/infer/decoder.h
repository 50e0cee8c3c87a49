// Incremental forward of the language model over a KV cache: sequences live in cache slots, and
// each call appends tokens to any of them. A call's rows go through every projection and the MLP as
// one batch (a prompt's prefill is one call over all its tokens, in chunks of max_rows), then each
// row attends over its own sequence up to itself. Decoding is the same call with one row per active
// sequence. Weights are the model's, used in place; the cache and all buffers are allocated once.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/arena.h"
#include "infer/attention_step.h"
#include "infer/kv_cache.h"
#include "model/model_weights.h"

namespace t6::infer {

struct DecodeOptions {
  int64_t block_tokens = 256;  // cache positions per online-softmax block
  // Factorised by default: bench_decode measured it faster than materialising each block at every
  // context and batch tried (1K, 8K, 32K; batch 1 and 8; README "Performance"), so no rule by context.
  TpaDecodeOrder order = TpaDecodeOrder::factorised;
  int64_t max_rows = 256;      // rows per internal batch (bounds the buffers of a long prefill)
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
  size_t buffer_bytes() const { return buffers_.bytes(); }  // besides the cache
  void set_order(TpaDecodeOrder order) { options_.order = order; }

  // Appends the tokens to their slots (a slot's tokens in order) and writes each row's final normed
  // hidden state into hidden (N, d). Throws naming the slot when a sequence would outgrow the cache.
  void append(const std::vector<SlotToken>& tokens, const Tensor& hidden);
  // logits (N, V) = hidden (N, d) · headᵀ.
  void logits(const Tensor& hidden, const Tensor& logits) const;
  // Empties a slot for a new sequence.
  void clear(int64_t slot) { cache_.set_length(slot, 0); }

 private:
  void plan(Arena& arena);
  void append_chunk(const SlotToken* tokens, int64_t count, const Tensor& hidden);

  const ModelWeights& weights_;
  DecodeOptions options_;
  KvCache cache_;
  std::vector<std::unique_ptr<AttentionStep>> attention_;
  Arena buffers_;
  Tensor residual_, norm_, rstd_, branch_, token_ids_, pre_gate_, up_, gated_, scratch_, rope_cos_, rope_sin_, row_cos_, row_sin_;
};

}  // namespace t6::infer
