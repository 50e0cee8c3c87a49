// The attention half of a block at generation time: for N new rows (tokens of any sequences, each at
// its own position) it projects the rows, writes their own entries into the cache, attends each row
// over its sequence's cache up to and including itself, and applies the output projection. One
// variant per kind of cache (kv_cache.h), using the model's weights in place.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "infer/cache_attention.h"
#include "infer/kv_cache.h"
#include "model/model_weights.h"

namespace t6::infer {

// Which sequence (cache slot) and position each packed row is.
struct StepRows {
  std::vector<int64_t> slot, position;
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
  // (threads, attention_scratch_elements): the decode attention's working memory, one row for each
  // thread that for_rows_and_heads (step_helpers.h) runs.
  Tensor attention_scratch;
};

class AttentionStep {
 public:
  virtual ~AttentionStep() = default;
  virtual int64_t scratch_elements(int64_t rows) const = 0;
  // What one thread's attend_kv_cache / attend_factor_cache needs over all the heads of a row.
  virtual int64_t attention_scratch_elements(int64_t block_tokens, TpaDecodeOrder order) const = 0;
  // out (N, d) from the normed rows x (N, d).
  virtual void forward(const StepContext& context, const Tensor& x, const Tensor& out) const = 0;
};

// The step of the model's kind for `layer`, with views into `weights`.
std::unique_ptr<AttentionStep> make_attention_step(const ModelWeights& weights, int64_t layer);

}  // namespace t6::infer
