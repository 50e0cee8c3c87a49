// A run's whole configuration: TOML sections [model] [train] [data] [parallel] [eval] [checkpoint]
// [log], every key settable from the command line with --set section.key=value. One table of keys
// (run_config_keys(): name, type, range, meaning; the default is the field's initialiser below) is
// what the parser validates against, what --print-config prints and what docs/CONFIG.md is
// generated from. Unknown keys, wrong types and impossible values are errors raised at start-up
// that name the key and where its value came from (the default, the file or --set).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_config.h"
#include "train/lr_schedule.h"

namespace t6 {

struct TrainConfig {
  uint64_t seed = 1337;
  int64_t seq_len = 1024;
  int64_t micro_batch_size = 0;     // sequences per forward/backward on one rank; 0: derived (train/batch_split.h)
  int64_t global_batch_size = 480;  // sequences per optimizer step, over all DP ranks
  int64_t max_steps = 100000;
  double lr = 6e-4, min_lr = 3e-5;
  int64_t warmup_steps = 2000;
  int64_t lr_decay_steps = 0;       // 0: max(max_steps, warmup_steps)
  double weight_decay = 0.1, grad_clip = 1.0;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  int64_t max_skipped_steps = 5;    // steps with a non-finite gradient skipped in a row before stopping
};

struct DataConfig {
  std::string path;  // a corpus directory written by t6_preprocess
  int64_t max_open_shards = 64;  // shard files open at once (least recently read closed first)
  bool prefetch = true;          // read the next batch in the background while a step computes
};

struct ParallelConfig {
  int64_t tp = 1;          // DP = world size / tp
  bool zero1 = false;      // shard AdamW state (and master weights) over DP
  double bucket_mib = 64;  // of gradients per DP bucket (DistributedOptimizer)
  int64_t threads = 0;     // CPU threads per rank; 0: the node's cores / ranks on the node
  double timeout_s = 600;  // a collective that waits longer for a rank ends the job naming that rank
  std::string backend = "auto";       // "auto" | "cpu" | "cuda" (parallel/backend_choice.h)
  std::string communicator = "auto";  // "auto" | "nccl" | "mpi"
};

struct EvalConfig {
  int64_t interval = 0;    // steps between validation passes; 0: never
  int64_t batches = 4;     // global batches of validation windows per pass; 0: all the split holds
};

struct CheckpointConfig {
  int64_t interval = 0;    // steps between saves; 0: only at the end
  int64_t keep = 3;        // newest checkpoints kept; 0: all
  std::string resume = "never";  // "never" or "auto" (continue from latest if there is one)
};

struct LogConfig {
  int64_t interval = 1;    // steps between log lines (metrics.jsonl gets every step)
  double peak_flops = 0;   // FLOP/s of one rank for MFU; 0: measure the SGEMM rate at start-up
  bool tensorboard = false;  // also write the metrics as TensorBoard event files to RUN_DIR/tensorboard/
  // Sample generations during training (run/sample_generations.h): every sample_interval steps
  // (0: never), sample_tokens tokens after EOT and sample_prompt, greedy at temperature 0.
  int64_t sample_interval = 0;
  std::string sample_prompt;
  int64_t sample_tokens = 64;
  double sample_temperature = 0;
};

struct RunConfig {
  ModelConfig model;
  TrainConfig train;
  DataConfig data;
  ParallelConfig parallel;
  EvalConfig eval;
  CheckpointConfig checkpoint;
  LogConfig log;
  // Where each key's value came from, "FILE" or "--set KEY=VALUE", by key name ("train.lr"); a key
  // not listed has its default. Not part of the config itself (to_json leaves it out).
  std::map<std::string, std::string> sources;

  LrSchedule lr_schedule() const;
  // Checks every value that does not depend on the world size or the data (those are checked by
  // the trainer): each key's range, then the rules between keys. Throws naming the key.
  void validate() const;
  // "default", "FILE" or "--set KEY=VALUE".
  std::string source_of(const std::string& key) const;
  // `message` followed by the source of every key it names: "... (train.min_lr: --set
  // train.min_lr=1e-3; train.lr: configs/x.toml)", so that a user knows which value to change.
  std::string with_sources(const std::string& message) const;
  nlohmann::json to_json() const;
  static RunConfig from_json(const nlohmann::json& json);
};

// Every key of a run config, in the order of the sections above; the [model] rows are
// model_config_keys().
const std::vector<ConfigKey<RunConfig>>& run_config_keys();

// Reads a TOML file and applies overrides ("section.key=value", value in TOML syntax or a bare
// string). Validates. Errors name the file (or "--set") and the key.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});

// A config saved as JSON (a checkpoint manifest's, RunConfig::to_json) with overrides applied, each
// saved key's source being `source` ("checkpoint runs/x/checkpoints/step_00000150"). Validates.
RunConfig load_saved_run_config(const nlohmann::json& saved, const std::string& source,
                                const std::vector<std::string>& overrides = {});

}  // namespace t6
