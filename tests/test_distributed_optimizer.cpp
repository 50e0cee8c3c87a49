// ctest-mpi-ranks: 2
// ctest-timeout: 120
// DistributedOptimizer's gradient buckets (CPU backend, the MPI communicator, two ranks): the
// buckets tile the padded gradient buffer in whole parameters from its end back, and each is
// reduced as soon as the model says its gradients are final, not before and not twice: after the
// last block's callback exactly the buckets inside that block hold the DP mean and the others still
// hold this rank's own values; after reduce_gradients every element holds the mean. Under ZeRO-1 the
// same, except that each piece of a bucket is reduced to the rank whose chunk holds it (a bucket
// meeting two chunks in two pieces), so that only that rank's chunk holds the mean.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "common/mpi_environment.h"
#include "common/mpi_training.h"
#include "common/training_setup.h"
#include "train/distributed_optimizer.h"

T6_MPI_TEST_ENVIRONMENT();

using namespace t6;
using namespace t6::testing;

namespace {

// Forwards to another communicator and notes where each started all-reduce or reduce lies in
// `base`, and each reduce's root; a reduce-scatter is noted too (ZeRO-1 must not need one).
class StartRecorder final : public Communicator {
 public:
  StartRecorder(Communicator& inner, const float* base) : inner_(inner), base_(base) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void all_reduce(Tensor buffer, ReduceOp op) override { inner_.all_reduce(buffer, op); }
  void reduce_scatter(const Tensor& input, Tensor output, ReduceOp op) override {
    ++reduce_scatters;
    inner_.reduce_scatter(input, output, op);
  }
  void all_gather(const Tensor& input, Tensor output) override { inner_.all_gather(input, output); }
  void reduce(Tensor buffer, ReduceOp op, int root) override { inner_.reduce(buffer, op, root); }
  void broadcast(Tensor buffer, int root) override { inner_.broadcast(buffer, root); }
  void barrier() override { inner_.barrier(); }
  void start_all_reduce(Tensor buffer, ReduceOp op) override {
    started.push_back(range_of(buffer));
    inner_.start_all_reduce(buffer, op);
  }
  void start_reduce(Tensor buffer, ReduceOp op, int root) override {
    started.push_back(range_of(buffer));
    roots.push_back(root);
    inner_.start_reduce(buffer, op, root);
  }
  std::unique_ptr<Communicator> split(int color, int key) override { return inner_.split(color, key); }

  std::vector<Range> started;
  std::vector<int> roots;  // of the started reduces, in the same order
  int reduce_scatters = 0;

 private:
  Communicator& inner_;
  const float* base_;

