#include "infer/decoder.h"

#include <omp.h>

#include <algorithm>
#include <utility>

#include "core/device_memory.h"
#include "infer/byte_size.h"
#include "kernels/ops.h"
#include "model/linear.h"
#include "model/transformer_block.h"

namespace t6::infer {

Decoder::Decoder(const ModelWeights& weights, int64_t slots, int64_t max_context, const DecodeOptions& options)
    : weights_(weights),
      options_(options),
      cache_(weights.config(), slots, max_context, options.cache_dtype, weights.device()),
      embedding_(weights.param("transformer.wte.weight")) {
  T6_CHECK(weights.table().tp_size() == 1, "generation runs the whole model in one process (tp = 1)");
  T6_CHECK(options.block_tokens >= 1 && options.max_rows >= 1, "decode block and row counts must be positive");
  if (device() == Device::CUDA) {
    T6_CHECK(!config().latent_attention(),
             "MLA decodes on the CPU only (--backend cpu): its absorbed query and value maps run on the host");
    T6_CHECK(options.order == TpaDecodeOrder::factorised,
             "the CUDA backend decodes TPA in the factorised order only (--decode-order factorised)");
  }
  for (int64_t layer = 0; layer < config().n_layer; ++layer) {
    attention_.push_back(make_attention_step(weights, layer));
    mlp_.emplace_back(weights, layer);
  }
  rows_.slot.reserve(size_t(options.max_rows));
  rows_.position.reserve(size_t(options.max_rows));
  rows_.length.reserve(size_t(options.max_rows));
  length_.resize(size_t(slots));
  head_rows_ = std::min(slots, options.max_rows);
  const int64_t threads = omp_get_max_threads();
  buffers_ = Arena([this, threads](Arena& arena) { plan(arena, threads); }, device());
  tables_ = Arena([this](Arena& arena) {
    rope_cos_ = arena.take({cache_.max_context(), config().rope_dim() / 2});
    rope_sin_ = arena.take({cache_.max_context(), config().rope_dim() / 2});
  });
  ops::rope_tables(rope_cos_, rope_sin_);
  plan_staging();
}

void Decoder::plan(Arena& arena, int64_t threads) {
  const int64_t N = options_.max_rows, d = config().n_embd;
  const bool on_device = device() == Device::CUDA;
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
  // A GPU's pieces keep their blocks in shared memory: only the partial states are planned there,
  // more of them than the CPU's, as they are the thread blocks of a long row.
  attention_workspace_ = {
      on_device ? Tensor() : arena.take({threads, per_thread}),
      arena.take({on_device ? ops::kDeviceDecodePartialStates : ops::kDecodePartialStates, partial})};
  row_cos_ = arena.take({N, config().rope_dim() / 2});
  row_sin_ = arena.take({N, config().rope_dim() / 2});
  if (on_device) {
    hidden_ = arena.take({N, d});
    head_hidden_ = arena.take({head_rows_, d});
    head_logits_ = arena.take({head_rows_, config().vocab_size});
  }
}

void Decoder::plan_staging() {
  if (device() == Device::CPU) {
    staged_ids_ = token_ids_, staged_cos_ = row_cos_, staged_sin_ = row_sin_;
    return;
  }
  const int64_t N = options_.max_rows, half = config().rope_dim() / 2;
  staging_ = PinnedHostBuffer(size_t(N) * (sizeof(int32_t) + 2 * size_t(half) * sizeof(float)));
  char* at = static_cast<char*>(staging_.data());
  staged_cos_ = Tensor(at, {N, half}, DType::F32);
  staged_sin_ = Tensor(at + N * half * int64_t(sizeof(float)), {N, half}, DType::F32);
  staged_ids_ = Tensor(at + 2 * N * half * int64_t(sizeof(float)), {N}, DType::I32);
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
  // The previous chunk's copies out of the staging memory have run before it is written again.
  ops::wait_for_ops(device());
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
    staged_ids_.data<int32_t>()[i] = tokens[i].token;
    const int64_t half = config().rope_dim() / 2, position = rows.position.back();
    std::copy_n(rope_cos_.data<float>() + position * half, half, staged_cos_.data<float>() + i * half);
    std::copy_n(rope_sin_.data<float>() + position * half, half, staged_sin_.data<float>() + i * half);
  }
  if (device() == Device::CUDA)
    for (const auto& [to, from] : {std::pair(token_ids_, staged_ids_), std::pair(row_cos_, staged_cos_),
                                   std::pair(row_sin_, staged_sin_)})
      ops::copy(to.rows(0, N), from.rows(0, N));
  const Tensor residual = residual_.rows(0, N), norm = norm_.rows(0, N), rstd = rstd_.rows(0, N);
  const Tensor branch = branch_.rows(0, N);
  // One set of activations for every layer; the second norm may overwrite the first, which the
  // attention has consumed by then.
  const BlockActivations activations{norm, rstd, middle_.rows(0, N), norm, rstd};
  const LayerContext block_context{1, N, row_cos_.rows(0, N), row_sin_.rows(0, N), scratch_, nullptr, {}};
  ops::embedding_forward(residual, token_ids_.rows(0, N), embedding_);
  for (int64_t layer = 0; layer < config().n_layer; ++layer) {
    const StepContext context{rows, row_cos_.rows(0, N), row_sin_.rows(0, N), cache_, layer, options_.block_tokens,
                              options_.order, scratch_, attention_workspace_};
    transformer_block_forward(
        block_context, residual, residual, activations, branch,
        [&](const Tensor& normed, const Tensor& out) { attention_[size_t(layer)]->forward(context, normed, out); },
        mlp_[size_t(layer)]);
  }
  if (hidden.device() == device()) {
    ops::rmsnorm_forward(hidden, rstd, residual);
  } else {
    ops::rmsnorm_forward(hidden_.rows(0, N), rstd, residual);
    copy_tensor(hidden, hidden_.rows(0, N));
  }
  for (int64_t slot = 0; slot < cache_.slots(); ++slot) cache_.set_length(slot, length[size_t(slot)]);
}

std::string Decoder::describe_buffers() const {
  if (attention_threads() == 0)
    return str(format_bytes(buffer_bytes()), " on the GPU, of which decode attention partial states ",
               format_bytes(attention_workspace_.partials.bytes()));
  return str(format_bytes(buffer_bytes()), ", of which decode attention scratch ", format_bytes(attention_scratch_bytes()),
             " (", attention_threads(), " threads × ",
             format_bytes(attention_workspace_.per_thread.bytes() / size_t(attention_threads())), ", partial states ",
             format_bytes(attention_workspace_.partials.bytes()), ")");
}

void Decoder::logits(const Tensor& hidden, const Tensor& logits) const {
  const int64_t N = hidden.numel() / config().n_embd, d = config().n_embd, V = config().vocab_size;
  if (hidden.device() == device()) return linear_forward(logits, hidden, embedding_, N);
  // Host rows on a GPU decoder: through the planned head buffers, head_rows_ at a time.
  const Tensor hidden_rows = hidden.view({N, d}), logit_rows = logits.view({N, V});
  for (int64_t begin = 0; begin < N; begin += head_rows_) {
    const int64_t count = std::min(head_rows_, N - begin);
    copy_tensor(head_hidden_.rows(0, count), hidden_rows.rows(begin, begin + count));
    linear_forward(head_logits_.rows(0, count), head_hidden_.rows(0, count), embedding_, count);
    copy_tensor(logit_rows.rows(begin, begin + count), head_logits_.rows(0, count));
  }
}

}  // namespace t6::infer
