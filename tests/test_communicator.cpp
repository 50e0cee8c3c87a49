// ctest-mpi-ranks: 4
// MpiCommunicator: every collective against values worked out by hand (reduce to every root), on
// the world and on the TP and DP groups of a 2x2 grid, for F32 and F64, in place and not, plus the
// argument errors.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "common/mpi_environment.h"
#include "core/bf16.h"
#include "parallel/mpi_communicator.h"

T6_MPI_TEST_ENVIRONMENT();

using namespace t6;

namespace {

// Distinct, uneven values per rank and element (halves, negatives, growing with the rank) whose
// sums and averages over 4 ranks are exact in F32, so results compare with ==.
template <class T>
T value_of(int rank, int64_t element) {
  return T((element % 3 - 1) * (7 * rank + 1)) + T(0.5) * T(element) + T(rank * rank);
}

template <class T>
std::vector<T> values_of(int rank, int64_t count, int64_t first_element = 0) {
  std::vector<T> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) values[size_t(i)] = value_of<T>(rank, first_element + i);
  return values;
}

template <class T>
Tensor view_of(std::vector<T>& values) {
  return Tensor(values.data(), {int64_t(values.size())}, dtype_of<T>());
}

// The reduction over `ranks` (world ranks) of element `element`, computed in double.
template <class T>
T reduced(const std::vector<int>& ranks, int64_t element, ReduceOp op) {
  double sum = 0, maximum = -1e300;
  for (int rank : ranks) {
    const double value = double(value_of<T>(rank, element));
    sum += value;
    maximum = std::max(maximum, value);
  }
  if (op == ReduceOp::Max) return T(maximum);
  return T(op == ReduceOp::Avg ? sum / double(ranks.size()) : sum);
}

std::vector<int> all_world_ranks(int size) {
  std::vector<int> ranks(size_t(size), 0);
  for (int r = 0; r < size; ++r) ranks[size_t(r)] = r;
  return ranks;
}

template <class T>
class CommunicatorTyped : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CommunicatorTyped, FloatTypes);

}  // namespace

TEST(Communicator, WorldHasRankAndSizeOfMpiWorld) {
  auto world = make_mpi_world_communicator();
  EXPECT_EQ(world->size(), 4);
  EXPECT_EQ(world->rank(), t6::testing::world_rank());
}

TYPED_TEST(CommunicatorTyped, AllReduceSumAvgMaxOnWorld) {
  using T = TypeParam;
  auto world = make_mpi_world_communicator();
  const int64_t count = 7;  // not a multiple of the world size
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max}) {
    std::vector<T> buffer = values_of<T>(world->rank(), count);
    world->all_reduce(view_of(buffer), op);
    for (int64_t i = 0; i < count; ++i)
      EXPECT_EQ(buffer[size_t(i)], reduced<T>(all_world_ranks(4), i, op)) << reduce_op_name(op) << " element " << i;
  }
}

TYPED_TEST(CommunicatorTyped, ReduceScatterGivesRankItsChunk) {
  using T = TypeParam;
  auto world = make_mpi_world_communicator();
  const int64_t chunk = 3;
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max}) {
    std::vector<T> input = values_of<T>(world->rank(), 4 * chunk);
    std::vector<T> output(size_t(chunk), T(-1));
    world->reduce_scatter(view_of(input), view_of(output), op);
    for (int64_t i = 0; i < chunk; ++i)
      EXPECT_EQ(output[size_t(i)], reduced<T>(all_world_ranks(4), world->rank() * chunk + i, op))
          << reduce_op_name(op) << " element " << i;
  }
}

TYPED_TEST(CommunicatorTyped, ReduceScatterInPlaceIntoOwnChunk) {
  using T = TypeParam;
  auto world = make_mpi_world_communicator();
  const int64_t chunk = 5;
  std::vector<T> input = values_of<T>(world->rank(), 4 * chunk);
  Tensor whole = view_of(input);
  Tensor own_chunk = whole.rows(world->rank() * chunk, (world->rank() + 1) * chunk);
  world->reduce_scatter(whole, own_chunk, ReduceOp::Sum);
  for (int64_t i = 0; i < chunk; ++i)
    EXPECT_EQ(own_chunk.data<T>()[i], reduced<T>(all_world_ranks(4), world->rank() * chunk + i, ReduceOp::Sum));
}

TYPED_TEST(CommunicatorTyped, AllGatherOrdersChunksByRank) {
  using T = TypeParam;
  auto world = make_mpi_world_communicator();
  const int64_t chunk = 3;
  std::vector<T> input = values_of<T>(world->rank(), chunk);
  std::vector<T> output(size_t(4 * chunk), T(-1));
  world->all_gather(view_of(input), view_of(output));
  for (int rank = 0; rank < 4; ++rank)
    for (int64_t i = 0; i < chunk; ++i) EXPECT_EQ(output[size_t(rank * chunk + i)], value_of<T>(rank, i));
}

