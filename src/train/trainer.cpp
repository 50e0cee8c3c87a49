#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/log.h"

namespace t6 {

namespace {

int64_t checked_local_sequences(const RunConfig& config, int dp_size) {
  const TrainConfig& train = config.train;
  const int64_t per_micro_step = train.micro_batch_size * dp_size;
  T6_CHECK(train.global_batch_size % per_micro_step == 0, "train.global_batch_size (", train.global_batch_size,
           ") must be a multiple of train.micro_batch_size (", train.micro_batch_size, ") × DP size (", dp_size,
           ") = ", per_micro_step);
  return train.global_batch_size / dp_size;
}

AdamWSettings adamw_settings(const TrainConfig& train) {
  return {float(train.beta1), float(train.beta2), float(train.eps), float(train.weight_decay)};
}

std::string format_duration(double seconds) {
  const int64_t total = int64_t(seconds);
  return str(total / 3600, "h", (total / 60) % 60 < 10 ? "0" : "", (total / 60) % 60, "m");
}

}  // namespace

Trainer::Trainer(const RunConfig& config, ProcessGrid& grid, const std::string& run_dir)
    : config_(config),
      grid_(grid),
      run_dir_(run_dir),
      local_sequences_(checked_local_sequences(config, grid.dp_size())),
      micro_steps_(local_sequences_ / config.train.micro_batch_size),
      eval_batches_(0),
      loader_(config.data.path, config.train.seq_len, config.train.seed),
      model_(config.model, config.train.micro_batch_size, config.train.seq_len, &grid.tp(),
             config.parallel.zero1 ? grid.dp_size() : 1),
      optimizer_(model_.weights(), adamw_settings(config.train), &grid.tp(), &grid.dp(), config.parallel.zero1),
      inputs_(size_t(local_sequences_ * config.train.seq_len)),
      targets_(size_t(local_sequences_ * config.train.seq_len)) {
  T6_CHECK(loader_.vocab_size() <= config.model.vocab_size, config.data.path, ": the corpus' tokenizer has ",
           loader_.vocab_size(), " tokens but model.vocab_size is ", config.model.vocab_size);
  if (config.eval.interval > 0) {
    const int64_t available = loader_.val_windows() / config.train.global_batch_size;
    T6_CHECK(available >= 1, config.data.path, ": the validation split holds ", loader_.val_windows(),
             " windows of ", config.train.seq_len + 1, " tokens, fewer than one global batch (",
             config.train.global_batch_size, "); write more validation data or set eval.interval = 0");
    eval_batches_ = std::min(config.eval.batches, available);
    if (eval_batches_ < config.eval.batches)
      log_info("warning: eval.batches lowered from ", config.eval.batches, " to ", eval_batches_,
               ": the validation split holds only that many global batches");
  }
  model_.weights().initialise(config.train.seed);
  std::filesystem::create_directories(run_dir);
  if (grid.world_rank() == 0) metrics_ = std::make_unique<MetricsLog>(run_dir + "/metrics.jsonl", -1);
  print_startup_table();
}

void Trainer::print_startup_table() const {
  const ModelConfig& m = config_.model;
  const TrainConfig& t = config_.train;
  log_info("t6_pretrain: ", model_kind_name(m.kind), " L", m.n_layer, " d", m.n_embd, " H", m.n_head, " D", m.head_dim,
           m.factorised_query() ? str(" Rq", m.q_rank) : "", m.factorised_kv() ? str(" R", m.rank) : "",
           m.kind == ModelKind::llama_gqa ? str(" group", m.group_size) : "", " V", m.vocab_size, " | ",
           double(m.parameter_count()) / 1e6, "M parameters");
  log_info("  layout      world ", grid_.world_size(), " = TP ", grid_.tp_size(), " × DP ", grid_.dp_size(),
           config_.parallel.zero1 ? " (ZeRO-1)" : "", ", backend CPU fp32");
  log_info("  batch       ", t.global_batch_size, " × ", t.seq_len, " = ", t.global_batch_size * t.seq_len,
           " tokens/step; ", micro_steps_, " micro-batches of ", t.micro_batch_size, " per rank");
  log_info("  optimizer   AdamW lr ", t.lr, " → ", t.min_lr, ", warmup ", t.warmup_steps, ", decay to step ",
           config_.lr_schedule().lr_decay_steps, ", wd ", t.weight_decay, ", clip ", t.grad_clip);
  log_info("  data        ", config_.data.path, ": ", loader_.train_tokens(), " train / ", loader_.val_tokens(), " val tokens");
  log_info("  memory      ", double(model_.activation_bytes()) / (1 << 20), " MiB activations, ",
           double(model_.weights().padded_numel()) * 16 / (1 << 20), " MiB weights+grads+AdamW per rank");
  log_info("  run         ", run_dir_, ", ", t.max_steps, " steps, eval every ", config_.eval.interval, " (",
           eval_batches_, " batches)");
}

Trainer::StepStats Trainer::train_step() {
  const int64_t T = config_.train.seq_len, B = config_.train.micro_batch_size;
  loader_.read_train(step_, grid_.dp_rank() * local_sequences_, local_sequences_, inputs_.data(), targets_.data());
  model_.weights().zero_grads();
  double loss = 0;
  for (int64_t micro = 0; micro < micro_steps_; ++micro) {
    const Tensor inputs(inputs_.data() + micro * B * T, {B, T}, DType::I32);
    const Tensor targets(targets_.data() + micro * B * T, {B, T}, DType::I32);
    loss += model_.forward_backward(inputs, targets, 1.0f / float(micro_steps_));
  }
  loss /= double(micro_steps_);
  grid_.dp().all_reduce(Tensor(&loss, {1}, DType::F64), ReduceOp::Avg);
  const double lr = config_.lr_schedule().at(step_);
  const double grad_norm = optimizer_.step(float(lr), config_.train.grad_clip);
  ++step_;
  return {loss, grad_norm, lr};
}

double Trainer::evaluate() {
  const int64_t T = config_.train.seq_len, B = config_.train.micro_batch_size;
  double loss = 0;
  for (int64_t batch = 0; batch < eval_batches_; ++batch) {
    const int64_t first = batch * config_.train.global_batch_size + grid_.dp_rank() * local_sequences_;
    loader_.read_val(first, local_sequences_, inputs_.data(), targets_.data());
    for (int64_t micro = 0; micro < micro_steps_; ++micro) {
      loss += model_.forward_loss(Tensor(inputs_.data() + micro * B * T, {B, T}, DType::I32),
                                  Tensor(targets_.data() + micro * B * T, {B, T}, DType::I32));
    }
  }
  loss /= double(eval_batches_ * micro_steps_);
  grid_.dp().all_reduce(Tensor(&loss, {1}, DType::F64), ReduceOp::Avg);
  return loss;
}

void Trainer::log_step(const StepStats& stats, double step_seconds) {
  const int64_t tokens = config_.train.global_batch_size * config_.train.seq_len;
  const double tokens_per_s = double(tokens) / step_seconds;
  if (metrics_)
    metrics_->write({{"step", step_}, {"loss", stats.loss}, {"lr", stats.lr}, {"grad_norm", stats.grad_norm},
                     {"tokens_per_s", tokens_per_s}, {"elapsed_s", elapsed_seconds_}});
  if (step_ % config_.log.interval == 0 || step_ == config_.train.max_steps) {
    const double eta = elapsed_seconds_ / double(step_) * double(config_.train.max_steps - step_);
    log_info(str("step ", step_, "/", config_.train.max_steps, " | loss ", stats.loss, " | lr ", stats.lr, " | grad norm ",
                 stats.grad_norm, " | ", int64_t(tokens_per_s), " tok/s | ", int64_t(step_seconds * 1000), " ms | ETA ",
                 format_duration(eta)));
  }
}

void Trainer::run() {
  using clock = std::chrono::steady_clock;
  while (step_ < config_.train.max_steps) {
    const auto start = clock::now();
    const StepStats stats = train_step();
    const double seconds = std::chrono::duration<double>(clock::now() - start).count();
    elapsed_seconds_ += seconds;
    T6_CHECK(std::isfinite(stats.loss), "the loss is ", stats.loss, " at step ", step_,
             ": training diverged (lower train.lr or check the data)");
    log_step(stats, seconds);
    const bool last = step_ == config_.train.max_steps;
    if (config_.eval.interval > 0 && (step_ % config_.eval.interval == 0 || last)) {
      const double val_loss = evaluate();
      log_info("step ", step_, " | val loss ", val_loss);
      if (metrics_) metrics_->write({{"step", step_}, {"val_loss", val_loss}});
    }
  }
}

}  // namespace t6
