#include "parallel/timed_communicator.h"

#include <chrono>

namespace t6 {

TimedCommunicator::TimedCommunicator(std::unique_ptr<Communicator> inner, std::shared_ptr<CommunicationClock> clock)
    : inner_(std::move(inner)), clock_(std::move(clock)) {}

template <class Call>
void TimedCommunicator::timed(Call call) {
  const auto start = std::chrono::steady_clock::now();
  call();
  clock_->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void TimedCommunicator::all_reduce(Tensor buffer, ReduceOp op) {
  timed([&] { inner_->all_reduce(buffer, op); });
}

void TimedCommunicator::reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) {
  timed([&] { inner_->reduce_scatter(input, output, op); });
}

void TimedCommunicator::all_gather(const Tensor& input, Tensor output) {
  timed([&] { inner_->all_gather(input, output); });
}

void TimedCommunicator::reduce(Tensor buffer, ReduceOp op, int root) {
  timed([&] { inner_->reduce(buffer, op, root); });
}

void TimedCommunicator::broadcast(Tensor buffer, int root) {
  timed([&] { inner_->broadcast(buffer, root); });
}

void TimedCommunicator::barrier() {
  timed([&] { inner_->barrier(); });
}

void TimedCommunicator::start_all_reduce(Tensor buffer, ReduceOp op) {
  timed([&] { inner_->start_all_reduce(buffer, op); });
}

void TimedCommunicator::start_reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) {
  timed([&] { inner_->start_reduce_scatter(input, output, op); });
}

void TimedCommunicator::start_reduce(Tensor buffer, ReduceOp op, int root) {
  timed([&] { inner_->start_reduce(buffer, op, root); });
}

void TimedCommunicator::finish_started() {
  timed([&] { inner_->finish_started(); });
}

std::unique_ptr<Communicator> TimedCommunicator::split(int color, int key) {
  std::unique_ptr<Communicator> group = inner_->split(color, key);
  if (!group) return nullptr;
  return std::make_unique<TimedCommunicator>(std::move(group), clock_);
}

}  // namespace t6
