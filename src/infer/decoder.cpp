#include "infer/decoder.h"

#include <omp.h>

#include <algorithm>

#include "infer/byte_size.h"
#include "kernels/ops.h"
#include "model/linear.h"
#include "model/transformer_block.h"

namespace t6::infer {

Decoder::Decoder(const ModelWeights& weights, int64_t slots, int64_t max_context, const DecodeOptions& options)
    : weights_(weights),
      options_(options),
      cache_(weights.config(), slots, max_context, options.cache_dtype),
      embedding_(weights.param("transformer.wte.weight")) {
  T6_CHECK(weights.table().tp_size() == 1, "generation runs the whole model in one process (tp = 1)");
  T6_CHECK(options.block_tokens >= 1 && options.max_rows >= 1, "decode block and row counts must be positive");
  for (int64_t layer = 0; layer < config().n_layer; ++layer) {
    attention_.push_back(make_attention_step(weights, layer));
    mlp_.emplace_back(weights, layer);
  }
  rows_.slot.reserve(size_t(options.max_rows));
  rows_.position.reserve(size_t(options.max_rows));
  rows_.length.reserve(size_t(options.max_rows));
  length_.resize(size_t(slots));
  const int64_t threads = omp_get_max_threads();
  buffers_ = Arena([this, threads](Arena& arena) { plan(arena, threads); });
  ops::rope_tables(rope_cos_, rope_sin_);
}

void Decoder::plan(Arena& arena, int64_t threads) {
  const int64_t N = options_.max_rows, d = config().n_embd;
  residual_ = arena.take({N, d});
  norm_ = arena.take({N, d});
  rstd_ = arena.take({N});
  middle_ = arena.take({N, d});
  branch_ = arena.take({N, d});
  token_ids_ = arena.take({N}, DType::I32);
  mlp_[0].plan_activations(arena, 1, N);
  for (size_t layer = 1; layer < mlp_.size(); ++layer) mlp_[layer].share_activations(mlp_[0]);
  int64_t scratch = 0;
  for (const auto& step : attention_) scratch = std::max(scratch, step->scratch_elements(N));
  scratch_ = arena.take({scratch});
  int64_t per_thread = 0, partial = 0;
  for (const auto& step : attention_) {
    per_thread = std::max(
        per_thread, step->attention_thread_elements(options_.block_tokens, options_.order, options_.cache_dtype));
    partial = std::max(partial, step->attention_partial_elements());
  }
  attention_workspace_ = {arena.take({threads, per_thread}), arena.take({ops::kDecodePartialStates, partial})};
  rope_cos_ = arena.take({cache_.max_context(), config().rope_dim() / 2});
  rope_sin_ = arena.take({cache_.max_context(), config().rope_dim() / 2});
  row_cos_ = arena.take({N, config().rope_dim() / 2});
  row_sin_ = arena.take({N, config().rope_dim() / 2});
}

void Decoder::append(const std::vector<SlotToken>& tokens, const Tensor& hidden) {
  const int64_t total = int64_t(tokens.size());
  T6_ASSERT(hidden.numel() == total * config().n_embd);
  const Tensor rows = hidden.view({total, config().n_embd});
  for (int64_t begin = 0; begin < total; begin += options_.max_rows) {
    const int64_t count = std::min(options_.max_rows, total - begin);
    append_chunk(tokens.data() + begin, count, rows.rows(begin, begin + count));
  }
}

void Decoder::append_chunk(const SlotToken* tokens, int64_t N, const Tensor& hidden) {
  StepRows& rows = rows_;
  rows.slot.clear(), rows.position.clear(), rows.length.clear();
  std::vector<int64_t>& length = length_;
  for (int64_t slot = 0; slot < cache_.slots(); ++slot) length[size_t(slot)] = cache_.length(slot);
  for (int64_t i = 0; i < N; ++i) {
    const int64_t slot = tokens[i].slot;
    T6_ASSERT(slot >= 0 && slot < cache_.slots());
    T6_CHECK(length[size_t(slot)] < cache_.max_context(), "sequence ", slot, " would grow past the cache's ",
             cache_.max_context(), " positions (raise --max-context)");
    T6_CHECK(tokens[i].token >= 0 && tokens[i].token < config().vocab_size, "token id ", tokens[i].token,
             " is outside the model's vocabulary of ", config().vocab_size);
    rows.slot.push_back(slot);
    rows.position.push_back(length[size_t(slot)]++);
    rows.length.push_back(length[size_t(slot)]);
    token_ids_.data<int32_t>()[i] = tokens[i].token;
    const int64_t half = config().rope_dim() / 2, position = rows.position.back();
    std::copy_n(rope_cos_.data<float>() + position * half, half, row_cos_.data<float>() + i * half);
    std::copy_n(rope_sin_.data<float>() + position * half, half, row_sin_.data<float>() + i * half);
  }
  const Tensor residual = residual_.rows(0, N), norm = norm_.rows(0, N), rstd = rstd_.rows(0, N);
  const Tensor branch = branch_.rows(0, N);
  // One set of activations for every layer; the second norm may overwrite the first, which the
  // attention has consumed by then.
  const BlockActivations activations{norm, rstd, middle_.rows(0, N), norm, rstd};
  const LayerContext block_context{1, N, row_cos_.rows(0, N), row_sin_.rows(0, N), scratch_, nullptr};
  ops::embedding_forward(residual, token_ids_.rows(0, N), embedding_);
  for (int64_t layer = 0; layer < config().n_layer; ++layer) {
    const StepContext context{rows, row_cos_.rows(0, N), row_sin_.rows(0, N), cache_, layer, options_.block_tokens,
                              options_.order, scratch_, attention_workspace_};
    transformer_block_forward(
        block_context, residual, residual, activations, branch,
        [&](const Tensor& normed, const Tensor& out) { attention_[size_t(layer)]->forward(context, normed, out); },
        mlp_[size_t(layer)]);
  }
  ops::rmsnorm_forward(hidden, rstd, residual);
  for (int64_t slot = 0; slot < cache_.slots(); ++slot) cache_.set_length(slot, length[size_t(slot)]);
}

std::string Decoder::describe_buffers() const {
  return str(format_bytes(buffer_bytes()), ", of which decode attention scratch ", format_bytes(attention_scratch_bytes()),
             " (", attention_threads(), " threads × ",
             format_bytes(attention_workspace_.per_thread.bytes() / size_t(attention_threads())), ", partial states ",
             format_bytes(attention_workspace_.partials.bytes()), ")");
}

void Decoder::logits(const Tensor& hidden, const Tensor& logits) const {
  linear_forward(logits, hidden, embedding_, hidden.numel() / config().n_embd);
}

}  // namespace t6::infer