TYPED_TEST(CommunicatorTyped, AllGatherInPlaceFromOwnChunk) {
  using T = TypeParam;
  auto world = make_mpi_world_communicator();
  const int64_t chunk = 2;
  std::vector<T> output(size_t(4 * chunk), T(-1));
  Tensor whole = view_of(output);
  Tensor own_chunk = whole.rows(world->rank() * chunk, (world->rank() + 1) * chunk);
  for (int64_t i = 0; i < chunk; ++i) own_chunk.data<T>()[i] = value_of<T>(world->rank(), i);
  world->all_gather(own_chunk, whole);
  for (int rank = 0; rank < 4; ++rank)
    for (int64_t i = 0; i < chunk; ++i) EXPECT_EQ(output[size_t(rank * chunk + i)], value_of<T>(rank, i));
}

TYPED_TEST(CommunicatorTyped, BroadcastFromEveryRoot) {
  using T = TypeParam;
  auto world = make_mpi_world_communicator();
  for (int root = 0; root < 4; ++root) {
    std::vector<T> buffer = values_of<T>(world->rank(), 6);
    world->broadcast(view_of(buffer), root);
    EXPECT_EQ(buffer, values_of<T>(root, 6)) << "root " << root;
  }
}

// Only the root's buffer is defined afterwards; MPI's others only send, so theirs keep their values.
TYPED_TEST(CommunicatorTyped, ReduceGivesTheRootTheReductionInPlace) {
  using T = TypeParam;
  auto world = make_mpi_world_communicator();
  const int64_t count = 7;
  for (int root = 0; root < 4; ++root)
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max}) {
      std::vector<T> buffer = values_of<T>(world->rank(), count);
      world->reduce(view_of(buffer), op, root);
      for (int64_t i = 0; i < count; ++i) {
        const T expected = world->rank() == root ? reduced<T>(all_world_ranks(4), i, op) : value_of<T>(world->rank(), i);
        EXPECT_EQ(buffer[size_t(i)], expected) << reduce_op_name(op) << " to root " << root << " element " << i;
      }
    }
}

TEST(Communicator, IntegerSumAndMax) {
  auto world = make_mpi_world_communicator();
  // Beyond 2^32, so a 32-bit path would show.
  std::vector<int64_t> big = {int64_t(world->rank() + 1) << 33, -world->rank()};
  world->all_reduce(view_of(big), ReduceOp::Sum);
  EXPECT_EQ(big, (std::vector<int64_t>{int64_t(10) << 33, -6}));
  std::vector<int32_t> small = {world->rank() == 2 ? 50 : world->rank(), -world->rank()};
  world->all_reduce(view_of(small), ReduceOp::Max);
  EXPECT_EQ(small, (std::vector<int32_t>{50, 0}));
  std::vector<uint64_t> unsigned_counts = {uint64_t(world->rank()) * 1000000007ull};
  world->all_reduce(view_of(unsigned_counts), ReduceOp::Sum);
  EXPECT_EQ(unsigned_counts[0], 6 * 1000000007ull);
}

TEST(Communicator, Bf16MovesButDoesNotReduce) {
  auto world = make_mpi_world_communicator();
  std::vector<uint16_t> bits = {float_to_bf16_bits(1.5f * float(world->rank() + 1)), float_to_bf16_bits(-2.0f)};
  Tensor bf16(bits.data(), {2}, DType::BF16);
  world->broadcast(bf16, 3);
  EXPECT_EQ(bf16_bits_to_float(bits[0]), 6.0f);
  std::vector<uint16_t> gathered(8, 0);
  world->all_gather(bf16, Tensor(gathered.data(), {8}, DType::BF16));
  EXPECT_EQ(bf16_bits_to_float(gathered[6]), 6.0f);
  try {
    world->all_reduce(bf16, ReduceOp::Sum);
    FAIL() << "reducing BF16 over MPI should be refused";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("BF16 buffers cannot be reduced over MPI"), std::string::npos)
        << error.what();
  }
}

