// ctest-labels: gpu
// ctest-requires: T6_CUDA_EMU
// ctest-mpi-ranks: 4
// The emulated NCCL over MPI (src/cuda_emu/nccl_over_mpi.cpp) on device buffers: all-reduce,
// reduce-scatter, reduce, all-gather and broadcast in fp32 and bf16 against MPI's own results on host
// buffers, in place and not, CommSplit into groups, and stream order (a collective sees the work
// queued before it on its stream), and ncclCommAbort from another thread ending a collective that a
// peer never joins.
#include <gtest/gtest.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "common/mpi_environment.h"
#include "core/bf16.h"
#include "core/mpi_c.h"
#include "common/device_arrays.h"

T6_MPI_TEST_ENVIRONMENT();

namespace {

using t6::testing::download;
using t6::testing::upload;

using t6::testing::world_rank;
using t6::testing::world_size;


// Different on every rank and element, with sums that round in fp32.
std::vector<float> rank_values(size_t count, int rank) {
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i) values[i] = 0.1f * float(rank + 1) + 1.37f * float(i) - 3.3f * float(i % 3);
  return values;
}

// Halves of small integers: every partial sum of four ranks is exact in bf16, so any reduction
// order gives the same bits.
std::vector<uint16_t> rank_bf16(size_t count, int rank) {
  std::vector<uint16_t> values(count);
  for (size_t i = 0; i < count; ++i)
    values[i] = t6::float_to_bf16_bits(0.5f * float((int(i) * 7 + rank * 5) % 23 - 11));
  return values;
}

std::vector<float> widen(const std::vector<uint16_t>& bits) {
  std::vector<float> values;
  for (uint16_t b : bits) values.push_back(t6::bf16_bits_to_float(b));
  return values;
}

class Nccl : public ::testing::Test {
 protected:
  void SetUp() override {
    ncclUniqueId id{};
    if (world_rank() == 0) {
      ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
    }
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    ASSERT_EQ(ncclCommInitRank(&comm_, world_size(), id, world_rank()), ncclSuccess) << ncclGetErrorString(ncclInvalidUsage);
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), cudaSuccess);
  }
  void TearDown() override {
    cudaStreamDestroy(stream_);
    ncclCommDestroy(comm_);
  }
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

TEST_F(Nccl, KnowsItsRankAndSize) {
  int rank = -1, size = -1;
  ASSERT_EQ(ncclCommUserRank(comm_, &rank), ncclSuccess);
  ASSERT_EQ(ncclCommCount(comm_, &size), ncclSuccess);
  EXPECT_EQ(rank, world_rank());
  EXPECT_EQ(size, world_size());
}

