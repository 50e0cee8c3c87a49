// ctest-labels: gpu
// ctest-requires: T6_CUDA_EMU
// ctest-mpi-ranks: 2
// CollectiveWatchdog keeps parallel.timeout_s for NCCL (two ranks, one emulated GPU each): a
// collective that a peer does not join within the timeout is aborted from the watchdog's thread,
// and the waiting rank ends with one line naming the step, within seconds of the deadline instead
// of hanging; a communicator reporting an asynchronous error is aborted at once with a line quoting
// it; work that completes in time passes untouched.
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include "core/mpi_c.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "common/device_arrays.h"
#include "common/error_expectations.h"
#include "common/mpi_environment.h"
#include "parallel/collective_deadline.h"
#include "parallel/collective_watchdog.h"
#include "parallel/mpi_communicator.h"
#include "parallel/nccl_world.h"

T6_MPI_TEST_ENVIRONMENT();

using namespace t6;
using t6::testing::DeviceArray;
using t6::testing::error_of;

namespace {

// Read at the first CUDA call, after static initialisation: one device per rank, as NCCL wants.
const bool two_devices = setenv("T6_EMU_DEVICES", "2", 1) == 0;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class Watchdog : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(two_devices);
    host_ = make_mpi_world_communicator();
    nccl_ = make_nccl_world(*host_, host_->rank());
    set_collective_timeout(1);
    set_progress_label("step 7");
  }
  void TearDown() override { set_collective_timeout(600); }
  std::unique_ptr<MpiCommunicator> host_;
  std::unique_ptr<Communicator> nccl_;
};

TEST_F(Watchdog, CollectiveAPeerDoesNotJoinIsAbortedWithOneLineNamingTheStep) {
  DeviceArray<float> values(std::vector<float>(4, float(host_->rank() + 1)));
  if (host_->rank() == 0) {
    CollectiveWatchdog watchdog({nccl_.get()});
    const auto start = std::chrono::steady_clock::now();
    const std::string error = error_of([&] {
      watchdog.watch([&] {
        nccl_->all_reduce(values.view(), ReduceOp::Sum);
        values.download();
      });
    });
    const double seconds = seconds_since(start);
    EXPECT_EQ(error.find("step 7: its NCCL collectives waited 1 s: a peer did not complete them"), 0u) << error;
    EXPECT_NE(error.find("the NCCL communicators were aborted"), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    EXPECT_GE(seconds, 1.0);
    EXPECT_LT(seconds, 5.0) << "the deadline was not kept";
    // The aborted collective left the device's sticky error (the trainer's rank ends here); the
    // next tests need the device.
    EXPECT_EQ(cudaDeviceReset(), cudaSuccess);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  // The late rank joins now, so that the abandoned request on rank 0 completes before MPI_Finalize.
  if (host_->rank() == 1) nccl_->all_reduce(values.view(), ReduceOp::Sum);
}

TEST_F(Watchdog, CollectivesThatCompleteInTimePassUntouched) {
  DeviceArray<float> values(std::vector<float>(4, float(host_->rank() + 1)));
  CollectiveWatchdog watchdog({nccl_.get()});
  for (int round = 0; round < 3; ++round) {
    watchdog.watch([&] { nccl_->all_reduce(values.view(), ReduceOp::Max); });
    std::this_thread::sleep_for(std::chrono::milliseconds(400));  // outside the watch: no deadline
  }
  std::vector<float> reduced;
  watchdog.watch([&] { reduced = values.download(); });
  EXPECT_EQ(reduced, std::vector<float>(4, 2.0f));
  EXPECT_EQ(nccl_->asynchronous_error(), "");
}

// NCCL's asynchronous error (a peer's process gone, a network fault): aborted at once, not after the
// timeout. A stand-in communicator reports it; the work waits until it is aborted, as a host blocked
// on an NCCL kernel does.
class FailingPeer final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  void all_reduce(Tensor, ReduceOp) override {}
  void reduce_scatter(const Tensor&, Tensor, ReduceOp) override {}
  void all_gather(const Tensor&, Tensor) override {}
  void reduce(Tensor, ReduceOp, int) override {}
  void broadcast(Tensor, int) override {}
  void barrier() override {}
  std::unique_ptr<Communicator> split(int, int) override { return nullptr; }
  std::string asynchronous_error() override { return "remote process exited or there was a network error"; }
  void abort() override { aborted = true; }
  std::atomic<bool> aborted{false};
};

TEST_F(Watchdog, AsynchronousErrorAbortsAtOnceQuotingIt) {
  set_collective_timeout(60);
  FailingPeer peer;
  CollectiveWatchdog watchdog({&peer});
  const auto start = std::chrono::steady_clock::now();
  const std::string error = error_of([&] {
    watchdog.watch([&] {
      while (!peer.aborted) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    });
  });
  EXPECT_LT(seconds_since(start), 5.0);
  EXPECT_EQ(error, "step 7: NCCL reported an error in a collective (remote process exited or there was a network "
                   "error); the NCCL communicators were aborted");
}

}  // namespace