TEST(Communicator, BarrierWaitsForTheSlowestRank) {
  auto world = make_mpi_world_communicator();
  world->barrier();
  const auto start = std::chrono::steady_clock::now();
  if (world->rank() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  world->barrier();
  const double waited_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(waited_s, 0.25) << "rank " << world->rank() << " left the barrier before rank 1 arrived";
}

TEST(Communicator, SubCommunicatorsOfTwoByTwoGrid) {
  auto world = make_mpi_world_communicator();
  const int rank = world->rank();
  // TP groups {0,1} {2,3}; DP groups {0,2} {1,3}, as in ProcessGrid with tp 2.
  auto tp = world->split(rank / 2, rank);
  auto dp = world->split(rank % 2, rank);
  ASSERT_TRUE(tp && dp);
  EXPECT_EQ(tp->size(), 2);
  EXPECT_EQ(tp->rank(), rank % 2);
  EXPECT_EQ(dp->size(), 2);
  EXPECT_EQ(dp->rank(), rank / 2);
  const std::vector<int> tp_members = {rank / 2 * 2, rank / 2 * 2 + 1};
  const std::vector<int> dp_members = {rank % 2, rank % 2 + 2};

  std::vector<double> tp_sum = values_of<double>(rank, 5);
  tp->all_reduce(view_of(tp_sum), ReduceOp::Sum);
  std::vector<float> dp_avg = values_of<float>(rank, 5);
  dp->all_reduce(view_of(dp_avg), ReduceOp::Avg);
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(tp_sum[size_t(i)], reduced<double>(tp_members, i, ReduceOp::Sum));
    EXPECT_EQ(dp_avg[size_t(i)], reduced<float>(dp_members, i, ReduceOp::Avg));
  }

  std::vector<float> scatter_input = values_of<float>(rank, 6);
  std::vector<float> scatter_output(3, -1.0f);
  dp->reduce_scatter(view_of(scatter_input), view_of(scatter_output), ReduceOp::Max);
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_EQ(scatter_output[size_t(i)], reduced<float>(dp_members, dp->rank() * 3 + i, ReduceOp::Max));

  std::vector<double> gather_input = values_of<double>(rank, 2);
  std::vector<double> gathered(4, -1.0);
  tp->all_gather(view_of(gather_input), view_of(gathered));
  EXPECT_EQ(gathered, (std::vector<double>{value_of<double>(tp_members[0], 0), value_of<double>(tp_members[0], 1),
                                           value_of<double>(tp_members[1], 0), value_of<double>(tp_members[1], 1)}));

  std::vector<float> from_dp_root = values_of<float>(rank, 4);
  dp->broadcast(view_of(from_dp_root), 1);
  EXPECT_EQ(from_dp_root, values_of<float>(dp_members[1], 4));
}

TEST(Communicator, NegativeColorJoinsNoGroup) {
  auto world = make_mpi_world_communicator();
  auto evens = world->split(world->rank() % 2 == 0 ? 0 : -1, world->rank());
  EXPECT_EQ(evens == nullptr, world->rank() % 2 == 1);
  if (evens) {
    EXPECT_EQ(evens->size(), 2);
    std::vector<int32_t> ranks = {world->rank()};
    evens->all_reduce(view_of(ranks), ReduceOp::Sum);
    EXPECT_EQ(ranks[0], 0 + 2);
  }
}

namespace {

// Runs call, which must throw t6::Error on every rank with a message containing `expected`.
template <class Call>
void expect_error(Call call, const std::string& expected) {
  try {
    call();
    ADD_FAILURE() << "expected an error containing: " << expected;
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << error.what();
  }
}

}  // namespace

TEST(Communicator, SizeAndTypeMismatchesAreClearErrors) {
  auto world = make_mpi_world_communicator();
  std::vector<float> ten(10, 1.0f), three(3, 1.0f), twelve(12, 1.0f);
  std::vector<double> three_doubles(3, 1.0);
  std::vector<int32_t> integers(4, 1);
  expect_error([&] { world->reduce_scatter(view_of(ten), view_of(three), ReduceOp::Sum); },
               "MPI reduce_scatter: input has 10 elements, expected 4 ranks x 3 output elements = 12");
  expect_error([&] { world->all_gather(view_of(three), view_of(ten)); },
               "MPI all_gather: output has 10 elements, expected 4 ranks x 3 input elements = 12");
  expect_error([&] { world->all_gather(view_of(three_doubles), view_of(twelve)); },
               "MPI all_gather: input is F64 but output is F32");
  expect_error([&] { world->all_reduce(view_of(integers), ReduceOp::Avg); },
               "avg needs a floating-point buffer, got I32");
  expect_error([&] { world->broadcast(view_of(three), 4); }, "MPI broadcast: root 4 is not a rank of a group of 4");
  expect_error([&] { world->reduce(view_of(three), ReduceOp::Sum, -1); },
               "MPI reduce: root -1 is not a rank of a group of 4");
  expect_error([&] { world->reduce(view_of(integers), ReduceOp::Avg, 0); }, "avg needs a floating-point buffer, got I32");
  // Device buffers are staged through pinned memory (test_device_training_ranks), but one collective
  // does not mix a device input with a host output.
  expect_error([&] { world->reduce_scatter(Tensor(twelve.data(), {12}, DType::F32, Device::CUDA), view_of(three), ReduceOp::Sum); },
               "input buffer is in device memory, but the MPI communicator takes host memory");
  Tensor whole = view_of(twelve);
  const int wrong_chunk = (world->rank() + 1) % 4;
  expect_error([&] { world->all_gather(whole.rows(wrong_chunk * 3, wrong_chunk * 3 + 3), whole); },
               "input overlaps output but is not its chunk");
  // Every rank threw before communicating, so the world still works.
  EXPECT_TRUE(t6::testing::all_ranks_agree(true));
}
