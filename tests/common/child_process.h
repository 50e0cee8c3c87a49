// Tests that run the tools as child processes: start one (its output into a log file), signal
// it, wait for it with a deadline, and find the pid of an MPI rank that mpirun started.
#pragma once
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "train/run_config.h"

namespace t6::testing {

// Writes `config` as a TOML run config (JSON scalars are TOML scalars) and returns `path`.
std::filesystem::path write_run_toml(const RunConfig& config, const std::filesystem::path& path);

// Starts argv[0] (a path) with argv, stdout and stderr into `log`, in its own process group (so
// a test can signal it as a scheduler would without signalling itself). Open MPI's run-as-root
// variables are set, since CI runs as root.
pid_t start_process(const std::vector<std::string>& argv, const std::filesystem::path& log);

// `mpirun -np ranks --oversubscribe t6_pretrain args...` as start_process does.
pid_t start_mpi_pretrain(int ranks, const std::vector<std::string>& args, const std::filesystem::path& log);

// The exit code (128 + signal when killed); waits at most `seconds`, else nullopt (still running).
std::optional<int> wait_exit_code(pid_t pid, double seconds);

// The pid of MPI rank `rank` among the children of mpirun `launcher`, or of an mpirun that
// `launcher` (a script: launch/run_local.sh) started (OMPI_COMM_WORLD_RANK in its environment),
// waiting up to 30 s for it to appear; -1 if it does not.
pid_t mpi_rank_pid(pid_t launcher, int rank);

// What became of an MPI job after one of its ranks was stopped (SIGSTOP): its launcher's exit code
// (nullopt when it still ran after `wait_seconds`) and the seconds from the stop to the exit. Both the
// stopped rank and the launcher's process group are killed afterwards, whatever happened.
struct StoppedRankOutcome {
  std::optional<int> exit_code;
  double seconds = 0;
};
StoppedRankOutcome stop_rank_and_wait(pid_t launcher, pid_t rank, double wait_seconds);

// The parent of process `pid`, or -1 when it is gone.
pid_t parent_of(pid_t pid);

// Whether process `pid` still runs (exists and is not a zombie).
bool process_runs(pid_t pid);

std::string read_text(const std::filesystem::path& path);

}  // namespace t6::testing
