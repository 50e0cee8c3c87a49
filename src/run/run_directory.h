// RUN_DIR is claimed by one job at a time. Rank 0 creates it, checks that it can write there and in
// RUN_DIR/checkpoints, which must be a directory with no directory named `latest` in it (at
// start-up, not at the first save) and takes its job lock (RUN_DIR/.t6_job.lock, flock): a second
// job on the same directory waits for it (bounded) and then refuses. Every rank of the job holds a
// shared lock on RUN_DIR/.t6_ranks.lock for its life, and rank 0 first takes it exclusively, so a
// relaunch while a killed job's ranks are still exiting waits for them (bounded) instead of writing
// beside them. A fresh run (no --resume, checkpoint.resume = "never") in a directory that already
// holds a run (metrics.jsonl or checkpoints) is refused, so its metrics and `latest` are never
// touched. Collective over world; a refusal is thrown on every rank with rank 0's message.
#pragma once
#include <filesystem>

#include "parallel/communicator.h"

namespace t6 {

class RunDirectory {
 public:
  RunDirectory(const std::filesystem::path& dir, Communicator& world, bool fresh_run, double wait_seconds);
  ~RunDirectory();
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

 private:
  int job_lock_ = -1;   // rank 0 only
  int rank_lock_ = -1;  // every rank
};

}  // namespace t6