  Range range_of(const Tensor& buffer) const {
    return {buffer.data<float>() - base_, buffer.data<float>() - base_ + buffer.numel()};
  }
};

// Distinct on every rank and element, with a mean that is exact in fp32.
float value_of(int rank, int64_t element) { return float(element % 97) + 0.25f * float(rank + 1); }
float mean_of(int64_t element) { return float(element % 97) + 0.25f * 1.5f; }

// The last block's first parameter and where it begins in the flat buffer, once its gradients have
// been reported final before the step's overlap begins (nothing may be reduced then) and after.
struct LastBlock {
  int64_t first_param, flat_begin;
};
LastBlock finish_last_block(DistributedOptimizer& optimizer, const ModelWeights& weights, const StartRecorder& recorder) {
  const int64_t last_block = weights.table().first_param_of_layer(weights.config().n_layer - 1);
  optimizer.gradients_final_from(last_block);
  EXPECT_TRUE(recorder.started.empty()) << "reduced before the step's last backward began";
  optimizer.begin_overlapped_reduction();
  optimizer.gradients_final_from(last_block);
  return {last_block, weights.table().params()[size_t(last_block)].flat_offset};
}

class BucketedReduction : public ::testing::Test {
 protected:
  BucketedReduction()
      : world_(communicator_of(MPI_COMM_WORLD)),
        weights_(tiny_run_config(ModelKind::T6, "").model, 0, 1),
        recorder_(*world_, weights_.padded_grads().data<float>()),
        // Small enough that each of the two blocks spans about three buckets.
        optimizer_(weights_, AdamWSettings{}, {nullptr, &recorder_}, {nullptr, world_.get()}, false,
                   (weights_.table().local_numel() - weights_.table().params()[0].numel()) / 6) {
    float* grads = weights_.padded_grads().data<float>();
    for (int64_t i = 0; i < weights_.padded_numel(); ++i) grads[i] = value_of(world_->rank(), i);
  }
  std::unique_ptr<Communicator> world_;
  ModelWeights weights_;
  StartRecorder recorder_;
  DistributedOptimizer optimizer_;
};

TEST_F(BucketedReduction, BucketsTileTheBufferInWholeParametersFromItsEnd) {
  const std::vector<DistributedOptimizer::Bucket>& buckets = optimizer_.buckets();
  ASSERT_GE(buckets.size(), 4u);
  int64_t end = weights_.padded_numel();
  for (const DistributedOptimizer::Bucket& bucket : buckets) {
    EXPECT_EQ(bucket.elements.end, end);
    EXPECT_LT(bucket.elements.begin, bucket.elements.end);
    EXPECT_EQ(bucket.elements.begin, weights_.table().params()[size_t(bucket.first_param)].flat_offset);
    end = bucket.elements.begin;
  }
  EXPECT_EQ(end, 0);
}

TEST_F(BucketedReduction, EachBucketIsReducedOnceWhenItsGradientsAreFinal) {
  const auto [last_block, block_begin] = finish_last_block(optimizer_, weights_, recorder_);
  ASSERT_FALSE(recorder_.started.empty());
  for (const Range& started : recorder_.started) EXPECT_GE(started.begin, block_begin);
  const float* grads = weights_.padded_grads().data<float>();
  const int64_t reduced_from = recorder_.started.back().begin;
  for (int64_t i = 0; i < weights_.padded_numel(); ++i) {
    const float expected = i >= reduced_from ? mean_of(i) : value_of(world_->rank(), i);
    ASSERT_EQ(grads[i], expected) << "element " << i << " (reduced from " << reduced_from << ")";
  }
  // Every bucket that lies within the last block, and no other.
  int64_t expected_from = weights_.padded_numel();
  for (const DistributedOptimizer::Bucket& bucket : optimizer_.buckets())
    if (bucket.elements.begin >= block_begin) expected_from = std::min(expected_from, bucket.elements.begin);
  EXPECT_EQ(reduced_from, expected_from);
  EXPECT_GT(reduced_from, 0);

  const size_t started_by_last_block = recorder_.started.size();
  optimizer_.gradients_final_from(last_block);  // again: nothing more to start
  EXPECT_EQ(recorder_.started.size(), started_by_last_block);
  double statistics[2] = {0, 0};  // the squared norm and the non-finite count of this rank's share
  optimizer_.reduce_gradients(Tensor(statistics, {2}, DType::F64));
  const double square_sum = statistics[0];
  EXPECT_EQ(statistics[1], 0.0);
  EXPECT_EQ(recorder_.started.size(), optimizer_.buckets().size());
  double expected_square_sum = 0;
  for (int64_t i = 0; i < weights_.padded_numel(); ++i) {
    ASSERT_EQ(grads[i], mean_of(i)) << "element " << i;
    if (i < weights_.table().local_numel()) expected_square_sum += double(mean_of(i)) * double(mean_of(i));
  }
  EXPECT_NEAR(square_sum, expected_square_sum, 1e-9 * expected_square_sum);
}

}  // namespace

