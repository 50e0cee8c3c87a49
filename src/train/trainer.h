// The training loop of t6_pretrain: config → model → optimizer → loader → steps (DESIGN.md).
// Each step reads this DP rank's slice of the global batch, runs its micro-batches (gradients
// averaged over them), and takes one distributed optimizer step; rank 0 logs a line and a
// metrics.jsonl record per step and the validation loss every eval.interval steps.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/token_loader.h"
#include "model/language_model.h"
#include "parallel/process_grid.h"
#include "train/distributed_optimizer.h"
#include "train/metrics_log.h"
#include "train/run_config.h"

namespace t6 {

class Trainer {
 public:
  // Checks that the config fits the world (TP × DP, batch split) and the data (vocab), builds
  // everything and initialises the weights from train.seed. Throws naming the key or file.
  Trainer(const RunConfig& config, ProcessGrid& grid, const std::string& run_dir);

  // Trains from the current step to train.max_steps.
  void run();

  int64_t step() const { return step_; }
  LanguageModel& model() { return model_; }
  // Mean loss over the validation windows of eval.batches global batches.
  double evaluate();

 private:
  struct StepStats {
    double loss, grad_norm, lr;
  };
  StepStats train_step();
  void print_startup_table() const;
  void log_step(const StepStats& stats, double step_seconds);

  RunConfig config_;
  ProcessGrid& grid_;
  std::string run_dir_;
  int64_t local_sequences_;  // this DP rank's share of the global batch
  int64_t micro_steps_;
  int64_t eval_batches_;
  TokenLoader loader_;
  LanguageModel model_;
  DistributedOptimizer optimizer_;
  std::vector<int32_t> inputs_, targets_;  // local_sequences_ × seq_len
  std::unique_ptr<MetricsLog> metrics_;
  int64_t step_ = 0;  // optimizer steps completed
  double elapsed_seconds_ = 0;
};

}  // namespace t6
