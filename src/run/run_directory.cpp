#include "run/run_directory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "parallel/collective_deadline.h"
#include "parallel/rank_failure.h"

namespace t6 {

namespace fs = std::filesystem;

namespace {

int open_lock_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  T6_CHECK(fd >= 0, path.parent_path().string(), ": cannot write in the run directory (", std::strerror(errno), ")");
  return fd;
}

// flock(mode | LOCK_NB) retried until wait_seconds have passed; false if still held.
bool lock_within(int fd, int mode, double wait_seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_seconds);
  for (;;) {
    if (::flock(fd, mode | LOCK_NB) == 0) return true;
    T6_CHECK(errno == EWOULDBLOCK || errno == EINTR, "flock failed: ", std::strerror(errno));
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// A write probe: the lock file may exist already, so opening it proves nothing about the directory.
void check_writable(const fs::path& dir) {
  const fs::path probe = dir / ".t6_write_check";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  T6_CHECK(fd >= 0, dir.string(), ": cannot write in the run directory (", std::strerror(errno), ")");
  const bool written = ::write(fd, "ok\n", 3) == 3;
  const int write_errno = errno;
  ::close(fd);
  ::unlink(probe.c_str());
  T6_CHECK(written, dir.string(), ": cannot write in the run directory (", std::strerror(write_errno), ")");
}

// What the first save would trip over, found before the run spends hours: checkpoints/ that is not
// a directory, or a `latest` that is one (a file is replaced by rename, a directory cannot be).
void check_checkpoints_dir(const fs::path& dir) {
  const fs::path checkpoints = dir / "checkpoints", latest = checkpoints / "latest";
  std::error_code error;
  const fs::file_type type = fs::status(checkpoints, error).type();
  if (type == fs::file_type::not_found) return;
  T6_CHECK(type == fs::file_type::directory, checkpoints.string(),
           ": is not a directory, so no checkpoint could be saved; move it away");
  check_writable(checkpoints);
  T6_CHECK(fs::symlink_status(latest, error).type() != fs::file_type::directory, latest.string(),
           ": is a directory, not the file naming the newest checkpoint, so no save could replace it; move it away");
}

bool holds_a_run(const fs::path& dir) {
  std::error_code error;
  if (fs::file_size(dir / "metrics.jsonl", error) > 0 && !error) return true;
  const fs::path checkpoints = dir / "checkpoints";
  if (!fs::is_directory(checkpoints, error)) return false;
  for (const auto& entry : fs::directory_iterator(checkpoints, error)) {
    (void)entry;
    return true;
  }
  return false;
}

}  // namespace

RunDirectory::RunDirectory(const fs::path& dir, Communicator& world, bool fresh_run, double wait_seconds) {
  set_progress_label(str("start-up (claiming the run directory ", dir.string(), ")"));
  std::string problem;
  if (world.rank() == 0) {
    try {
      std::error_code error;
      fs::create_directories(dir, error);
      T6_CHECK(!error, dir.string(), ": cannot create the run directory (", error.message(), ")");
      check_writable(dir);
      check_checkpoints_dir(dir);
      job_lock_ = open_lock_file(dir / ".t6_job.lock");
      T6_CHECK(lock_within(job_lock_, LOCK_EX, wait_seconds), dir.string(), ": another job is using this run directory ",
               "(it holds ", (dir / ".t6_job.lock").string(), "; waited ", wait_seconds,
               " s); wait for it to end or choose another --run-dir");
      rank_lock_ = open_lock_file(dir / ".t6_ranks.lock");
      T6_CHECK(lock_within(rank_lock_, LOCK_EX, wait_seconds), dir.string(), ": ranks of an earlier job are still ",
               "running in this run directory (waited ", wait_seconds, " s for them to exit); end them, then relaunch");
      T6_CHECK(!fresh_run || !holds_a_run(dir), dir.string(), ": the run directory already holds a run (metrics.jsonl or "
               "checkpoints/); pass --resume (or checkpoint.resume = \"auto\") to continue it, or choose another --run-dir");
      ::flock(rank_lock_, LOCK_UN);
    } catch (const Error& error) {
      problem = error.what();
      if (problem.empty()) problem = "run directory check failed";
    }
  }
  if (const AgreedFailure agreed = agree_on_failure(world, problem)) {
    if (rank_lock_ >= 0) ::close(rank_lock_);
    if (job_lock_ >= 0) ::close(job_lock_);
    rank_lock_ = job_lock_ = -1;
    agreed.raise();
  }
  if (rank_lock_ < 0) rank_lock_ = open_lock_file(dir / ".t6_ranks.lock");
  ::flock(rank_lock_, LOCK_SH);
  set_progress_label("start-up");
}

RunDirectory::~RunDirectory() {
  if (rank_lock_ >= 0) ::close(rank_lock_);
  if (job_lock_ >= 0) ::close(job_lock_);
}

}  // namespace t6