namespace {

// ZeRO-1: rank r owns chunk r of the padded buffer (optimizer_state_range). Each bucket is reduced
// when final as plain DP's are, but piece by piece: the piece inside chunk r to rank r, so that
// afterwards each rank's chunk holds the DP mean, as one reduce-scatter after the backward gave.
class Zero1BucketedReduction : public ::testing::Test {
 protected:
  Zero1BucketedReduction()
      : world_(communicator_of(MPI_COMM_WORLD)),
        weights_(tiny_run_config(ModelKind::T6, "").model, 0, 1, world_->size()),
        recorder_(*world_, weights_.padded_grads().data<float>()),
        // As above. The embedding (parameter 0) is most of the buffer, so the blocks' buckets lie in
        // the last chunk and the first bucket (the embedding's) meets both chunks.
        optimizer_(weights_, AdamWSettings{}, {nullptr, &recorder_}, {nullptr, world_.get()}, true,
                   (weights_.table().local_numel() - weights_.table().params()[0].numel()) / 6) {
    float* grads = weights_.padded_grads().data<float>();
    for (int64_t i = 0; i < weights_.padded_numel(); ++i) grads[i] = value_of(world_->rank(), i);
  }
  int64_t chunk() const { return weights_.padded_numel() / world_->size(); }
  // Every started reduce went to the owner of every element it covers, and together they tile
  // [from, padded_numel) without gaps or overlaps.
  void expect_reduces_to_owners_tile_from(int64_t from) const {
    ASSERT_EQ(recorder_.started.size(), recorder_.roots.size()) << "a ZeRO-1 bucket was all-reduced";
    for (size_t k = 0; k < recorder_.started.size(); ++k) {
      const Range piece = recorder_.started[k];
      const int root = recorder_.roots[k];
      EXPECT_GE(piece.begin, int64_t(root) * chunk()) << "reduce " << k << " to rank " << root;
      EXPECT_LE(piece.end, int64_t(root + 1) * chunk()) << "reduce " << k << " to rank " << root;
    }
    std::vector<Range> pieces = recorder_.started;
    std::sort(pieces.begin(), pieces.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
    int64_t end = from;
    for (const Range& piece : pieces) {
      EXPECT_EQ(piece.begin, end) << "the reduces overlap or leave a gap";
      EXPECT_LT(piece.begin, piece.end);
      end = piece.end;
    }
    EXPECT_EQ(end, weights_.padded_numel());
  }
  std::unique_ptr<Communicator> world_;
  ModelWeights weights_;
  StartRecorder recorder_;
  DistributedOptimizer optimizer_;
};

TEST_F(Zero1BucketedReduction, SomeBucketMeetsTwoChunks) {
  ASSERT_GE(optimizer_.buckets().size(), 4u);
  bool straddles = false;
  for (const DistributedOptimizer::Bucket& bucket : optimizer_.buckets())
    straddles |= bucket.elements.begin < chunk() && chunk() < bucket.elements.end;
  EXPECT_TRUE(straddles);
}

TEST_F(Zero1BucketedReduction, EachPieceIsReducedToItsOwnerOnceWhenItsGradientsAreFinal) {
  const int rank = world_->rank();
  const Range mine{int64_t(rank) * chunk(), int64_t(rank + 1) * chunk()};
  ASSERT_EQ(optimizer_.state_begin(), mine.begin);
  ASSERT_EQ(optimizer_.state_end(), mine.end);
  const auto [last_block, block_begin] = finish_last_block(optimizer_, weights_, recorder_);
  ASSERT_FALSE(recorder_.started.empty());
  // Every bucket that lies within the last block, and no other.
  int64_t reduced_from = weights_.padded_numel();
  for (const DistributedOptimizer::Bucket& bucket : optimizer_.buckets())
    if (bucket.elements.begin >= block_begin) reduced_from = std::min(reduced_from, bucket.elements.begin);
  ASSERT_GT(reduced_from, 0);
  expect_reduces_to_owners_tile_from(reduced_from);
  // This rank's chunk holds the mean where reduced and its own values elsewhere; no element below
  // the reduced buckets has changed on any rank.
  const float* grads = weights_.padded_grads().data<float>();
  for (int64_t i = 0; i < weights_.padded_numel(); ++i) {
    if (i >= reduced_from && (i < mine.begin || i >= mine.end)) continue;  // another rank's result: undefined here
    const float expected = i >= reduced_from ? mean_of(i) : value_of(rank, i);
    ASSERT_EQ(grads[i], expected) << "element " << i << " (reduced from " << reduced_from << ", chunk [" << mine.begin
                                  << ", " << mine.end << "))";
  }

  const size_t started_by_last_block = recorder_.started.size();
  optimizer_.gradients_final_from(last_block);  // again: nothing more to start
  EXPECT_EQ(recorder_.started.size(), started_by_last_block);
  double statistics[2] = {0, 0};  // the squared norm and the non-finite count of this rank's chunk
  optimizer_.reduce_gradients(Tensor(statistics, {2}, DType::F64));
  expect_reduces_to_owners_tile_from(0);
  EXPECT_EQ(recorder_.reduce_scatters, 0);
  EXPECT_EQ(statistics[1], 0.0);
  double expected_square_sum = 0;
  for (int64_t i = mine.begin; i < mine.end; ++i) {
    ASSERT_EQ(grads[i], mean_of(i)) << "element " << i;
    if (i < weights_.table().local_numel()) expected_square_sum += double(mean_of(i)) * double(mean_of(i));
  }
  EXPECT_NEAR(statistics[0], expected_square_sum, 1e-9 * expected_square_sum);
}

}  // namespace
