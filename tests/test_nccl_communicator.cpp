// ctest-labels: gpu
// NcclCommunicator at world size 1 on device buffers (one GPU cannot hold two NCCL ranks): every
// collective must produce the known single-rank result in its output, which starts as a sentinel.
// Skips without a GPU; multi-rank NCCL runs are exercised by GPU training runs.
#include <gtest/gtest.h>

#include "kernels/device.h"

#ifdef T6_WITH_CUDA
#include <cuda_runtime.h>

#include <vector>

#include "core/bf16.h"
#include "parallel/cuda/nccl_communicator.h"
#include "common/device_arrays.h"

using namespace t6;

namespace {

using t6::testing::DeviceArray;

// The unique-id bootstrap of a one-process world: broadcasting from rank 0 to itself changes nothing.
// NcclCommunicator uses nothing else of its bootstrap.
class SingleProcessBootstrap final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void broadcast(Tensor, int root) override { T6_ASSERT(root == 0); }
  void all_reduce(Tensor, ReduceOp) override { unused("all_reduce"); }
  void reduce_scatter(const Tensor&, Tensor, ReduceOp) override { unused("reduce_scatter"); }
  void all_gather(const Tensor&, Tensor) override { unused("all_gather"); }
  void reduce(Tensor, ReduceOp, int) override { unused("reduce"); }
  void barrier() override { unused("barrier"); }
  std::unique_ptr<Communicator> split(int, int) override { unused("split"); }

 private:
  [[noreturn]] static void unused(const char* collective) {
    fail(str("SingleProcessBootstrap::", collective, ": only broadcast is part of the NCCL bootstrap"));
  }
};


class NcclCommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    comm_ = std::make_unique<NcclCommunicator>(bootstrap_, /*cuda_device=*/0);
  }
  SingleProcessBootstrap bootstrap_;
  std::unique_ptr<NcclCommunicator> comm_;
};

const std::vector<float> kValues = {1.5f, -2.0f, 3.25f, 0.0f, 1e6f, -7.75f};

}  // namespace

TEST_F(NcclCommunicatorTest, IsRankZeroOfOne) {
  EXPECT_EQ(comm_->rank(), 0);
  EXPECT_EQ(comm_->size(), 1);
  EXPECT_NE(comm_->stream(), nullptr);
}

TEST_F(NcclCommunicatorTest, AllReduceOfOneRankKeepsValuesForEveryOp) {
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max}) {
    DeviceArray<float> buffer(kValues);
    comm_->all_reduce(buffer.view(), op);
    comm_->synchronize();
    EXPECT_EQ(buffer.download(), kValues) << reduce_op_name(op);
  }
  DeviceArray<double> doubles(std::vector<double>{0.1, -1e300});
  comm_->all_reduce(doubles.view(), ReduceOp::Avg);
  DeviceArray<int64_t> integers(std::vector<int64_t>{int64_t(1) << 40, -3});
  comm_->all_reduce(integers.view(), ReduceOp::Sum);
  const std::vector<uint16_t> bf16_bits = {float_to_bf16_bits(1.5f), float_to_bf16_bits(-0.25f)};
  DeviceArray<uint16_t> bf16(bf16_bits);
  comm_->all_reduce(bf16.view(DType::BF16), ReduceOp::Sum);
  comm_->synchronize();
  EXPECT_EQ(doubles.download(), (std::vector<double>{0.1, -1e300}));
  EXPECT_EQ(integers.download(), (std::vector<int64_t>{int64_t(1) << 40, -3}));
  EXPECT_EQ(bf16.download(), bf16_bits);
}

TEST_F(NcclCommunicatorTest, ReduceScatterAndAllGatherFillTheOutput) {
  DeviceArray<float> input(kValues);
  DeviceArray<float> scattered(kValues.size());
  comm_->reduce_scatter(input.view(), scattered.view(), ReduceOp::Sum);
  DeviceArray<float> gathered(kValues.size());
  comm_->all_gather(input.view(), gathered.view());
  comm_->synchronize();
  EXPECT_EQ(scattered.download(), kValues);
  EXPECT_EQ(gathered.download(), kValues);
}

TEST_F(NcclCommunicatorTest, InPlaceReduceScatterAndAllGather) {
  DeviceArray<float> buffer(kValues);
  comm_->reduce_scatter(buffer.view(), buffer.view(), ReduceOp::Max);
  comm_->all_gather(buffer.view(), buffer.view());
  comm_->synchronize();
  EXPECT_EQ(buffer.download(), kValues);
}

TEST_F(NcclCommunicatorTest, ReduceToTheOnlyRankKeepsValuesAndOthersAreRefused) {
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg}) {
    DeviceArray<float> buffer(kValues);
    comm_->start_reduce(buffer.view(), op, 0);
    comm_->finish_started();
    comm_->synchronize();
    EXPECT_EQ(buffer.download(), kValues) << reduce_op_name(op);
  }
  DeviceArray<float> buffer(kValues);
  try {
    comm_->reduce(buffer.view(), ReduceOp::Sum, 1);
    FAIL() << "a root outside the group should be refused";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "NCCL reduce: root 1 is not a rank of a group of 1");
  }
}

TEST_F(NcclCommunicatorTest, BroadcastAndBarrier) {
  DeviceArray<int32_t> buffer(std::vector<int32_t>{4, -5, 6});
  comm_->broadcast(buffer.view(), 0);
  comm_->barrier();  // synchronizes the stream, so the download sees the broadcast
  EXPECT_EQ(buffer.download(), (std::vector<int32_t>{4, -5, 6}));
}

TEST_F(NcclCommunicatorTest, SplitGivesAWorkingGroupOrNone) {
  std::unique_ptr<Communicator> group = comm_->split(/*color=*/7, /*key=*/0);
  ASSERT_NE(group, nullptr);
  EXPECT_EQ(group->size(), 1);
  DeviceArray<float> input(kValues);
  DeviceArray<float> gathered(kValues.size());
  group->all_gather(input.view(), gathered.view());
  group->barrier();
  EXPECT_EQ(gathered.download(), kValues);
  EXPECT_EQ(comm_->split(/*color=*/-1, /*key=*/0), nullptr);
}

TEST_F(NcclCommunicatorTest, RejectsHostBuffersAndMismatchedSizes) {
  std::vector<float> host(4, 1.0f);
  EXPECT_THROW(comm_->all_reduce(Tensor(host.data(), {4}, DType::F32), ReduceOp::Sum), Error);
  DeviceArray<float> four(4), three(3);
  try {
    comm_->reduce_scatter(four.view(), three.view(), ReduceOp::Sum);
    FAIL() << "a size mismatch should be refused";
  } catch (const Error& error) {
    EXPECT_STREQ(error.what(), "NCCL reduce_scatter: input has 4 elements, expected 1 ranks x 3 output elements = 3");
  }
}

#else

TEST(NcclCommunicator, NeedsACudaBuild) { GTEST_SKIP() << "built without CUDA (T6_CUDA=OFF)"; }

#endif
