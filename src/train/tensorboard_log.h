// RUN_DIR/tensorboard/events.out.tfevents.<start time>.<host>: the run's scalars as a TensorBoard
// event file, written without TensorFlow. The format: a sequence of TFRecords (uint64 length,
// masked CRC-32C of the length, the bytes, masked CRC-32C of the bytes), each an `Event` protocol
// buffer (wall_time = 1, step = 2, file_version = 3, summary = 5) whose `Summary` holds `Value`s
// (tag = 1, simple_value = 2), encoded here by hand. The first record says "brain.Event:2".
// One file per run directory, appended across resumes: on resume from step N its events of later
// steps (written by the run that died) are dropped first, as metrics.jsonl's lines are.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/append_file.h"

namespace t6 {

class TensorBoardLog {
 public:
  // Opens dir's event file (made with the first event when there is none), after dropping its
  // events of steps after keep_through_step (-1: all of them, a fresh run).
  TensorBoardLog(const std::filesystem::path& dir, int64_t keep_through_step);
  // One event at `step` with a scalar per (tag, value), appended whole or not at all (AppendFile).
  void write_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& scalars);
  const std::filesystem::path& path() const { return file_->path(); }

 private:
  void write_record(const std::string& event);

  std::unique_ptr<AppendFile> file_;  // opened once the file holds its first or kept events
};

}  // namespace t6
