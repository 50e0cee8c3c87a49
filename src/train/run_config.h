// A run's whole configuration: TOML sections [model] [train] [data] [parallel] [eval] [checkpoint]
// [log], every key settable from the command line with --set section.key=value. Unknown keys,
// wrong types and impossible values are errors naming the file and key, raised at start-up.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_config.h"
#include "train/lr_schedule.h"

namespace t6 {

struct TrainConfig {
  uint64_t seed = 1337;
  int64_t seq_len = 1024;
  int64_t micro_batch_size = 16;    // sequences per forward/backward on one rank
  int64_t global_batch_size = 480;  // sequences per optimizer step, over all DP ranks
  int64_t max_steps = 100000;
  double lr = 6e-4, min_lr = 3e-5;
  int64_t warmup_steps = 2000;
  int64_t lr_decay_steps = 0;       // 0: max_steps
  double weight_decay = 0.1, grad_clip = 1.0;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
};

struct DataConfig {
  std::string path;  // a corpus directory written by t6_preprocess
};

struct ParallelConfig {
  int64_t tp = 1;          // DP = world size / tp
  bool zero1 = false;      // shard AdamW state (and master weights) over DP
  int64_t threads = 0;     // CPU threads per rank; 0: the node's cores / ranks on the node
};

struct EvalConfig {
  int64_t interval = 0;    // steps between validation passes; 0: never
  int64_t batches = 4;     // global batches of validation windows per pass
};

struct CheckpointConfig {
  int64_t interval = 0;    // steps between saves; 0: only at the end
  int64_t keep = 3;        // newest checkpoints kept; 0: all
  std::string resume = "never";  // "never" or "auto" (continue from latest if there is one)
};

struct LogConfig {
  int64_t interval = 1;    // steps between log lines (metrics.jsonl gets every step)
};

struct RunConfig {
  ModelConfig model;
  TrainConfig train;
  DataConfig data;
  ParallelConfig parallel;
  EvalConfig eval;
  CheckpointConfig checkpoint;
  LogConfig log;

  LrSchedule lr_schedule() const;
  // Checks every value that does not depend on the world size or the data (those are checked by
  // the trainer). Throws naming the key.
  void validate() const;
  nlohmann::json to_json() const;
  static RunConfig from_json(const nlohmann::json& json);
};

// Reads a TOML file and applies overrides ("section.key=value", value in TOML syntax or a bare
// string). Validates. Errors name the file (or "--set") and the key.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace t6
