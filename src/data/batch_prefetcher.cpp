#include "data/batch_prefetcher.h"

#include <algorithm>
#include <utility>

namespace t6 {

BatchPrefetcher::BatchPrefetcher(TokenLoader& loader, int64_t first_sequence, int64_t count, int64_t seq_len,
                                 bool enabled)
    : loader_(loader), first_sequence_(first_sequence), count_(count), enabled_(enabled),
      ahead_inputs_(enabled ? size_t(count * seq_len) : 0), ahead_targets_(enabled ? size_t(count * seq_len) : 0) {}

BatchPrefetcher::~BatchPrefetcher() { wait(); }

void BatchPrefetcher::wait() {
  if (in_flight_.valid()) in_flight_.get();  // the task stores its error instead of throwing
}

void BatchPrefetcher::take(int64_t step, int32_t* inputs, int32_t* targets, int64_t next_step) {
  wait();
  if (ahead_step_ == step) {
    ahead_step_ = -1;
    if (ahead_error_) std::rethrow_exception(std::exchange(ahead_error_, nullptr));
    std::copy(ahead_inputs_.begin(), ahead_inputs_.end(), inputs);
    std::copy(ahead_targets_.begin(), ahead_targets_.end(), targets);
  } else {
    loader_.read_train(step, first_sequence_, count_, inputs, targets);
  }
  if (!enabled_ || next_step < 0) return;
  ahead_step_ = next_step;
  in_flight_ = std::async(std::launch::async, [this, next_step] {
    try {
      loader_.read_train(next_step, first_sequence_, count_, ahead_inputs_.data(), ahead_targets_.data());
    } catch (...) {
      ahead_error_ = std::current_exception();
    }
  });
}

}  // namespace t6
