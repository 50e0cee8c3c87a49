// RUN_DIR/metrics.jsonl: one JSON object per line, per training step, evaluation and sample. On resume
// from step N the lines of later steps (written by the run that died) are dropped first, so every
// step appears once. Written by world rank 0 only. Optionally every number of every record (but
// "step") also goes to a TensorBoard event file as a scalar of the same name; a record without
// numbers (a sample generation's text) writes no event.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/append_file.h"
#include "train/tensorboard_log.h"

namespace t6 {

class MetricsLog {
 public:
  // Opens for appending, after dropping lines whose "step" is greater than keep_through_step
  // (pass -1 to start a fresh file); with a tensorboard_dir, its event file likewise.
  MetricsLog(const std::string& path, int64_t keep_through_step, const std::filesystem::path& tensorboard_dir = {});
  // One line, written whole or not at all (then throws naming the file and the cause, e.g. a full
  // disk: the file still ends with the previous record).
  void write(const nlohmann::json& record);

 private:
  AppendFile file_;
  std::unique_ptr<TensorBoardLog> tensorboard_;
};

}  // namespace t6
