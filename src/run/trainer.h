// The training loop of t6_pretrain: config → model → optimizer → loader → steps (DESIGN.md).
// Each step reads this DP rank's slice of the global batch, runs its micro-batches (gradients
// averaged over them), and takes one distributed optimizer step; rank 0 logs a line and a
// metrics.jsonl record per step, the validation loss every eval.interval steps and, with
// log.sample_interval > 0, a sample generation (run/sample_generations.h) every that many steps.
// Checkpoints are saved every checkpoint.interval steps, at the end, when a stop signal arrives and
// before stopping on divergence; a run resumes from one (train_checkpoint.h says what one holds).
// A step whose loss or global gradient norm is not finite is skipped: its batch is consumed but
// weights, AdamW moments and AdamW's step count stay as they were; it logs a warning and a
// metrics record with "skipped": true and the count of non-finite gradient elements.
// train.max_skipped_steps skips in a row end the run; both counts (in a row, and in the whole run)
// carry over a resume.
// A metrics record that cannot be written (a full disk) ends the run at that step with one line,
// after saving a checkpoint of it where the disk allows; metrics.jsonl still ends with a whole line.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/batch_prefetcher.h"
#include "data/token_loader.h"
#include "model/language_model.h"
#include "parallel/backend_choice.h"
#include "parallel/collective_watchdog.h"
#include "parallel/device_communicators.h"
#include "parallel/process_grid.h"
#include "run/checkpoint_staging.h"
#include "run/memory_plan.h"
#include "run/run_directory.h"
#include "run/sample_generations.h"
#include "run/step_buffers.h"
#include "train/batch_split.h"
#include "train/distributed_optimizer.h"
#include "train/metrics_log.h"
#include "train/run_config.h"
#include "train_state/train_checkpointer.h"
#include "train/step_metrics.h"

namespace t6 {

// SIGTERM, SIGINT and SIGUSR1 ask the trainer to stop: it finishes the current step, saves a
// checkpoint and returns from run(). The handlers only set a flag.
void install_stop_signal_handlers();

enum class ResumeMode {
  from_config,  // checkpoint.resume: "auto" continues from the newest complete checkpoint if any
  latest,       // --resume: continue from `latest`; an error when there is none
};

class Trainer {
 public:
  // Checks that the config fits the world (TP × DP, batch split) and the data (vocab), builds
  // everything and initialises the weights from train.seed, or loads them (and the optimizer
  // state, saved at any layout) from a checkpoint of run_dir. Resuming with another seed, batch,
  // sequence length or corpus is an error unless the key is in `allowed_changes`
  // (train_checkpoint.h, resume_sensitive_keys). Throws naming the key or file.
  Trainer(const RunConfig& config, ProcessGrid& grid, const std::string& run_dir,
          ResumeMode resume = ResumeMode::from_config, const std::vector<std::string>& allowed_changes = {});

  // Trains from the current step to train.max_steps, or until a stop signal (then saves and
  // returns). After train.max_skipped_steps non-finite steps in a row it saves the unchanged
  // (finite) state and throws.
  void run();

  // Tests only: called on every rank after each step's backward, before the gradients are
  // reduced, with the number of the step being taken (1-based); lets a test poison a gradient.
  using GradientHook = std::function<void(int64_t step, ModelWeights& weights)>;
  void set_gradient_hook(GradientHook hook) { gradient_hook_ = std::move(hook); }

  // Tests only: called on every rank as each step begins, with the number of the step (1-based), so
  // that between two calls lies exactly one whole step; unlike the gradient hook it leaves the
  // overlapped reduction on.
  using StepHook = std::function<void(int64_t step)>;
  void set_step_hook(StepHook hook) { step_hook_ = std::move(hook); }

  int64_t step() const { return step_; }
  LanguageModel& model() { return model_; }
  DistributedOptimizer& optimizer() { return optimizer_; }
  // Mean loss over the validation windows of eval.batches global batches.
  double evaluate();

 private:
  struct StepStats {
    double loss, grad_norm, lr;
    double non_finite_grads;  // gradient elements that were NaN or ±inf, counted like the norm
    bool skipped;  // not finite: nothing was updated
    StepTimes times;  // this rank's
  };
  StepStats train_step();
  void keep_config_and_console_log();  // RUN_DIR/config.toml and RUN_DIR/console.log, on rank 0
  void print_startup_table() const;
  void log_step(const StepStats& stats);
  void log_validation();  // evaluate(), then a log line and a metrics record
  void log_sample();      // a sample generation (log.sample_interval), then its log lines and metrics record
  std::string validation_coverage() const;  // "64 of the split's 257 windows"
  std::optional<checkpoint::ResumePoint> find_resume_point(ResumeMode resume);
  void resume_from(const checkpoint::ResumePoint& point, const std::vector<std::string>& allowed_changes);
  OptimizerShard optimizer_shard();
  void save_checkpoint();
  void check_state_is_finite();
  void count_skipped_step(const StepStats& stats);
  struct StopRequest {
    bool signal = false;          // a stop signal reached a rank
    bool metrics_failed = false;  // rank 0 could not write a metrics record
  };
  StopRequest stop_requested_on_any_rank();
  void write_metrics(const nlohmann::json& record);  // on rank 0; a failure is kept for the stop check
  [[noreturn]] void stop_after_metrics_failure();

  RunConfig config_;
  ProcessGrid& grid_;
  BackendChoice backend_;
  std::string run_dir_;
  RunDirectory run_directory_;  // claimed (locked, checked) before anything reads or writes it
  BatchShare share_;  // this DP rank's sequences of the global batch and its micro-batches
  RankMemory memory_;  // planned and checked against the machine before anything below allocates
  int64_t eval_batches_;
  TokenLoader loader_;
  BatchPrefetcher prefetcher_;  // reads through loader_: declared after it, so it stops first
  // The model, the optimizer and the step's buffers live on the backend's device; staging_ is the
  // host copy of their state that checkpoints read and write.
  DeviceCommunicators device_groups_;  // carry the device buffers: NCCL's, or the grid's MPI ones
  CollectiveWatchdog watchdog_;        // keeps parallel.timeout_s for NCCL's collectives
  LanguageModel model_;
  DistributedOptimizer optimizer_;
  StepBuffers step_buffers_;  // this rank's batch (share_.sequences × seq_len) and step scalars
  CheckpointStaging staging_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<SampleGenerations> samples_;  // only with log.sample_interval > 0
  TrainCheckpointer checkpointer_;
  int64_t step_ = 0;  // optimizer steps completed
  int64_t tokens_seen_ = 0;  // training tokens of the steps taken (kept in checkpoints, advanced per step)
  int64_t last_saved_step_ = -1;  // never saved twice: a resumed step is already on disk
  double elapsed_seconds_ = 0;
  int64_t skipped_in_a_row_ = 0;  // both skip counters are kept in checkpoints and restored on resume
  GradientHook gradient_hook_;
  StepHook step_hook_;
  double peak_flops_ = 0;          // of all ranks together, for MFU
  std::string peak_flops_source_;  // for the start-up table
  bool peak_measured_under_load_ = false;  // then every log line says its MFU is overstated
  int64_t skipped_steps_ = 0;      // in the whole run
  std::string metrics_failure_;    // rank 0: why a metrics record could not be written
};

}  // namespace t6
