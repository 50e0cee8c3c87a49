#include "model/language_model.h"

#include <algorithm>
#include <utility>

#include "kernels/ops.h"
#include "model/linear.h"
#include "model/transformer_block.h"

namespace t6 {

namespace {
// Logits computed at once (256 MiB of fp32): bounds the head's memory independently of the batch.
// Every chunk makes BLAS pack the whole (vocab × d) head again, so fewer, larger chunks pay: going
// from 2^24 to 2^26 elements took the 16M-parameter benchmark step from 1.35k to 1.46k tokens/s.
constexpr int64_t kLogitsChunkElements = int64_t(1) << 26;
}  // namespace

LanguageModel::LanguageModel(ModelWeights weights, int64_t micro_batch, int64_t seq_len)
    : weights_(std::move(weights)), batch_(micro_batch), seq_len_(seq_len) {
  T6_CHECK(micro_batch >= 1 && seq_len >= 1, "micro-batch size and sequence length must be positive");
  for (int64_t layer = 0; layer < config().n_layer; ++layer) {
    attention_.push_back(make_attention_layer(weights_, layer));
    mlp_.emplace_back(weights_, layer);
  }
  const LocalParam& embedding = weights_.table().find("transformer.wte.weight");
  vocab_slice_ = {embedding.axis_offset, config().vocab_size};
  chunk_rows_ = std::clamp<int64_t>(kLogitsChunkElements / embedding.local_shape[0], 1, batch_ * seq_len_);
}

LanguageModel::ActivationPlan LanguageModel::planned_activations(const ModelConfig& config, int64_t micro_batch,
                                                                int64_t seq_len, int tp_rank, int tp_size,
                                                                Device device) {
  LanguageModel shapes(ModelWeights::shapes_only(config, tp_rank, tp_size, device), micro_batch, seq_len);
  ActivationPlan planned;
  planned.bytes = Arena::measured_bytes([&](Arena& arena) { shapes.plan(arena); });
  planned.scratch_bytes = shapes.scratch_bytes();
  return planned;
}

LanguageModel::LanguageModel(const ModelConfig& config, int64_t micro_batch, int64_t seq_len, Communicator* tp,
                             int64_t pad_multiple, bool with_gradients, Device device)
    : LanguageModel(
          ModelWeights(config, tp ? tp->rank() : 0, tp ? tp->size() : 1, pad_multiple, with_gradients, device),
          micro_batch, seq_len) {
  activations_ = Arena([this](Arena& arena) { plan(arena); }, device);
  context_ = {batch_, seq_len_, rope_cos_, rope_sin_, scratch_, tp, {}};
  ops::rope_tables(rope_cos_, rope_sin_);
}

void LanguageModel::plan(Arena& arena) {
  const int64_t N = batch_ * seq_len_, d = config().n_embd, L = config().n_layer;
  const DType matmul_dtype = weights_.matmul_dtype();
  residual_.clear(), middle_.clear(), norm1_.clear(), rstd1_.clear(), norm2_.clear(), rstd2_.clear();
  for (int64_t layer = 0; layer <= L; ++layer) residual_.push_back(arena.take({N, d}));
  int64_t scratch_elements = head_scratch_elements();
  for (int64_t layer = 0; layer < L; ++layer) {
    middle_.push_back(arena.take({N, d}));
    norm1_.push_back(arena.take({N, d}, matmul_dtype));
    rstd1_.push_back(arena.take({N}));
    norm2_.push_back(arena.take({N, d}, matmul_dtype));
    rstd2_.push_back(arena.take({N}));
    attention_[layer]->plan_activations(arena, batch_, seq_len_);
    mlp_[layer].plan_activations(arena, batch_, seq_len_);
    scratch_elements = std::max({scratch_elements, attention_[layer]->scratch_elements(batch_, seq_len_),
                                 mlp_[layer].scratch_elements(batch_, seq_len_)});
  }
  final_norm_ = arena.take({N, d}, matmul_dtype);
  final_rstd_ = arena.take({N});
  branch_out_ = arena.take({N, d});
  d_residual_ = arena.take({N, d});
  d_norm_ = arena.take({N, d});
  logits_chunk_ = arena.take({chunk_rows_, vocab_columns()});
  row_losses_ = arena.take({N});
  row_stats_ = arena.take({4, chunk_rows_});
  loss_total_ = arena.take({1}, DType::F64);
  scratch_ = arena.take({scratch_elements});
  rope_cos_ = arena.take({seq_len_, config().rope_dim() / 2});
  rope_sin_ = arena.take({seq_len_, config().rope_dim() / 2});
}

int64_t LanguageModel::head_scratch_elements() const {
  ScratchCursor cursor;
  matmul_operand_space(Tensor(nullptr, {chunk_rows_, vocab_columns()}, DType::F32), weights_.matmul_dtype(), cursor);
  return cursor.used();
}

void LanguageModel::forward_blocks(const Tensor& inputs) {
  T6_CHECK(inputs.numel() == batch_ * seq_len_, "model: expected a batch of ", batch_, " × ", seq_len_, " tokens");
  ops::embedding_forward(residual_[0], inputs, weights_.param("transformer.wte.weight"), vocab_slice_);
  reduce_over_tp(context_, residual_[0]);  // each rank looked up only the tokens of its rows
  for (size_t layer = 0; layer < mlp_.size(); ++layer) {
    const BlockActivations saved{norm1_[layer], rstd1_[layer], middle_[layer], norm2_[layer], rstd2_[layer]};
    transformer_block_forward(
        context_, residual_[layer], residual_[layer + 1], saved, branch_out_,
        [&](const Tensor& normed, const Tensor& branch) { attention_[layer]->forward(context_, normed, branch); },
        mlp_[layer]);
  }
  ops::rmsnorm_forward(final_norm_, final_rstd_, residual_.back());
}

void LanguageModel::head_loss(const Tensor& targets, bool train, float loss_scale, Tensor loss_total,
                              double loss_weight, bool accumulate) {
  const int64_t N = batch_ * seq_len_;
  const Tensor head = weights_.matmul_param("transformer.wte.weight");
  const Tensor head_grad = weights_.grad("transformer.wte.weight");
  const bool vocab_split = context_.tp && context_.tp->size() > 1;
  const float dloss = loss_scale / float(N);  // the loss is the mean over the micro-batch's rows
  for (int64_t begin = 0; begin < N; begin += chunk_rows_) {
    const int64_t end = std::min(N, begin + chunk_rows_), rows = end - begin;
    const Tensor logits = logits_chunk_.rows(0, rows), x = final_norm_.rows(begin, end);
    const Tensor chunk_targets = targets.view({N}).rows(begin, end);
    // Per row: this rank's maximum, the maximum over all ranks, and (side by side, so that one
    // reduction carries both) the exp sums and the target logit.
    const auto stats = [&](int64_t first_row, Shape shape) {
      return Tensor(row_stats_.data<float>() + first_row * chunk_rows_, shape, DType::F32, row_stats_.device());
    };
    const Tensor local_max = stats(0, {rows});
    const Tensor row_max = vocab_split ? stats(1, {rows}) : local_max;
    const Tensor sums = stats(2, {2, rows});
    const Tensor sum_exp = sums.rows(0, 1).view({rows}), target_logit = sums.rows(1, 2).view({rows});
    linear_forward(logits, x, head, rows);
    ops::cross_entropy_exp_sum(local_max, sum_exp, target_logit, logits, chunk_targets, vocab_slice_);
    if (vocab_split) {
      ops::copy(row_max, local_max);
      context_.tp->all_reduce(row_max, ReduceOp::Max);
      ops::cross_entropy_rescale(sum_exp, local_max, row_max);
      context_.tp->all_reduce(sums, ReduceOp::Sum);
    }
    ops::cross_entropy_losses(row_losses_.rows(begin, end), row_max, sum_exp, target_logit);
    if (!train) continue;
    // logits → dlogits, then this rank's columns' share of the input gradient and the head gradient.
    ops::cross_entropy_gradient(logits, chunk_targets, local_max, row_max, sum_exp, dloss, vocab_slice_);
    // The fp32 dlogits enter the matmuls as the head's type (a bf16 copy in the scratch on the CUDA
    // backend; the layers' backward, which shares the scratch, runs after the head).
    ScratchCursor cursor(scratch_);
    const Tensor dlogits = as_matmul_operand(logits, head.dtype(), cursor);
    linear_backward(d_norm_.rows(begin, end), head_grad, dlogits, x, head, rows, false);
  }
  if (train) reduce_over_tp(context_, d_norm_);  // each rank's head columns gave a partial input gradient
  ops::sum_into(loss_total, row_losses_, loss_weight / double(N), accumulate);
}

float LanguageModel::read_loss_total() {
  double loss = 0;
  ops::copy(Tensor(&loss, {1}, DType::F64), loss_total_);
  ops::wait_for_ops(loss_total_.device());
  return float(loss);
}

void LanguageModel::backward_blocks(const Tensor& inputs) {
  ops::fill_zero(d_residual_);
  ops::rmsnorm_backward(d_residual_, d_norm_, residual_.back(), final_rstd_);
  for (size_t layer = mlp_.size(); layer-- > 0;) {
    // d_residual_ holds d loss / d residual_[layer + 1]; both branches add into it on the way down.
    mlp_[layer].backward(context_, norm2_[layer], d_residual_, d_norm_);
    reduce_over_tp(context_, d_norm_);
    ops::rmsnorm_backward(d_residual_, d_norm_, middle_[layer], rstd2_[layer]);
    attention_[layer]->backward(context_, norm1_[layer], d_residual_, d_norm_);
    reduce_over_tp(context_, d_norm_);
    ops::rmsnorm_backward(d_residual_, d_norm_, residual_[layer], rstd1_[layer]);
    if (gradients_ready_) gradients_ready_(weights_.table().first_param_of_layer(int64_t(layer)));
  }
  ops::embedding_backward(weights_.grad("transformer.wte.weight"), d_residual_, inputs, vocab_slice_);
  if (gradients_ready_) gradients_ready_(0);
}

void LanguageModel::forward_backward(const Tensor& inputs, const Tensor& targets, float loss_scale, Tensor loss_total,
                                     bool accumulate) {
  T6_CHECK(weights_.has_gradients(), "forward_backward needs a model built with gradients");
  forward_blocks(inputs);
  head_loss(targets, true, loss_scale, loss_total, loss_scale, accumulate);
  backward_blocks(inputs);
}

float LanguageModel::forward_backward(const Tensor& inputs, const Tensor& targets, float loss_scale) {
  T6_CHECK(weights_.has_gradients(), "forward_backward needs a model built with gradients");
  forward_blocks(inputs);
  head_loss(targets, true, loss_scale, loss_total_, 1.0, false);
  backward_blocks(inputs);
  return read_loss_total();
}

float LanguageModel::forward_loss(const Tensor& inputs, const Tensor& targets) {
  forward_blocks(inputs);
  head_loss(targets, false, 0.0f, loss_total_, 1.0, false);
  return read_loss_total();
}

void LanguageModel::forward_logits(const Tensor& inputs, const Tensor& logits) {
  T6_CHECK(!context_.tp || context_.tp->size() == 1, "forward_logits returns whole rows of logits: run it with tp = 1");
  forward_blocks(inputs);
  linear_forward(logits, final_norm_, weights_.matmul_param("transformer.wte.weight"), batch_ * seq_len_);
}

}  // namespace t6
