// A Communicator that forwards every call to another one and adds the time spent in it to a clock
// shared by all communicators of a ProcessGrid, so the trainer can split a step's time into
// communication and the rest (the time a rank waits for a slower peer inside a collective counts
// as communication). With an asynchronous backend (NCCL) it measures the time to enqueue.
#pragma once
#include <memory>

#include "parallel/communicator.h"

namespace t6 {

struct CommunicationClock {
  double seconds = 0;  // in collectives, since construction
};

class TimedCommunicator final : public Communicator {
 public:
  TimedCommunicator(std::unique_ptr<Communicator> inner, std::shared_ptr<CommunicationClock> clock);

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  void all_reduce(Tensor buffer, ReduceOp op) override;
  void reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) override;
  void all_gather(const Tensor& input, Tensor output) override;
  void reduce(Tensor buffer, ReduceOp op, int root) override;
  void broadcast(Tensor buffer, int root) override;
  void barrier() override;
  void start_all_reduce(Tensor buffer, ReduceOp op) override;
  void start_reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) override;
  void start_reduce(Tensor buffer, ReduceOp op, int root) override;
  void finish_started() override;
  // Not timed: they come from the watchdog's thread.
  std::string asynchronous_error() override { return inner_->asynchronous_error(); }
  void abort() override { inner_->abort(); }
  // The new group's communicator is timed on the same clock.
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  template <class Call>
  void timed(Call call);

  std::unique_ptr<Communicator> inner_;
  std::shared_ptr<CommunicationClock> clock_;
};

}  // namespace t6