TEST_F(Nccl, AllReduceMatchesMpiInFp32AndBf16) {
  const size_t count = 37;
  const std::vector<float> mine = rank_values(count, world_rank());
  std::vector<float> expected(count);
  MPI_Allreduce(mine.data(), expected.data(), int(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);

  float* in_place = upload(mine);
  float* input = upload(mine);
  float* output = upload(std::vector<float>(count, -1.0f));
  ASSERT_EQ(ncclAllReduce(in_place, in_place, count, ncclFloat32, ncclSum, comm_, stream_), ncclSuccess);
  ASSERT_EQ(ncclAllReduce(input, output, count, ncclFloat32, ncclSum, comm_, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(download(in_place, count), expected);
  EXPECT_EQ(download(output, count), expected);
  EXPECT_EQ(download(input, count), mine) << "an out-of-place all-reduce leaves its input";

  std::vector<float> maximum(count), average(count);
  MPI_Allreduce(mine.data(), maximum.data(), int(count), MPI_FLOAT, MPI_MAX, MPI_COMM_WORLD);
  for (size_t i = 0; i < count; ++i) average[i] = expected[i] / float(world_size());
  ASSERT_EQ(ncclAllReduce(input, output, count, ncclFloat32, ncclMax, comm_, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(download(output, count), maximum);
  ASSERT_EQ(ncclAllReduce(input, output, count, ncclFloat32, ncclAvg, comm_, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(download(output, count), average);

  const std::vector<uint16_t> mine_bf16 = rank_bf16(count, world_rank());
  std::vector<float> expected_bf16(count);
  MPI_Allreduce(widen(mine_bf16).data(), expected_bf16.data(), int(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  uint16_t* bf16 = upload(mine_bf16);
  ASSERT_EQ(ncclAllReduce(bf16, bf16, count, ncclBfloat16, ncclSum, comm_, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(widen(download(bf16, count)), expected_bf16);
  for (void* buffer : {static_cast<void*>(in_place), static_cast<void*>(input), static_cast<void*>(output),
                       static_cast<void*>(bf16)})
    cudaFree(buffer);
}

TEST_F(Nccl, ReduceScatterMatchesMpiInFp32AndBf16) {
  const size_t share = 5, count = share * size_t(world_size());
  const std::vector<float> mine = rank_values(count, world_rank());
  std::vector<float> expected(share);
  MPI_Reduce_scatter_block(mine.data(), expected.data(), int(share), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  float* input = upload(mine);
  float* output = upload(std::vector<float>(share, -1.0f));
  ASSERT_EQ(ncclReduceScatter(input, output, share, ncclFloat32, ncclSum, comm_, stream_), ncclSuccess);
  // In place: the output is this rank's share of the input.
  float* in_place = upload(mine);
  float* own_share = in_place + share * size_t(world_rank());
  ASSERT_EQ(ncclReduceScatter(in_place, own_share, share, ncclFloat32, ncclSum, comm_, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(download(output, share), expected);
  EXPECT_EQ(download(own_share, share), expected);

  const std::vector<uint16_t> mine_bf16 = rank_bf16(count, world_rank());
  std::vector<float> expected_bf16(share);
  MPI_Reduce_scatter_block(widen(mine_bf16).data(), expected_bf16.data(), int(share), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  uint16_t* bf16_input = upload(mine_bf16);
  uint16_t* bf16_output = upload(std::vector<uint16_t>(share, 0xFFFF));
  ASSERT_EQ(ncclReduceScatter(bf16_input, bf16_output, share, ncclBfloat16, ncclSum, comm_, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(widen(download(bf16_output, share)), expected_bf16);
  for (void* buffer : {static_cast<void*>(input), static_cast<void*>(output), static_cast<void*>(in_place),
                       static_cast<void*>(bf16_input), static_cast<void*>(bf16_output)})
    cudaFree(buffer);
}

TEST_F(Nccl, ReduceGivesTheRootWhatMpiGivesItAndLeavesTheOthersInFp32AndBf16) {
  const size_t count = 13;
  const int root = world_size() - 1;
  const bool is_root = world_rank() == root;
  // Exact in any summation order: MPI_Reduce and MPI_Ireduce may sum the ranks in different orders.
  const std::vector<float> mine = widen(rank_bf16(count, world_rank()));
  std::vector<float> expected(count);
  MPI_Reduce(mine.data(), expected.data(), int(count), MPI_FLOAT, MPI_SUM, root, MPI_COMM_WORLD);
  float* in_place = upload(mine);
  float* input = upload(mine);
  float* output = upload(std::vector<float>(count, -1.0f));
  ASSERT_EQ(ncclReduce(in_place, in_place, count, ncclFloat32, ncclSum, root, comm_, stream_), ncclSuccess);
  ASSERT_EQ(ncclReduce(input, output, count, ncclFloat32, ncclSum, root, comm_, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(download(in_place, count), is_root ? expected : mine);
  EXPECT_EQ(download(output, count), is_root ? expected : std::vector<float>(count, -1.0f));
  EXPECT_EQ(download(input, count), mine) << "an out-of-place reduce leaves its input";
  std::vector<float> average = expected;
  for (float& value : average) value /= float(world_size());
  ASSERT_EQ(ncclReduce(input, output, count, ncclFloat32, ncclAvg, root, comm_, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  if (is_root) {
    EXPECT_EQ(download(output, count), average);
  }

  const std::vector<uint16_t> mine_bf16 = rank_bf16(count, world_rank());
  std::vector<float> expected_bf16(count);
  MPI_Reduce(widen(mine_bf16).data(), expected_bf16.data(), int(count), MPI_FLOAT, MPI_SUM, root, MPI_COMM_WORLD);
  uint16_t* bf16 = upload(mine_bf16);
  ASSERT_EQ(ncclReduce(bf16, bf16, count, ncclBfloat16, ncclSum, root, comm_, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(widen(download(bf16, count)), is_root ? expected_bf16 : widen(mine_bf16));
  EXPECT_EQ(ncclReduce(input, output, count, ncclFloat32, ncclSum, world_size(), comm_, stream_), ncclInvalidArgument);
  for (void* buffer : {static_cast<void*>(in_place), static_cast<void*>(input), static_cast<void*>(output),
                       static_cast<void*>(bf16)})
    cudaFree(buffer);
}

TEST_F(Nccl, AllGatherMatchesMpiInFp32AndBf16) {
  const size_t share = 3, count = share * size_t(world_size());
  const std::vector<float> mine = rank_values(share, world_rank());
  std::vector<float> expected(count);
  MPI_Allgather(mine.data(), int(share), MPI_FLOAT, expected.data(), int(share), MPI_FLOAT, MPI_COMM_WORLD);
  float* input = upload(mine);
  float* output = upload(std::vector<float>(count, -1.0f));
  ASSERT_EQ(ncclAllGather(input, output, share, ncclFloat32, comm_, stream_), ncclSuccess);
  // In place: the input is this rank's share of the output.
  std::vector<float> staged(count, -1.0f);
  std::copy(mine.begin(), mine.end(), staged.begin() + ptrdiff_t(share) * world_rank());
  float* in_place = upload(staged);
  ASSERT_EQ(ncclAllGather(in_place + share * size_t(world_rank()), in_place, share, ncclFloat32, comm_, stream_),
            ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(download(output, count), expected);
  EXPECT_EQ(download(in_place, count), expected);

  const std::vector<uint16_t> mine_bf16 = rank_bf16(share, world_rank());
  std::vector<uint16_t> expected_bf16(count);
  MPI_Allgather(mine_bf16.data(), int(share), MPI_UINT16_T, expected_bf16.data(), int(share), MPI_UINT16_T, MPI_COMM_WORLD);
  uint16_t* bf16_input = upload(mine_bf16);
  uint16_t* bf16_output = upload(std::vector<uint16_t>(count, 0xFFFF));
  ASSERT_EQ(ncclAllGather(bf16_input, bf16_output, share, ncclBfloat16, comm_, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(download(bf16_output, count), expected_bf16);
  for (void* buffer : {static_cast<void*>(input), static_cast<void*>(output), static_cast<void*>(in_place),
                       static_cast<void*>(bf16_input), static_cast<void*>(bf16_output)})
    cudaFree(buffer);
}

TEST_F(Nccl, BroadcastMatchesMpi) {
  const int root = world_size() - 1;
  const std::vector<float> mine = rank_values(11, world_rank());
  std::vector<float> expected = mine;
  MPI_Bcast(expected.data(), int(expected.size()), MPI_FLOAT, root, MPI_COMM_WORLD);
  float* buffer = upload(mine);
  float* output = upload(std::vector<float>(mine.size(), -1.0f));
  ASSERT_EQ(ncclBroadcast(buffer, output, mine.size(), ncclFloat32, root, comm_, stream_), ncclSuccess);
  ASSERT_EQ(ncclBroadcast(buffer, buffer, mine.size(), ncclFloat32, root, comm_, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(download(output, mine.size()), expected);
  EXPECT_EQ(download(buffer, mine.size()), expected);
  cudaFree(buffer);
  cudaFree(output);
}

TEST_F(Nccl, ACollectiveSeesTheWorkQueuedBeforeItOnItsStream) {
  float* input = upload(rank_values(8, world_rank()));
  float* output = upload(std::vector<float>(8, -1.0f));
  ASSERT_EQ(cudaMemsetAsync(input, 0, 8 * sizeof(float), stream_), cudaSuccess);
  ASSERT_EQ(ncclAllReduce(input, output, 8, ncclFloat32, ncclSum, comm_, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(download(output, 8), std::vector<float>(8, 0.0f));
  cudaFree(input);
  cudaFree(output);
}

TEST_F(Nccl, SplitMakesGroupsThatMatchMpiSplitAndNoColourGivesNone) {
  // Ranks 0 and 2 form one group, 1 and 3 the other; the last rank of an odd world stays out.
  const bool left_out = world_size() % 2 == 1 && world_rank() == world_size() - 1;
  const int colour = left_out ? NCCL_SPLIT_NOCOLOR : world_rank() % 2;
  ncclComm_t group = nullptr;
  ASSERT_EQ(ncclCommSplit(comm_, colour, world_rank(), &group, nullptr), ncclSuccess);
  MPI_Comm mpi_group = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, left_out ? MPI_UNDEFINED : colour, world_rank(), &mpi_group);
  if (left_out) {
    EXPECT_EQ(group, nullptr);
    return;
  }
  ASSERT_NE(group, nullptr);
  int group_rank = -1, group_size = -1, mpi_rank = -2, mpi_size = -2;
  ncclCommUserRank(group, &group_rank);
  ncclCommCount(group, &group_size);
  MPI_Comm_rank(mpi_group, &mpi_rank);
  MPI_Comm_size(mpi_group, &mpi_size);
  EXPECT_EQ(group_rank, mpi_rank);
  EXPECT_EQ(group_size, mpi_size);
  const std::vector<float> mine = rank_values(6, world_rank());
  std::vector<float> expected(mine.size());
  MPI_Allreduce(mine.data(), expected.data(), int(mine.size()), MPI_FLOAT, MPI_SUM, mpi_group);
  float* buffer = upload(mine);
  ASSERT_EQ(ncclAllReduce(buffer, buffer, mine.size(), ncclFloat32, ncclSum, group, stream_), ncclSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(download(buffer, mine.size()), expected);
  cudaFree(buffer);
  MPI_Comm_free(&mpi_group);
  ncclCommDestroy(group);
}

TEST_F(Nccl, HostBuffersAreRefusedNamingTheCall) {
  std::vector<float> host(4, 1.0f);
  EXPECT_EQ(ncclAllReduce(host.data(), host.data(), 4, ncclFloat32, ncclSum, comm_, stream_), ncclInvalidArgument);
  const std::string message = ncclGetErrorString(ncclInvalidArgument);
  EXPECT_NE(message.find("ncclAllReduce: sendbuff"), std::string::npos) << message;
  EXPECT_NE(message.find("is not device memory"), std::string::npos) << message;
  cudaGetLastError();
}


// A collective that a peer never joins ends when another thread aborts the communicator (how a
// watchdog keeps parallel.timeout_s): the call fails instead of hanging, the asynchronous error
// says so from then on, and the aborted communicator refuses further collectives. The late rank
// joins afterwards, so MPI's abandoned requests complete before MPI_Finalize. Last in this file:
// the failed collective leaves the device's sticky error, which only cudaDeviceReset clears.
TEST_F(Nccl, AbortFromAnotherThreadEndsACollectiveThatAPeerNeverJoins) {
  ncclComm_t doomed = nullptr;
  ASSERT_EQ(ncclCommSplit(comm_, 0, world_rank(), &doomed, nullptr), ncclSuccess);
  float* values = upload(rank_values(5, world_rank()));
  const bool late = world_rank() == world_size() - 1;
  if (!late) {
    std::thread watchdog([doomed] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ncclCommAbort(doomed);
    });
    EXPECT_NE(ncclAllReduce(values, values, 5, ncclFloat32, ncclSum, doomed, stream_), ncclSuccess);
    watchdog.join();
    ncclResult_t async_error = ncclSuccess;
    ASSERT_EQ(ncclCommGetAsyncError(doomed, &async_error), ncclSuccess);
    EXPECT_EQ(async_error, ncclRemoteError);
    EXPECT_EQ(ncclAllReduce(values, values, 5, ncclFloat32, ncclSum, doomed, stream_), ncclInvalidUsage);
    EXPECT_NE(std::string(ncclGetErrorString(ncclInvalidUsage)).find("aborted"), std::string::npos);
    EXPECT_NE(cudaStreamSynchronize(stream_), cudaSuccess) << "the aborted collective's device error";
    ASSERT_EQ(cudaDeviceReset(), cudaSuccess);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (late) {
    EXPECT_EQ(ncclAllReduce(values, values, 5, ncclFloat32, ncclSum, doomed, stream_), ncclSuccess);
    ncclResult_t async_error = ncclRemoteError;
    ASSERT_EQ(ncclCommGetAsyncError(doomed, &async_error), ncclSuccess);
    EXPECT_EQ(async_error, ncclSuccess);
  }
  cudaFree(values);
}
