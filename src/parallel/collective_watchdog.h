// parallel.timeout_s (collective_deadline.h) for communicators whose collectives the host does not
// wait in: NCCL's run on the device, so a stuck peer shows as a host blocked in the step's
// synchronisation (under the emulated GPU, in the collective call itself), where no probe channel
// can answer. While watch() runs its work, a thread looks at the communicators' asynchronous errors
// every 50 ms; when one shows, or the work has run parallel.timeout_s, it aborts every
// communicator, so the blocked host returns, and watch() throws one line naming the progress label
// (the step) and what happened; run_on_every_rank then ends the job. The NCCL watchdog's promise.
#pragma once
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "parallel/communicator.h"

namespace t6 {

class CollectiveWatchdog {
 public:
  // No thread when `watched` is empty (host communicators keep the deadline themselves).
  explicit CollectiveWatchdog(std::vector<Communicator*> watched);
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  // Runs `work`, which queues collectives on the watched communicators and waits for them, under
  // the deadline. Throws the watchdog's line when it aborted them, whatever `work` threw meanwhile.
  template <class Work>
  void watch(Work&& work) {
    if (watched_.empty()) return work();
    open();
    try {
      work();
    } catch (...) {
      close_and_throw_if_fired();
      throw;
    }
    close_and_throw_if_fired();
  }

 private:
  void open();
  void close_and_throw_if_fired();
  void run();  // the thread

  std::vector<Communicator*> watched_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false, open_ = false, fired_ = false;
  std::chrono::steady_clock::time_point deadline_;
  double timeout_seconds_ = 0;
  std::string label_, verdict_;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace t6
