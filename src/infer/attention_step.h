// The attention half of a block at generation time: for N new rows (tokens of any sequences, each at
// its own position) it projects the rows, writes their own entries into the cache, attends each row
// over its sequence's cache up to and including itself, and applies the output projection. One
// variant per kind of cache (kv_cache.h), using the model's weights in place.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "infer/decode_order.h"
#include "kernels/ops.h"
#include "infer/kv_cache.h"
#include "model/model_weights.h"

namespace t6::infer {

// Which sequence (cache slot) and position each packed row is; length = position + 1, the cache
// positions the row attends over.
struct StepRows {
  std::vector<int64_t> slot, position, length;
  int64_t size() const { return int64_t(slot.size()); }
};

struct StepContext {
  const StepRows& rows;
  Tensor rope_cos, rope_sin;  // (N, rope_dim/2): the RoPE table rows of each row's position
  KvCache& cache;
  int64_t layer;
  int64_t block_tokens;
  TpaDecodeOrder order;
  Tensor scratch;  // flat F32, at least scratch_elements(rows) long
  // The decode attention op's working memory: per_thread (threads, attention_thread_elements) and
  // the partial states of rows it cuts into pieces.
  ops::DecodeWorkspace attention_workspace;
};

class AttentionStep {
 public:
  virtual ~AttentionStep() = default;
  virtual int64_t scratch_elements(int64_t rows) const = 0;
  // What one thread of the decode attention op needs (ops::*_decode_thread_elements), and one
  // partial state of a cut row (ops::decode_partial_elements).
  virtual int64_t attention_thread_elements(int64_t block_tokens, TpaDecodeOrder order, DType cache_dtype) const = 0;
  virtual int64_t attention_partial_elements() const = 0;
  // out (N, d) from the normed rows x (N, d).
  virtual void forward(const StepContext& context, const Tensor& x, const Tensor& out) const = 0;
};

// The step of the model's kind for `layer`, with views into `weights`.
std::unique_ptr<AttentionStep> make_attention_step(const ModelWeights& weights, int64_t layer);

}  // namespace t6::infer
