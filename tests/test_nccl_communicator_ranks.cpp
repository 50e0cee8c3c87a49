// ctest-labels: gpu
// ctest-requires: T6_CUDA_EMU
// ctest-mpi-ranks: 4
// NcclCommunicator across 4 ranks, one emulated GPU each (T6_EMU_DEVICES=4, device = rank, as on a
// 4-GPU node), which a single real GPU cannot host: every collective on device buffers (reduce to
// every root included) must give exactly what MpiCommunicator gives on host copies of the same
// values, on the world and on the TP and DP groups of a 2x2 grid; so must MpiCommunicator itself
// on device buffers, which it stages through pinned memory. BF16 sums, which MPI cannot reduce, against sums worked out here.
#include <gtest/gtest.h>
#include <cuda_runtime.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "common/mpi_environment.h"
#include "core/bf16.h"
#include "parallel/cuda/nccl_communicator.h"
#include "parallel/mpi_communicator.h"
#include "common/device_arrays.h"

T6_MPI_TEST_ENVIRONMENT();

using namespace t6;

namespace {

using t6::testing::DeviceArray;

// Read at the first CUDA call, after static initialisation.
const bool four_devices = setenv("T6_EMU_DEVICES", "4", 1) == 0;

// Halves, negatives and growing magnitudes whose sums over 4 ranks are exact in F32 and in BF16.
template <class T>
std::vector<T> values_of(int rank, int64_t count) {
  std::vector<T> values;
  for (int64_t i = 0; i < count; ++i)
    values.push_back(T(double((i % 3 - 1) * (7 * rank + 1)) + 0.5 * double(i) + double(rank * rank)));
  return values;
}

template <class T>
Tensor view_of(std::vector<T>& values, DType dtype = dtype_of<T>()) {
  return Tensor(values.data(), {int64_t(values.size())}, dtype);
}


// Every collective of `nccl` (on device buffers) against the same one of `mpi` (the same group) on
// host buffers, F32 and F64.
template <class T>
void expect_same_as_mpi(Communicator& mpi, Communicator& nccl, int world_rank) {
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max}) {
    std::vector<T> host = values_of<T>(world_rank, 7);
    DeviceArray<T> device(host);
    mpi.all_reduce(view_of(host), op);
    nccl.all_reduce(device.view(), op);
    EXPECT_EQ(device.download(), host) << "all_reduce " << reduce_op_name(op);
  }
  for (int root = 0; root < mpi.size(); ++root)
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg}) {
      std::vector<T> host = values_of<T>(world_rank, 6);
      DeviceArray<T> device(host);
      mpi.reduce(view_of(host), op, root);
      nccl.reduce(device.view(), op, root);
      // Only the root's buffer is defined.
      if (mpi.rank() == root) {
        EXPECT_EQ(device.download(), host) << "reduce " << reduce_op_name(op) << " to " << root;
      }
    }
  const int64_t share = 3;
  std::vector<T> input = values_of<T>(world_rank, share * mpi.size()), output(size_t(share), T(-1));
  DeviceArray<T> device_input(input), device_output(output);
  mpi.reduce_scatter(view_of(input), view_of(output), ReduceOp::Sum);
  nccl.reduce_scatter(device_input.view(), device_output.view(), ReduceOp::Sum);
  EXPECT_EQ(device_output.download(), output) << "reduce_scatter";

  std::vector<T> mine = values_of<T>(world_rank, share), gathered(size_t(share * mpi.size()), T(-1));
  DeviceArray<T> device_mine(mine), device_gathered(gathered);
  mpi.all_gather(view_of(mine), view_of(gathered));
  nccl.all_gather(device_mine.view(), device_gathered.view());
  EXPECT_EQ(device_gathered.download(), gathered) << "all_gather";

  std::vector<T> broadcast = values_of<T>(world_rank, 5);
  DeviceArray<T> device_broadcast(broadcast);
  mpi.broadcast(view_of(broadcast), mpi.size() - 1);
  nccl.broadcast(device_broadcast.view(), mpi.size() - 1);
  EXPECT_EQ(device_broadcast.download(), broadcast) << "broadcast";
}

class NcclCommunicatorRanks : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(four_devices);
    mpi_ = make_mpi_world_communicator();
    nccl_ = std::make_unique<NcclCommunicator>(*mpi_, /*cuda_device=*/mpi_->rank());
  }
  std::unique_ptr<MpiCommunicator> mpi_;
  std::unique_ptr<NcclCommunicator> nccl_;
};

}  // namespace

TEST_F(NcclCommunicatorRanks, EachRankHasItsOwnDevice) {
  EXPECT_EQ(nccl_->rank(), mpi_->rank());
  EXPECT_EQ(nccl_->size(), 4);
  int device = -1;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  EXPECT_EQ(device, mpi_->rank());
}

TEST_F(NcclCommunicatorRanks, WorldCollectivesMatchMpi) {
  expect_same_as_mpi<float>(*mpi_, *nccl_, mpi_->rank());
  expect_same_as_mpi<double>(*mpi_, *nccl_, mpi_->rank());
}

// The MPI communicator stages device buffers through pinned memory: the same results as on the host.
TEST_F(NcclCommunicatorRanks, MpiStagingDeviceBuffersMatchesMpiOnTheHost) {
  expect_same_as_mpi<float>(*mpi_, *mpi_, mpi_->rank());
}

TEST_F(NcclCommunicatorRanks, GroupsOfATwoByTwoGridMatchMpi) {
  const int rank = mpi_->rank();
  // TP groups {0,1} {2,3}; DP groups {0,2} {1,3}, as in ProcessGrid with tp 2.
  std::unique_ptr<Communicator> mpi_tp = mpi_->split(rank / 2, rank), nccl_tp = nccl_->split(rank / 2, rank);
  std::unique_ptr<Communicator> mpi_dp = mpi_->split(rank % 2, rank), nccl_dp = nccl_->split(rank % 2, rank);
  ASSERT_TRUE(nccl_tp && nccl_dp);
  EXPECT_EQ(nccl_tp->rank(), mpi_tp->rank());
  EXPECT_EQ(nccl_dp->rank(), mpi_dp->rank());
  expect_same_as_mpi<float>(*mpi_tp, *nccl_tp, rank);
  expect_same_as_mpi<float>(*mpi_dp, *nccl_dp, rank);
}

TEST_F(NcclCommunicatorRanks, Bf16SumsAndGathers) {
  const int rank = mpi_->rank();
  std::vector<uint16_t> bits;
  for (float value : values_of<float>(rank, 6)) bits.push_back(float_to_bf16_bits(value));
  DeviceArray<uint16_t> summed(bits), gathered(std::vector<uint16_t>(bits.size() * 4, 0xFFFF));
  nccl_->all_gather(summed.view(DType::BF16), gathered.view(DType::BF16));
  nccl_->all_reduce(summed.view(DType::BF16), ReduceOp::Sum);
  std::vector<uint16_t> expected_gather;
  std::vector<float> expected_sum(bits.size(), 0.0f);
  for (int r = 0; r < 4; ++r)
    for (size_t i = 0; i < bits.size(); ++i) {
      const float value = values_of<float>(r, 6)[i];
      expected_gather.push_back(float_to_bf16_bits(value));
      expected_sum[i] += value;
    }
  EXPECT_EQ(gathered.download(), expected_gather);
  std::vector<float> sum;
  for (uint16_t b : summed.download()) sum.push_back(bf16_bits_to_float(b));
  EXPECT_EQ(sum, expected_sum);
}
