#include "parallel/collective_watchdog.h"

#include "core/error.h"
#include "parallel/collective_deadline.h"

namespace t6 {

namespace {
constexpr auto kLookInterval = std::chrono::milliseconds(50);
}  // namespace

CollectiveWatchdog::CollectiveWatchdog(std::vector<Communicator*> watched) : watched_(std::move(watched)) {
  if (!watched_.empty()) thread_ = std::thread([this] { run(); });
}

CollectiveWatchdog::~CollectiveWatchdog() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void CollectiveWatchdog::open() {
  std::lock_guard lock(mutex_);
  timeout_seconds_ = collective_timeout();
  label_ = progress_label();
  deadline_ = std::chrono::steady_clock::now() +
              std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(timeout_seconds_));
  open_ = true;
}

void CollectiveWatchdog::close_and_throw_if_fired() {
  std::lock_guard lock(mutex_);
  open_ = false;
  if (fired_) fail(verdict_);
}

void CollectiveWatchdog::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, kLookInterval);
    if (!open_ || fired_) continue;
    std::string problem;
    for (Communicator* communicator : watched_) {
      const std::string error = communicator->asynchronous_error();
      if (!error.empty()) {
        problem = str("NCCL reported an error in a collective (", error, ")");
        break;
      }
    }
    if (problem.empty() && std::chrono::steady_clock::now() >= deadline_)
      problem = str("its NCCL collectives waited ", timeout_seconds_, " s: a peer did not complete them (stopped, hung ",
                    "or dead; parallel.timeout_s sets the wait)");
    if (problem.empty()) continue;
    verdict_ = str(label_, ": ", problem, "; the NCCL communicators were aborted");
    fired_ = true;
    for (Communicator* communicator : watched_) communicator->abort();
  }
}

}  // namespace t6
