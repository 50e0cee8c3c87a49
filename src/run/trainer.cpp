#include "run/trainer.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>

#include "core/cpu_threads.h"
#include "core/durable_file.h"
#include "core/log.h"
#include "core/process_memory.h"
#include "kernels/device.h"
#include "kernels/peak_flops.h"
#include "parallel/collective_deadline.h"
#include "parallel/cuda_training_status.h"
#include "parallel/rank_failure.h"
#include "train/config_report.h"
#include "train_state/train_checkpoint.h"

namespace t6 {

namespace {

volatile std::sig_atomic_t stop_signal = 0;

void on_stop_signal(int signal) { stop_signal = signal; }

// What a rank will allocate, refused in one error naming the keys to lower when the ranks of this
// node would not fit in its memory (collective: the ranks find their node's count).
RankMemory checked_rank_memory(const RunConfig& config, ProcessGrid& grid) {
  int32_t ranks_on_node = grid.local_rank() + 1;
  grid.world().all_reduce(Tensor(&ranks_on_node, {1}, DType::I32), ReduceOp::Max);
  const RankMemory memory = plan_rank_memory(config, grid.world_size());
  check_rank_memory_fits(memory, double(physical_memory_bytes()), ranks_on_node);
  return memory;
}

const std::string& checked_data_path(const RunConfig& config) {
  T6_CHECK(!config.data.path.empty(), "data.path is empty: set it to a corpus directory written by t6_preprocess, in the "
           "config's [data] section or with --set data.path=DIR");
  return config.data.path;
}

// The config, once parallel.timeout_s is the collectives' deadline: set before the first member's
// collective (the run directory's, the checkpointer's), so a rank stuck during start-up (a hung
// filesystem) ends the job within the timeout too, not after the 600 s default.
const RunConfig& with_collective_timeout(const RunConfig& config) {
  set_collective_timeout(config.parallel.timeout_s);
  return config;
}

AdamWSettings adamw_settings(const TrainConfig& train) {
  return {float(train.beta1), float(train.beta2), float(train.eps), float(train.weight_decay)};
}

Device device_of(const BackendChoice& backend) { return backend.backend == Backend::cuda ? Device::CUDA : Device::CPU; }

// Refuses, before any device arena exists, a model whose weights, gradients and AdamW state alone
// do not fit in the GPU's free memory (the activations' arena then says for itself if it does not).
// Collective: when a rank lacks room, every rank fails with the lowest such rank's figures.
const BackendChoice& with_room_for_state(const BackendChoice& backend, const RunConfig& config, ProcessGrid& grid) {
  std::string failure;
  if (backend.backend == Backend::cuda) {
    const RankMemory planned = plan_rank_memory(config, grid.world_size(), Device::CUDA);  // as --plan's
    const double needed = (planned.weights + planned.gradients + planned.optimizer) / double(1 << 20);
    const double free = double(cuda_free_bytes()) / double(1 << 20);
    if (needed > free)
      failure = str("parallel.backend = \"cuda\": the model's weights, gradients and AdamW state need ", needed,
                    " MiB on its GPU but only ", free, " MiB are free; use more TP ranks, ZeRO-1 over more DP ranks, ",
                    "or a smaller model");
  }
  throw_if_any_rank_failed(grid.world(), failure);
  return backend;
}

// "2h05m", "4m12s" or "35s": minutes alone would show a short run's ETA as 0h00m.
std::string format_duration(double seconds) {
  const int64_t total = int64_t(seconds + 0.5);
  const auto two_digits = [](int64_t n) { return str(n < 10 ? "0" : "", n); };
  if (total >= 3600) return str(total / 3600, "h", two_digits((total / 60) % 60), "m");
  if (total >= 60) return str(total / 60, "m", two_digits(total % 60), "s");
  return str(total, "s");
}

}  // namespace

void install_stop_signal_handlers() {
  for (int signal : {SIGTERM, SIGINT, SIGUSR1}) std::signal(signal, on_stop_signal);
}

Trainer::Trainer(const RunConfig& config, ProcessGrid& grid, const std::string& run_dir, ResumeMode resume,
                 const std::vector<std::string>& allowed_changes)
    : config_(with_collective_timeout(config)),
      grid_(grid),
      backend_(with_room_for_state(choose_backend({config.parallel.backend, config.parallel.communicator}, grid.world(),
                                                  grid.local_rank(), /*caller_runs_on_cuda=*/true),  // every kind, every layout
                                   config, grid)),
      run_dir_(run_dir),
      // A relaunch waits this long for a killed job's ranks to exit; the other ranks wait for rank 0
      // meanwhile, so the wait stays well inside the collective timeout.
      run_directory_(run_dir, grid.world(), resume == ResumeMode::from_config && config.checkpoint.resume == "never",
                     std::min(30.0, 0.5 * config.parallel.timeout_s)),
      share_(batch_share(config.train, grid.dp_rank(), grid.dp_size())),
      memory_(checked_rank_memory(config, grid)),
      eval_batches_(0),
      loader_(checked_data_path(config), config.train.seq_len, config.train.seed, config.data.max_open_shards),
      prefetcher_(loader_, share_.first_sequence, share_.sequences, config.train.seq_len, config.data.prefetch),
      device_groups_(grid, backend_),
      watchdog_(device_groups_.watched()),
      model_(config.model, share_.micro_batch, config.train.seq_len, &device_groups_.tp(),
             config.parallel.zero1 ? grid.dp_size() : 1, true, device_of(backend_)),
      optimizer_(model_.weights(), adamw_settings(config.train), {&device_groups_.tp(), &device_groups_.dp()},
                 {&grid.tp(), &grid.dp()}, config.parallel.zero1, dp_bucket_elements(config.parallel.bucket_mib)),
      step_buffers_(device_of(backend_), share_.sequences * config.train.seq_len),
      staging_(model_.weights(), optimizer_.adamw(), optimizer_.state_begin(), optimizer_.state_end()),
      checkpointer_(std::filesystem::path(run_dir) / "checkpoints", int(config.checkpoint.keep), grid) {
  set_progress_label("start-up");
  model_.set_gradients_ready([this](int64_t first_param) { optimizer_.gradients_final_from(first_param); });
  T6_CHECK(loader_.vocab_size() <= config.model.vocab_size, config.data.path, ": the corpus' tokenizer has ",
           loader_.vocab_size(), " tokens but model.vocab_size is ", config.model.vocab_size);
  if (config.eval.interval > 0) {
    const int64_t available = loader_.val_windows() / config.train.global_batch_size;
    T6_CHECK(available >= 1, config.data.path, ": the validation split holds ", loader_.val_windows(),
             " windows of ", config.train.seq_len + 1, " tokens, fewer than one global batch (",
             config.train.global_batch_size, "); write more validation data or set eval.interval = 0");
    eval_batches_ = config.eval.batches == 0 ? available : std::min(config.eval.batches, available);
    if (eval_batches_ < config.eval.batches)
      log_info("warning: eval.batches lowered from ", config.eval.batches, " to ", eval_batches_,
               ": the validation split holds only that many global batches");
  }
  model_.weights().initialise(config.train.seed);  // drawn on the host, uploaded to a device
  const std::optional<checkpoint::ResumePoint> point = find_resume_point(resume);
  if (point) resume_from(*point, allowed_changes);
  if (grid.world_rank() == 0)
    metrics_ = std::make_unique<MetricsLog>(run_dir + "/metrics.jsonl", point ? step_ : -1,
                                            config.log.tensorboard ? std::filesystem::path(run_dir) / "tensorboard"
                                                                   : std::filesystem::path());
  // Every rank measures at once, so each sees the cores as shared during training.
  double rank_peak = config.log.peak_flops;
  peak_flops_source_ = "log.peak_flops";
  int32_t under_load = 0;
  if (rank_peak == 0 && backend_.backend == Backend::cuda) {
    // The rate the step's bf16 matmuls reach at best; a GPU is not shared with other jobs' threads.
    rank_peak = measured_cuda_bf16_gemm_flops();
    peak_flops_source_ = "measured bf16 GEMM on the GPU";
  } else if (rank_peak == 0) {
    // More runnable tasks than cores before we measure: other jobs share the cores, the measured
    // peak is a fraction of the machine's and the MFU above it overstated, which every line says.
    under_load = load_average() > double(available_cores());
    rank_peak = measured_cpu_sgemm_flops();
    peak_flops_source_ = "measured SGEMM";
  }
  peak_flops_ = rank_peak;
  grid.world().all_reduce(Tensor(&peak_flops_, {1}, DType::F64), ReduceOp::Sum);
  grid.world().all_reduce(Tensor(&under_load, {1}, DType::I32), ReduceOp::Max);
  peak_measured_under_load_ = under_load != 0;
  if (peak_measured_under_load_) peak_flops_source_ += str(" under load: load average ", load_average(), " on ", available_cores(), " cores");
  if (config.log.sample_interval > 0)
    samples_ = std::make_unique<SampleGenerations>(config_, grid, staging_.weights());
  keep_config_and_console_log();
  print_startup_table();
}

// The run directory keeps what the run is (the resolved config, as resumed) and what it said.
void Trainer::keep_config_and_console_log() {
  if (grid_.world_rank() != 0) return;
  const std::filesystem::path dir(run_dir_);
  // The parameter count heads the file for tools comparing runs (t6_plot's legend and summary).
  write_file_atomically(dir / "config.toml", str("# parameters = ", config_.model.parameter_count(), "\n",
                                                 resolved_config_toml(config_)));
  copy_log_to_file(dir / "console.log");
}

std::optional<checkpoint::ResumePoint> Trainer::find_resume_point(ResumeMode resume) {
  if (resume == ResumeMode::from_config && config_.checkpoint.resume == "never") return std::nullopt;
  auto point = checkpointer_.find_resume_point(resume == ResumeMode::latest);
  if (!point) log_info("no checkpoint in ", checkpointer_.dir().string(), ": starting from step 0");
  return point;
}

OptimizerShard Trainer::optimizer_shard() { return staging_.optimizer_shard(); }

void Trainer::resume_from(const checkpoint::ResumePoint& point, const std::vector<std::string>& allowed_changes) {
  TrainState run_state;
  record_corpus(run_state, config_.data.path);
  const TrainState state =
      load_training_checkpoint(point, config_, run_state, allowed_changes, staging_.weights(), optimizer_shard());
  staging_.upload();
  optimizer_.adamw().set_steps_taken(state.adam_steps);
  step_ = last_saved_step_ = state.step;
  tokens_seen_ = point.manifest.tokens_seen;
  elapsed_seconds_ = state.elapsed_seconds;
  skipped_steps_ = state.skipped_steps;
  skipped_in_a_row_ = state.skipped_in_a_row;
  // DESIGN.md: the LR curve already run is kept when max_steps is raised, unless the user sets it.
  if (config_.train.lr_decay_steps == 0) {
    config_.train.lr_decay_steps = state.lr_decay_steps;
    if (state.lr_decay_steps < config_.train.max_steps)
      log_info("note: train.max_steps = ", config_.train.max_steps, " goes past the checkpoint's decay end (step ",
               state.lr_decay_steps, ", kept so the curve already run does not bend): the LR stays at train.min_lr = ",
               config_.train.min_lr, " after it; set train.lr_decay_steps to decay over the longer run instead");
  }
  const checkpoint::CheckpointLayout& saved = point.manifest.layout;
  log_info("resumed from ", point.dir.string(), " at step ", step_, " (saved at TP ", saved.tp, " × DP ", saved.dp,
           saved.zero1 ? " ZeRO-1" : "", ")");
}

void Trainer::save_checkpoint() {
  set_progress_label(str("saving the checkpoint of step ", step_));
  prefetcher_.wait();  // serial HDF5: no batch read while the checkpoint is written
  watchdog_.watch([&] { staging_.download(); });  // waits for the last step's ZeRO-1 all-gather
  check_state_is_finite();
  TrainState state{step_, optimizer_.adamw().steps_taken(), config_.lr_schedule().lr_decay_steps, elapsed_seconds_,
                   "", "", skipped_steps_, skipped_in_a_row_};
  record_corpus(state, config_.data.path);
  const auto dir = checkpointer_.save({step_, tokens_seen_, {grid_.tp_size(), grid_.dp_size(), optimizer_.zero1()},
                                       config_.to_json(), to_json(state), train_checkpoint_tensors(config_.model)},
                                      staging_.weights(), optimizer_shard(), optimizer_.zero1());
  log_info("saved checkpoint ", dir.string());
  last_saved_step_ = step_;
}

void Trainer::count_skipped_step(const StepStats& stats) {
  if (!stats.skipped) {
    skipped_in_a_row_ = 0;
    return;
  }
  ++skipped_in_a_row_;
  const int64_t limit = config_.train.max_skipped_steps;
  log_info("warning: step ", step_, " skipped: loss ", stats.loss, ", gradient norm ", stats.grad_norm,
           " (non-finite gradient elements: ", stats.non_finite_grads, "); weights and optimizer state unchanged (",
           skipped_in_a_row_, " in a row, train.max_skipped_steps = ", limit, ")");
  if (skipped_in_a_row_ < limit) return;
  if (step_ != last_saved_step_) save_checkpoint();
  fail(str("training diverged: the loss or gradient norm was not finite in ", limit, " steps in a row (steps ",
           step_ - limit + 1, " to ", step_, "; lower train.lr or check the data); the state after step ",
           step_ - limit, ", unchanged since, is saved in ", checkpointer_.dir().string(), " as step ", step_));
}

// Every rank checks its weights and AdamW moments (as staged for the save), so a checkpoint never
// holds a NaN or inf.
void Trainer::check_state_is_finite() {
  const auto first_non_finite = [](const Tensor& tensor) {
    const float* values = tensor.data<float>();
    for (int64_t i = 0; i < tensor.numel(); ++i)
      if (!std::isfinite(values[i])) return i;
    return int64_t(-1);
  };
  std::string problem;
  ModelWeights& weights = staging_.weights();
  for (const LocalParam& entry : weights.table().params())
    if (first_non_finite(weights.param(entry)) >= 0) {
      problem = str(entry.spec.name, " holds a non-finite value");
      break;
    }
  const OptimizerShard moments = optimizer_shard();
  if (problem.empty() && (first_non_finite(moments.first_moment) >= 0 || first_non_finite(moments.second_moment) >= 0))
    problem = "an AdamW moment holds a non-finite value";
  if (const AgreedFailure agreed = agree_on_failure(grid_.world(), problem))
    throw RankError(agreed.rank, agreed.world_size,
                    str("refusing to save a checkpoint at step ", step_, ": ", agreed.message));
}

Trainer::StopRequest Trainer::stop_requested_on_any_rank() {
  int32_t requested[2] = {stop_signal != 0, !metrics_failure_.empty()};
  grid_.world().all_reduce(Tensor(requested, {2}, DType::I32), ReduceOp::Max);
  return {requested[0] != 0, requested[1] != 0};
}

void Trainer::write_metrics(const nlohmann::json& record) {
  if (!metrics_ || !metrics_failure_.empty()) return;
  try {
    metrics_->write(record);
  } catch (const Error& error) {
    metrics_failure_ = str(error.what(), " (", record.dump(), ")");
  }
}

// Training on without metrics would leave a hole in the run's record that no resume can fill, and a
// full disk would most likely fail the next save too. So the run stops at once, keeping the step
// just taken in a checkpoint when the disk still takes one.
void Trainer::stop_after_metrics_failure() {
  const std::string failure = broadcast_string(grid_.world(), metrics_failure_);
  std::string saved = str("a checkpoint of step ", step_, " is saved");
  if (step_ == last_saved_step_) {
    saved = str("the checkpoint of step ", step_, " was saved before");
  } else {
    try {
      save_checkpoint();
    } catch (const Error& error) {
      saved = str("the checkpoint of step ", step_, " could not be saved either (", error.what(),
                  "), the newest one is kept");
    }
  }
  fail(str("stopping at step ", step_, ": ", failure, "; ", saved, "; free space, then resume with --resume"));
}

void Trainer::print_startup_table() const {
  const ModelConfig& m = config_.model;
  const TrainConfig& t = config_.train;
  log_info("t6_pretrain: ", m.describe(), " | ", double(m.parameter_count()) / 1e6, "M parameters");
  log_info("  layout      world ", grid_.world_size(), " = TP ", grid_.tp_size(), " × DP ", grid_.dp_size(),
           config_.parallel.zero1 ? " (ZeRO-1)" : "");
  log_info("  backend     ", backend_.describe());
  if (backend_.gpus_left_idle) log_info(cuda_auto_fallback_warning());
  log_info("  batch       ", describe_batch_split(t, grid_.dp_size()));
  log_info("  optimizer   AdamW lr ", t.lr, " → ", t.min_lr, ", warmup ", t.warmup_steps, ", decay to step ",
           config_.lr_schedule().lr_decay_steps, ", wd ", t.weight_decay, ", clip ", t.grad_clip);
  log_info("  data        ", config_.data.path, ": ", loader_.train_tokens(), " train / ", loader_.val_tokens(),
           " val tokens; at most ", config_.data.max_open_shards, " shards open; prefetch ",
           config_.data.prefetch ? "on" : "off");
  const double MiB = double(1 << 20);
  if (backend_.backend == Backend::cuda) {
    const ModelWeights& weights = model_.weights();
    log_info("  device      GPU ", backend_.cuda_device, " (", backend_.device_name, ") per rank: ",
             double(weights.param_bytes()) / MiB, " MiB fp32 weights + ", double(weights.matmul_copy_bytes()) / MiB,
             " MiB bf16 copy, ", double(weights.grad_bytes()) / MiB, " MiB fp32 gradients, ",
             double(optimizer_.adamw().state_bytes()) / MiB, " MiB AdamW moments, ", double(model_.activation_bytes()) / MiB,
             " MiB activations (bf16 matmul inputs, fp32 residual stream and statistics; ",
             double(model_.scratch_bytes()) / MiB, " MiB layer scratch), ", double(cuda_workspace_bytes() + step_buffers_.device_bytes()) / MiB,
             " MiB workspace (cuBLASLt, batch, step scalars); ", double(cuda_free_bytes()) / MiB, " MiB left free");
  } else {
    log_info("  memory      ", memory_.describe(), " per rank (layer scratch: backward's gradients, the attention's ",
             "T×T scores; validation reads into the batches and activations)");
  }
  log_info("  peak        ", peak_flops_ / 1e9, " GFLOP/s over ", grid_.world_size(), " ranks (", peak_flops_source_, "); ",
           m.training_flops_per_token(t.seq_len) / 1e6, " MFLOP per token (6N + 12 L H D T)");
  log_info("  per step    tok/s = tokens / step time; MFU = FLOP per token x tok/s / peak; step time (max over "
           "ranks) = data + fwd+bwd + optimizer (each the max over ranks) + comm (collective time not hidden by them); "
           "peak RSS: largest host memory of a rank");
  log_info("  run         ", run_dir_, ", ", t.max_steps, " steps, ",
           config_.eval.interval > 0 ? str("eval every ", config_.eval.interval, " steps on ", validation_coverage())
                                     : std::string("no validation (eval.interval = 0)"));
  if (samples_) log_info("  samples     ", samples_->describe());
}

Trainer::StepStats Trainer::train_step() {
  if (step_hook_) step_hook_(step_ + 1);
  const int64_t T = config_.train.seq_len, B = share_.micro_batch;
  // Each phase is its wall time less the time in collectives during it; those add up to comm.
  using clock = std::chrono::steady_clock;
  StepTimes times;
  auto phase_start = clock::now();
  double communication_start = grid_.communication_seconds();
  const auto end_phase = [&](double& phase) {
    const auto now = clock::now();
    const double communication = grid_.communication_seconds() - communication_start;
    phase += std::chrono::duration<double>(now - phase_start).count() - communication;
    times.communication += communication;
    phase_start = now;
    communication_start += communication;
  };
  // The next step's batch is read while this one computes (none after the last step). The previous
  // step's synchronisation has finished every copy out of the host batch, so it can be overwritten.
  prefetcher_.take(step_, step_buffers_.host_inputs(), step_buffers_.host_targets(),
                   step_ + 1 < config_.train.max_steps ? step_ + 1 : -1);
  // From the upload to the synchronisation the device runs the step's collectives: NCCL's are kept
  // to parallel.timeout_s by the watchdog, since the host waits for them only in read_scalars().
  StepBuffers::Scalars scalars{};
  watchdog_.watch([&] {
    step_buffers_.upload();
    end_phase(times.data);
    // Everything up to read_scalars() is queued on the device without waiting for it; the times
    // below are the host's, so on a GPU the device's work shows in the phase that reads the scalars.
    model_.weights().zero_grads();
    // Weighted by this rank's share of the global batch, so that the DP mean is the global batch's mean;
    // loss_total gathers the micro-batches' losses with the same weights. The last micro-batch's
    // backward reduces each gradient bucket as it becomes final, unless a test's gradient hook must
    // see the gradients unreduced first.
    for (int64_t micro = 0; micro < share_.micro_steps; ++micro) {
      if (micro + 1 == share_.micro_steps && !gradient_hook_) optimizer_.begin_overlapped_reduction();
      model_.forward_backward(step_buffers_.inputs(micro * B * T, B, B * T),
                              step_buffers_.targets(micro * B * T, B, B * T),
                              float(share_.dp_weight) / float(share_.micro_steps), step_buffers_.loss_total(), micro > 0);
    }
    end_phase(times.forward_backward);
    if (gradient_hook_) gradient_hook_(step_ + 1, model_.weights());
    optimizer_.reduce_gradients(step_buffers_.grad_statistics());
    // The step's one host synchronisation: the loss and this rank's shares of the gradient norm and
    // of the non-finite count, together.
    scalars = step_buffers_.read_scalars();
  });
  double loss = scalars.loss;
  grid_.dp().all_reduce(Tensor(&loss, {1}, DType::F64), ReduceOp::Avg);
  const DistributedOptimizer::GlobalNorm gradients =
      optimizer_.global_norm(scalars.grad_square_sum, scalars.grad_non_finite);
  const double grad_norm = gradients.norm;
  const double lr = config_.lr_schedule().at(step_);
  // All three are the same on every rank (all-reduced), so every rank skips the same steps. The
  // count is the finite check of the gradients, made on the device in the norm's own pass (a
  // non-finite element also makes the norm non-finite; the count says how many there were).
  const bool skipped = !std::isfinite(loss) || !std::isfinite(grad_norm) || gradients.non_finite > 0;
  if (!skipped) optimizer_.apply(float(lr), config_.train.grad_clip, grad_norm);
  ++step_;
  tokens_seen_ += config_.train.global_batch_size * T;
  end_phase(times.optimizer);
  times.total = times.data + times.forward_backward + times.communication + times.optimizer;
  return {loss, grad_norm, lr, gradients.non_finite, skipped, times};
}

double Trainer::evaluate() {
  set_progress_label(str("validation after step ", step_));
  prefetcher_.wait();  // the loader reads one thing at a time
  const int64_t T = config_.train.seq_len, B = share_.micro_batch;
  double loss = 0;
  watchdog_.watch([&] {
    for (int64_t batch = 0; batch < eval_batches_; ++batch) {
      const int64_t first = batch * config_.train.global_batch_size + share_.first_sequence;
      loader_.read_val(first, share_.sequences, step_buffers_.host_inputs(), step_buffers_.host_targets());
      step_buffers_.upload();
      for (int64_t micro = 0; micro < share_.micro_steps; ++micro) {
        loss += model_.forward_loss(step_buffers_.inputs(micro * B * T, B, B * T),
                                    step_buffers_.targets(micro * B * T, B, B * T));
      }
    }
  });
  loss = loss * share_.dp_weight / double(eval_batches_ * share_.micro_steps);
  grid_.dp().all_reduce(Tensor(&loss, {1}, DType::F64), ReduceOp::Avg);
  return loss;
}

void Trainer::log_step(const StepStats& stats) {
  const int64_t tokens = config_.train.global_batch_size * config_.train.seq_len;
  if (stats.skipped) ++skipped_steps_;
  StepCost cost = reduce_step_cost(grid_.world(), stats.times, tokens,
                                   config_.model.training_flops_per_token(config_.train.seq_len), peak_flops_);
  cost.peak_measured_under_load = peak_measured_under_load_;
  if (metrics_) {
    nlohmann::json record = {{"step", step_},       {"loss", stats.loss},          {"lr", stats.lr},
                             {"grad_norm", stats.grad_norm}, {"tokens", tokens_seen_}, {"elapsed_s", elapsed_seconds_},
                             {"skipped_steps", skipped_steps_}};
    if (stats.skipped) {
      record["skipped"] = true;
      record["non_finite_grads"] = int64_t(stats.non_finite_grads);
    }
    add_step_cost(record, cost);
    write_metrics(record);
  }
  if (step_ % config_.log.interval == 0 || step_ == config_.train.max_steps) {
    const double eta = elapsed_seconds_ / double(step_) * double(config_.train.max_steps - step_);
    log_info(str("step ", step_, "/", config_.train.max_steps, " | loss ", stats.loss, " | lr ", stats.lr, " | grad norm ",
                 stats.grad_norm, " | ", format_step_cost(cost), skipped_steps_ ? str(" | skipped ", skipped_steps_) : "",
                 " | ETA ", format_duration(eta)));
  }
}

std::string Trainer::validation_coverage() const {
  return str(eval_batches_ * config_.train.global_batch_size, " of the split's ", loader_.val_windows(), " windows");
}

void Trainer::log_validation() {
  const double val_loss = evaluate();
  log_info("step ", step_, " | val loss ", val_loss, " (", validation_coverage(), ")");
  write_metrics({{"step", step_},
                 {"tokens", tokens_seen_},
                 {"val_loss", val_loss},
                 {"val_windows", eval_batches_ * config_.train.global_batch_size}});
}

void Trainer::log_sample() {
  set_progress_label(str("sample generation after step ", step_));
  if (samples_->reads_weights()) staging_.download();  // the CUDA backend's weights onto the host
  const std::optional<Sample> sample = samples_->generate();
  if (!sample) return;
  log_info("step ", step_, " | sample:\n", config_.log.sample_prompt, sample->text);
  write_metrics({{"step", step_}, {"sample_prompt", config_.log.sample_prompt}, {"sample", sample->text},
                 {"sample_tokens", sample->tokens}});
}

void Trainer::run() {
  // A resumed run already there (a finished job requeued, or max_steps lowered by mistake) trains
  // nothing; say so rather than end without a word.
  if (step_ >= config_.train.max_steps)
    log_info("resumed at step ", step_, ", which train.max_steps = ", config_.train.max_steps,
             " does not exceed: nothing left to train (raise train.max_steps to continue)");
  // The untrained model's validation loss, so the curve starts where training does.
  if (config_.eval.interval > 0 && step_ == 0) log_validation();
  while (step_ < config_.train.max_steps) {
    set_progress_label(str("step ", step_ + 1));
    const StepStats stats = train_step();
    elapsed_seconds_ += stats.times.total;
    log_step(stats);
    count_skipped_step(stats);
    const bool last = step_ == config_.train.max_steps;
    if (config_.eval.interval > 0 && (step_ % config_.eval.interval == 0 || last)) log_validation();
    if (samples_ && (samples_->due(step_) || last)) log_sample();
    const StopRequest stop = stop_requested_on_any_rank();
    if (stop.metrics_failed) stop_after_metrics_failure();
    const int64_t interval = config_.checkpoint.interval;
    if (last || stop.signal || (interval > 0 && step_ % interval == 0)) save_checkpoint();
    if (stop.signal) {
      log_info("stopped by a signal at step ", step_, "; resume with --resume");
      return;
    }
  }
}

}  // namespace t6
